//! Metric names and their help texts, in one place so the exposition stays consistent.

/// `(name, help)` of a metric.
pub(crate) type Described = (&'static str, &'static str);

pub(crate) const PUBLISHED: Described = (
    "eventbus_events_published_total",
    "Events accepted by publish (not disabled, not filtered).",
);
pub(crate) const FILTERED: Described = (
    "eventbus_events_filtered_total",
    "Events refused by the bus filters.",
);
pub(crate) const FAILED: Described = (
    "eventbus_events_failed_total",
    "Handler calls that returned an error or panicked, over every subscriber.",
);
pub(crate) const DROPPED: Described = (
    "eventbus_events_dropped_total",
    "Events a full subscriber queue refused or evicted, over every subscriber.",
);
pub(crate) const ENABLED: Described = (
    "eventbus_enabled",
    "1 when the bus accepts events, 0 when it is disabled.",
);
pub(crate) const HISTORY_SIZE: Described = (
    "eventbus_history_size",
    "Events held in the bus history now.",
);
pub(crate) const HISTORY_CAPACITY: Described = (
    "eventbus_history_capacity",
    "Events the bus history can hold (0: history is off).",
);
pub(crate) const FILTERS: Described = (
    "eventbus_filters",
    "Patterns in the bus allow-list (0: every event is allowed).",
);
pub(crate) const EVENTS_BY_TYPE: Described = (
    "eventbus_events_total",
    "Events seen by the metrics subscriber, by event type; types past the cardinality cap are counted as event_type=\"other\".",
);
pub(crate) const SUB_DELIVERED: Described = (
    "eventbus_subscriber_delivered_total",
    "Events a subscription's handler finished without error.",
);
pub(crate) const SUB_FAILED: Described = (
    "eventbus_subscriber_failed_total",
    "Events a subscription's handler failed on (error or panic).",
);
pub(crate) const SUB_DROPPED: Described = (
    "eventbus_subscriber_dropped_total",
    "Events a subscription's full queue refused or evicted.",
);
pub(crate) const SUB_QUEUE_DEPTH: Described = (
    "eventbus_subscriber_queue_depth",
    "Events waiting in a subscription's queue now (0 for sync handlers).",
);
pub(crate) const SUB_QUEUE_CAPACITY: Described = (
    "eventbus_subscriber_queue_capacity",
    "A subscription's queue capacity (0 for sync handlers, which have no queue).",
);
pub(crate) const SUB_DURATION: Described = (
    "eventbus_subscriber_handler_duration_seconds",
    "How long a queued subscription's handler took per event.",
);
