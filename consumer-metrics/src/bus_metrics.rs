//! [`BusMetrics`]: attaches the metrics subscriber to a bus and renders everything.

use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

use bus_core::{BusStats, EventBus, Pattern, SubscriptionId};
use metrics::{Counter, Gauge, Key, KeyName, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::exposition::{write_header, write_histogram, write_sample};
use crate::monotonic::{SubscriberFigures, Totals, Tracker};
use crate::names::*;
use crate::subscriber::EventTypeCounters;
use crate::{METADATA, MetricsError};

/// Settings of [`BusMetrics::attach`].
#[derive(Clone, Debug)]
pub struct MetricsConfig {
    /// The metrics subscription's name in bus stats (default `"metrics"`).
    pub name: String,
    /// Event-type patterns counted in `eventbus_events_total` (default `["*"]`).
    pub patterns: Vec<String>,
    /// Distinct event types with a series of their own (default 256); the rest are counted
    /// under `event_type="other"`.
    pub max_event_types: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            name: "metrics".into(),
            patterns: vec!["*".into()],
            max_event_types: 256,
        }
    }
}

/// The bus-level series, registered once through the `metrics` facade.
struct BusSeries {
    published: Counter,
    filtered: Counter,
    failed: Counter,
    dropped: Counter,
    enabled: Gauge,
    history_size: Gauge,
    history_capacity: Gauge,
    filters: Gauge,
}

struct Inner {
    bus: EventBus,
    subscription: SubscriptionId,
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
    series: BusSeries,
    counters: Arc<EventTypeCounters>,
    tracker: Mutex<Tracker>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.bus.unsubscribe(self.subscription);
    }
}

/// Prometheus metrics of one [`EventBus`]: a per-type counting subscription on it plus the
/// rendering of everything, refreshed from [`EventBus::stats`] on each [`render`](Self::render).
///
/// It records into its own `metrics-exporter-prometheus` recorder, not the process-wide one,
/// so several buses (and tests) never share state. Cheap to clone; when the last clone is
/// dropped the subscriber is detached from the bus.
///
/// Exported families (all described, so `promtool check metrics` passes):
///
/// | name | type | labels |
/// |---|---|---|
/// | `eventbus_events_published_total`, `_filtered_total`, `_failed_total`, `_dropped_total` | counter | |
/// | `eventbus_enabled`, `eventbus_history_size`, `eventbus_history_capacity`, `eventbus_filters` | gauge | |
/// | `eventbus_events_total` | counter | `event_type` (capped, then `"other"`) |
/// | `eventbus_subscriber_delivered_total`, `_failed_total`, `_dropped_total` | counter | `subscriber`, `subscription` |
/// | `eventbus_subscriber_queue_depth`, `_queue_capacity` | gauge | `subscriber`, `subscription` |
/// | `eventbus_subscriber_handler_duration_seconds` | histogram | `subscriber`, `subscription`, `le` |
/// | `eventbus_subscriber_rate_limit_per_second`, `_rate_per_second` (rate-limited only) | gauge | `subscriber`, `subscription` |
/// | `eventbus_subscriber_rate_delayed_total`, `_rate_dropped_total` (rate-limited only) | counter | `subscriber`, `subscription` |
///
/// Counters never go backwards, even across [`EventBus::reset_stats`] (see `stats_resets`);
/// events counted between the last render and a reset are the one thing a reset can hide.
#[derive(Clone)]
pub struct BusMetrics {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BusMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusMetrics")
            .field("bus", &self.inner.bus)
            .field("subscription", &self.inner.subscription)
            .finish_non_exhaustive()
    }
}

fn describe(
    recorder: &PrometheusRecorder,
    (name, help): Described,
    unit: Option<Unit>,
    gauge: bool,
) {
    let key = KeyName::from_const_str(name);
    let help = SharedString::const_str(help);
    if gauge {
        recorder.describe_gauge(key, unit, help);
    } else {
        recorder.describe_counter(key, unit, help);
    }
}

