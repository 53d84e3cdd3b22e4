//! `consumer-metrics`: Prometheus metrics of a [`bus_core::EventBus`].
//!
//! [`BusMetrics::attach`] subscribes a counter of events per type (a sync subscription, run on
//! the publishing thread, so the counts are exact at any rate; under a cardinality cap) and returns
//! the object whose [`render`](BusMetrics::render) gives the whole exposition text: bus totals
//! and gauges from a fresh [`EventBus::stats`](bus_core::EventBus::stats) snapshot, per-type
//! counts, and per-subscription counters, queue depths and handler-duration histograms.
//! Counters never go backwards, even across `reset_stats`.
//!
//! Everything is recorded into a recorder of its own (no global state), so a daemon can serve
//! `render()` on its own route, and a program that embeds the bus can call
//! [`install_prometheus`] once to be scrapeable at `http://addr/metrics`.
//!
//! ```
//! use bus_core::EventBus;
//! use consumer_metrics::{BusMetrics, MetricsConfig};
//! use serde_json::json;
//!
//! let bus = EventBus::new();
//! let metrics = BusMetrics::attach(&bus, MetricsConfig::default())?;
//! bus.publish("hook.pre_tool", json!({"tool_name": "Read"}));
//! bus.flush_blocking(std::time::Duration::from_secs(5))?;
//!
//! let text = metrics.render();
//! assert!(text.contains("eventbus_events_published_total 1\n"));
//! assert!(text.contains("eventbus_events_total{event_type=\"hook.pre_tool\"} 1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod bus_metrics;
mod error;
mod exposition;
mod monotonic;
mod names;
mod rate_limits;
mod server;
mod subscriber;

pub use bus_metrics::{BusMetrics, MetricsConfig};
pub use error::MetricsError;
pub use exposition::CONTENT_TYPE;
pub use server::{MetricsServer, install_prometheus};
pub use subscriber::{MAX_EVENT_TYPE_LABEL_BYTES, OTHER_EVENT_TYPE};

/// Metadata of every series this crate registers.
pub(crate) static METADATA: metrics::Metadata<'static> =
    metrics::Metadata::new(module_path!(), metrics::Level::INFO, Some(module_path!()));
