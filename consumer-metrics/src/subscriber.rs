//! [`MetricsSubscriber`]: counts events per type, under a cardinality cap.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bus_core::{Event, HandlerResult, Overflow, Subscriber};
use metrics::{Counter, Key, Label, Recorder};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::names::EVENTS_BY_TYPE;

/// The `event_type` label of events past the cardinality cap (and of over-long type names).
pub const OTHER_EVENT_TYPE: &str = "other";

/// Event types longer than this are counted as [`OTHER_EVENT_TYPE`], so one absurd name
/// cannot bloat every scrape.
pub const MAX_EVENT_TYPE_LABEL_BYTES: usize = 200;

/// Per-type counters, registered with the recorder the first time a type is seen.
pub(crate) struct EventTypeCounters {
    recorder: Arc<PrometheusRecorder>,
    max_types: usize,
    known: Mutex<HashMap<Box<str>, Counter>>,
    other: Counter,
}

impl EventTypeCounters {
    pub(crate) fn new(recorder: Arc<PrometheusRecorder>, max_types: usize) -> Self {
        let other = register(&recorder, OTHER_EVENT_TYPE);
        EventTypeCounters {
            recorder,
            max_types,
            known: Mutex::new(HashMap::new()),
            other,
        }
    }

    pub(crate) fn count(&self, event_type: &str) {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = known.get(event_type) {
            counter.increment(1);
            return;
        }
        if known.len() >= self.max_types
            || event_type.len() > MAX_EVENT_TYPE_LABEL_BYTES
            || event_type == OTHER_EVENT_TYPE
        {
            drop(known);
            self.other.increment(1);
            return;
        }
        let counter = register(&self.recorder, event_type);
        counter.increment(1);
        known.insert(event_type.into(), counter);
    }

    /// Distinct types with a series of their own.
    pub(crate) fn distinct(&self) -> usize {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn register(recorder: &PrometheusRecorder, event_type: &str) -> Counter {
    let key = Key::from_parts(
        EVENTS_BY_TYPE.0,
        vec![Label::new("event_type", event_type.to_owned())],
    );
    recorder.register_counter(&key, &crate::METADATA)
}

/// A [`Subscriber`] that counts every event it receives in `eventbus_events_total`, by
/// `event_type`, through the `metrics` facade.
///
/// At most `max_event_types` distinct types get a series; later new types (and type names
/// over [`MAX_EVENT_TYPE_LABEL_BYTES`]) go to `event_type="other"`, so a flood of unique names
/// costs neither memory nor scrape size. It is built and subscribed by
/// [`BusMetrics::attach`](crate::BusMetrics::attach), which renders what it counts.
pub struct MetricsSubscriber {
    name: String,
    patterns: Vec<String>,
    queue_capacity: Option<usize>,
    counters: Arc<EventTypeCounters>,
}

impl std::fmt::Debug for MetricsSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSubscriber")
            .field("name", &self.name)
            .field("patterns", &self.patterns)
            .field("max_event_types", &self.counters.max_types)
            .finish()
    }
}

impl MetricsSubscriber {
    pub(crate) fn new(
        name: String,
        patterns: Vec<String>,
        queue_capacity: Option<usize>,
        counters: Arc<EventTypeCounters>,
    ) -> Self {
        MetricsSubscriber {
            name,
            patterns,
            queue_capacity,
            counters,
        }
    }
}

#[bus_core::async_trait]
impl Subscriber for MetricsSubscriber {
    fn name(&self) -> &str {
        &self.name
    }

    fn patterns(&self) -> Vec<String> {
        self.patterns.clone()
    }

    async fn handle(&self, event: Event) -> HandlerResult {
        self.counters.count(event.event_type());
        Ok(())
    }

    fn queue_capacity(&self) -> Option<usize> {
        self.queue_capacity
    }

    /// Counting is best effort: a full queue drops (and the bus counts the drop in this
    /// subscriber's `eventbus_subscriber_dropped_total`) rather than slowing publishers.
    fn overflow(&self) -> Option<Overflow> {
        Some(Overflow::DropNewest)
    }
}