impl BusMetrics {
    /// Subscribes the per-type counting described by `config` to `bus`, and returns the
    /// object that renders the bus's metrics.
    pub fn attach(bus: &EventBus, config: MetricsConfig) -> Result<BusMetrics, MetricsError> {
        if config.patterns.is_empty() {
            return Err(MetricsError::NoPatterns);
        }
        for pattern in &config.patterns {
            Pattern::new(pattern).map_err(MetricsError::InvalidPattern)?;
        }
        let recorder = Arc::new(PrometheusBuilder::new().build_recorder());
        for (described, gauge) in [
            (PUBLISHED, false),
            (FILTERED, false),
            (FAILED, false),
            (DROPPED, false),
            (EVENTS_BY_TYPE, false),
            (ENABLED, true),
            (HISTORY_SIZE, true),
            (HISTORY_CAPACITY, true),
            (FILTERS, true),
        ] {
            describe(&recorder, described, None, gauge);
        }
        let counter = |(name, _): Described| {
            recorder.register_counter(&Key::from_static_name(name), &METADATA)
        };
        let gauge =
            |(name, _): Described| recorder.register_gauge(&Key::from_static_name(name), &METADATA);
        let series = BusSeries {
            published: counter(PUBLISHED),
            filtered: counter(FILTERED),
            failed: counter(FAILED),
            dropped: counter(DROPPED),
            enabled: gauge(ENABLED),
            history_size: gauge(HISTORY_SIZE),
            history_capacity: gauge(HISTORY_CAPACITY),
            filters: gauge(FILTERS),
        };
        let counters = Arc::new(EventTypeCounters::new(
            recorder.clone(),
            config.max_event_types,
        ));
        let counting = counters.clone();
        let subscription = bus
            .on_named(
                &config.name,
                &config.patterns,
                move |event: &bus_core::Event| {
                    counting.count(event.event_type());
                },
            )
            .map_err(MetricsError::Subscribe)?;
        let handle = recorder.handle();
        Ok(BusMetrics {
            inner: Arc::new(Inner {
                bus: bus.clone(),
                subscription,
                recorder,
                handle,
                series,
                counters,
                tracker: Mutex::new(Tracker::default()),
            }),
        })
    }

    /// The bus these metrics describe.
    pub fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// The metrics subscriber's subscription on the bus.
    pub fn subscription(&self) -> SubscriptionId {
        self.inner.subscription
    }

    /// The recorder everything is recorded into. A program can add metrics of its own to the
    /// same output with `metrics::with_local_recorder(metrics.recorder(), || ...)`.
    pub fn recorder(&self) -> &PrometheusRecorder {
        &self.inner.recorder
    }

    /// Distinct event types that have a series of their own (at most `max_event_types`).
    pub fn distinct_event_types(&self) -> usize {
        self.inner.counters.distinct()
    }

    /// The whole exposition text: a fresh [`EventBus::stats`] snapshot, the per-type counts
    /// and every other series, in the Prometheus text format ([`CONTENT_TYPE`](crate::CONTENT_TYPE)).
    ///
    /// Per-type counts are made on the publishing thread, so they include every event whose
    /// `publish` has returned.
    pub fn render(&self) -> String {
        let mut tracker = self
            .inner
            .tracker
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let stats = self.consistent_stats(&tracker);
        let (totals, rows) = tracker.update(&stats);
        // Still under the lock, so a slower concurrent render cannot set older gauges.
        self.record_bus_series(&stats, totals);
        drop(tracker);
        let mut out = self.inner.handle.render();
        render_subscribers(&mut out, &stats, &rows);
        crate::rate_limits::render(&mut out, &stats);
        out
    }

    /// A snapshot that did not race a reset. `stats()` takes the bus lock that `reset_stats`
    /// holds throughout, so a second snapshot taken after one that saw (part of) a reset sees
    /// all of it; keep taking them until two agree on the reset count.
    fn consistent_stats(&self, tracker: &Tracker) -> BusStats {
        let mut stats = self.inner.bus.stats();
        if !tracker.sees_reset(&stats) {
            return stats;
        }
        for _ in 0..4 {
            let again = self.inner.bus.stats();
            let settled = again.stats_resets == stats.stats_resets;
            stats = again;
            if settled {
                break;
            }
        }
        stats
    }

