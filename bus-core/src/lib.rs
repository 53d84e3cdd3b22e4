//! `bus-core`: a fast, correct in-process publish/subscribe event bus.
//!
//! Producers call [`EventBus::publish`] with an event type such as `hook.pre_tool` and a
//! JSON payload; consumers subscribe with an exact name or a glob (`hook.*`, `*`):
//!
//! - [`EventBus::on`]: a sync closure, run on the publishing thread before `publish` returns;
//! - [`EventBus::on_async`]: an async closure with its own bounded queue and worker task;
//! - [`EventBus::subscribe`]: a [`Subscriber`] (logging, metrics, a Socket.IO relay, ...),
//!   also with its own queue and worker, so one slow consumer never holds up another.
//!
//! Every consumer sees the events of one publishing thread (or task) in the order they were
//! published. Event ids are unique and increase in the order the bus accepts events; events
//! published at the same moment from different threads may reach a queued consumer in an
//! order that differs from their ids. A bus built with [`IdOrder::PerThread`] gives up that
//! bus-wide id order (ids then increase per publishing thread) so that publishers on several
//! threads share no memory per publish and scale with cores.
//! An event whose id was assigned elsewhere (a durable log's) is published with
//! [`EventBus::try_publish_event`] and keeps that id; [`Event::is_replay`] marks one published
//! again.
//!
//! A queued consumer can have a [`RateLimit`] (governor's GCRA: `delay` or `drop` what is over
//! its rate) and [`PriorityRules`]: `high` events are taken before `normal` and `low` ones,
//! each waiting lower priority still getting one event in [`LOWER_SHARE`], and a full queue
//! drops the lowest first; within one priority the order is as above. See [`QueueOptions`].
//!
//! A handler that fails or panics is counted and logged through `tracing`; the others still
//! run. Filters, a bounded history of recent events and [`BusStats`] complete the picture.
//! Content rules plug in as two small traits: a [`Validator`] checks each payload before
//! dispatch (an invalid event is refused with [`Refusal::Invalid`]), and a [`Condition`]
//! chooses events by content for one subscription ([`EventBus::on_where`],
//! [`Subscriber::condition`]) or for the whole bus ([`EventBus::set_filter_where`]); the
//! `bus-schema` (JSON Schema) and `bus-cel` (CEL) crates implement them.
//! This crate is the small, stable core the consumer crates depend on.
//!
//! ```
//! use bus_core::{EventBus, Event};
//! use serde_json::json;
//! use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
//!
//! let bus = EventBus::new();
//! let seen = Arc::new(AtomicUsize::new(0));
//! let counter = seen.clone();
//! bus.on("hook.*", move |event: &Event| {
//!     assert_eq!(event.data()["tool_name"], "Read");
//!     counter.fetch_add(1, Ordering::Relaxed);
//! })?;
//! assert!(bus.publish("hook.pre_tool", json!({"tool_name": "Read"})));
//! assert_eq!(seen.load(Ordering::Relaxed), 1);
//! assert_eq!(bus.stats().events_published, 1);
//! # Ok::<(), bus_core::BusError>(())
//! ```

// One module (`prefetch`, a cache hint that cannot fault) allows it; nothing else may.
#![deny(unsafe_code)]

mod admin;
mod builder;
mod bus;
mod clock;
mod consumer;
mod content;
mod durable;
mod error;
mod event;
mod gate;
mod history;
mod ids;
mod lanes;
mod lifecycle;
mod limits;
mod pattern;
mod prefetch;
mod priority;
mod publish;
mod queue;
mod rate;
pub mod reconnect;
mod registry;
mod routing;
mod runtime;
mod shard;
mod snapshot;
mod stats;
mod subscribe;
mod subscriber;
mod subscription;
mod text;
mod time;

pub use builder::EventBusBuilder;
pub use bus::{EventBus, WeakEventBus};
pub use consumer::{Attached, Consumer, Endpoint, Render};
pub use content::{Condition, EventView, Invalid, Validator, Violation};
pub use durable::{DurableSubscriber, StartPosition};
pub use error::BusError;
pub use event::Event;
pub use gate::{OTHER_TYPES, RateGate, RateLimitStats, Verdict};
pub use ids::{ID_BLOCK, IdOrder};
pub use lifecycle::{ShutdownReport, Undelivered};
pub use pattern::Pattern;
pub use priority::{LOWER_SHARE, Priority, PriorityRules};
pub use publish::Refusal;
pub use rate::{ACCEPTED_FORMS, RateLimit, RatePolicy, RateUnit};
pub use reconnect::ReconnectPolicy;
pub use stats::{BusStats, DURATION_BUCKETS, DurationHistogram, SubscriberKind, SubscriberStats};
pub use subscribe::SubscriptionId;
pub use subscriber::{
    HandlerError, HandlerResult, IntoHandlerResult, Overflow, Publisher, Subscriber,
};
pub use subscription::QueueOptions;

/// Re-exported so that implementors of [`Subscriber`] use the same macro version.
pub use async_trait::async_trait;

/// The text of a caught panic, for the log line.
pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic without a message)")
}
