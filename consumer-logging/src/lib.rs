//! `consumer-logging`: logs the events of a [`bus_core::EventBus`] through `tracing`.
//!
//! [`LoggingSubscriber`] is a [`bus_core::Subscriber`] with its own queue: each event that
//! matches its patterns becomes one structured line with target [`EVENTS_TARGET`]
//! (`eventbus::events`) and the fields `event_id`, `event_type`, `timestamp` and `data`
//! (compact JSON, cut to 1 KiB by default with a `…[truncated: …]` marker). An optional
//! per-type [`RateLimit`] (governor's GCRA, keyed by event type) keeps a flooding event type
//! from flooding the log: its burst and then its rate are logged, and one summary line a
//! second says how many were skipped.
//!
//! Binaries install a formatter with [`install_tracing`] (text or JSON lines on stderr,
//! `DEBUG` when asked). This crate reads no environment variable: its settings are values
//! ([`LoggingConfig`], [`LogFormat`]) that the program, or `bus-config` from
//! `CLAUDE_MPM_EVENTBUS_*` variables, hands it.
//!
//! ```
//! use bus_core::EventBus;
//! use consumer_logging::{LoggingConfig, LoggingSubscriber, RateLimit};
//! use serde_json::json;
//!
//! let bus = EventBus::new();
//! LoggingSubscriber::attach(
//!     &bus,
//!     LoggingConfig {
//!         patterns: vec!["hook.*".into()],
//!         rate_limit: Some("100/s".parse()?),
//!         ..LoggingConfig::default()
//!     },
//! )?;
//! bus.publish("hook.pre_tool", json!({"tool_name": "Read"}));
//! bus.flush_blocking(std::time::Duration::from_secs(5))?;
//! assert_eq!(bus.stats().subscribers[0].delivered, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod install;
mod rate_limit;
mod subscriber;
mod truncate;

/// The rate limit form shared with bus-core (`500/s`, `30000/min burst 100`, ...).
pub use bus_core::RateLimit;
pub use error::LoggingError;
pub use install::{LogFormat, formatter, install_tracing, max_level};
pub use subscriber::{EVENTS_TARGET, LoggingConfig, LoggingSubscriber};