    fn record_bus_series(&self, stats: &BusStats, totals: Totals) {
        let s = &self.inner.series;
        // `absolute` keeps the larger value, a second guard against going backwards.
        s.published.absolute(totals.published);
        s.filtered.absolute(totals.filtered);
        s.failed.absolute(totals.failed);
        s.dropped.absolute(totals.dropped);
        s.enabled.set(if stats.enabled { 1.0 } else { 0.0 });
        s.history_size.set(stats.history_size as f64);
        s.history_capacity.set(stats.history_capacity as f64);
        s.filters.set(stats.filter_count as f64);
    }
}

/// Writes the per-subscription families straight from the snapshot.
///
/// Why not through the exporter like the rest: (1) the handler-duration histogram arrives
/// already bucketed (cumulative counts over `DURATION_BUCKETS`, a sum and a count). The
/// exporter's histograms only take individual observations, and replaying bucket counts as
/// synthetic observations would cost one stored sample per event between scrapes and could
/// not reproduce the exact sum; writing the buckets out is exact and O(buckets). (2) A
/// subscription that is gone (every `once` handler, every unsubscribe) must stop being
/// exported, or subscribe/unsubscribe churn would grow every scrape forever; the exporter has
/// no way to remove one series, while here a row that left the snapshot simply is not written.
fn render_subscribers(out: &mut String, stats: &BusStats, rows: &[SubscriberFigures]) {
    if stats.subscribers.is_empty() {
        return;
    }
    let ids: Vec<String> = stats.subscribers.iter().map(|s| s.id.to_string()).collect();
    let labels = |i: usize| -> [(&str, &str); 2] {
        [
            ("subscriber", stats.subscribers[i].name.as_str()),
            ("subscription", ids[i].as_str()),
        ]
    };
    type Pick = fn(&bus_core::SubscriberStats, &SubscriberFigures) -> u64;
    let families: [(Described, &str, Pick); 5] = [
        (SUB_DELIVERED, "counter", |_, f| f.delivered),
        (SUB_FAILED, "counter", |_, f| f.failed),
        (SUB_DROPPED, "counter", |_, f| f.dropped),
        (SUB_QUEUE_DEPTH, "gauge", |s, _| s.queue_len as u64),
        (SUB_QUEUE_CAPACITY, "gauge", |s, _| s.queue_capacity as u64),
    ];
    for (described, kind, pick) in families {
        write_header(out, described, kind);
        for (i, (row, figures)) in stats.subscribers.iter().zip(rows).enumerate() {
            write_sample(out, described.0, &labels(i), pick(row, figures));
        }
        out.push('\n');
    }
    if rows.iter().any(|f| f.duration.is_some()) {
        write_header(out, SUB_DURATION, "histogram");
        for (i, figures) in rows.iter().enumerate() {
            if let Some(histogram) = &figures.duration {
                write_histogram(out, SUB_DURATION.0, &labels(i), histogram);
            }
        }
        let _ = writeln!(out);
    }
}

impl bus_core::Attached for BusMetrics {
    fn describe(&self) -> String {
        "metrics".to_owned()
    }

    /// Prometheus text on `GET /metrics`: counts per event type and consumer, no payloads,
    /// so scrapers need no token.
    fn endpoints(&self) -> Vec<bus_core::Endpoint> {
        let metrics = self.clone();
        vec![bus_core::Endpoint {
            path: "/metrics",
            content_type: "text/plain; version=0.0.4; charset=utf-8",
            public: true,
            render: Arc::new(move || metrics.render()),
        }]
    }
}

impl bus_core::Consumer for BusMetrics {
    type Settings = MetricsConfig;
    type Error = MetricsError;

    fn install(
        bus: &EventBus,
        settings: MetricsConfig,
    ) -> Result<Arc<dyn bus_core::Attached>, MetricsError> {
        Ok(Arc::new(Self::attach(bus, settings)?))
    }
}
