//! `relay-socketio`: relays bus events to a Socket.IO server, such as the claude-mpm
//! dashboard (a python-socketio `AsyncServer`, default `http://localhost:8765`, event
//! `claude_event`).
//!
//! [`SocketIoRelay`] is a [`bus_core::Subscriber`]. Matching events (default `hook.*`) go
//! into its bounded buffer; a background task owns one `rust_socketio` client, emits them in
//! order in the original's wire format (see [`wire_payload`]) once the server has
//! acknowledged the connection, and confirms them with acknowledged checkpoints. Events
//! published while the server is down, restarting or not yet up wait in the buffer (the
//! oldest is dropped, and counted, when it is full); whatever was not confirmed is resent
//! after a reconnect or an ack timeout, so delivery is at-least-once and each payload carries
//! the bus `event_id` for de-duplication. Reconnection uses exponential backoff from
//! `retry_delay` for `max_retries` attempts, then one attempt per `connection_cooldown`, each
//! wait ±20 % jitter ([`bus_core::reconnect`], the workspace's one reconnect policy).
//!
//! The relay is also a [`bus_core::DurableSubscriber`]: a host with a durable event log (the
//! eventbus daemon, with [`RelayConfig::durable`]) feeds it from the log in batches within its
//! buffer's room (nothing dropped) and saves, as its cursor, the highest log id the server
//! confirmed with everything before it, so a host killed mid-stream resends on restart
//! what the dashboard had not confirmed.
//!
//! ```no_run
//! use std::{sync::Arc, time::Duration};
//! use bus_core::EventBus;
//! use relay_socketio::{RelayConfig, SocketIoRelay};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus = EventBus::new();
//! let relay = Arc::new(SocketIoRelay::new(RelayConfig::for_port(8765))?);
//! relay.attach(&bus)?;
//! bus.publish("hook.pre_tool", json!({"tool_name": "Read"}));
//!
//! let report = relay.stop(Duration::from_secs(5)).await;
//! println!("relayed {}, undelivered {}", report.relayed, report.undelivered);
//! # Ok(())
//! # }
//! ```
//!
//! Building and checking a configuration needs no server:
//!
//! ```
//! use relay_socketio::{RelayConfig, RelayError, SocketIoRelay};
//!
//! let config = RelayConfig {
//!     patterns: vec!["hook.*".into(), "agent.*".into()],
//!     ..RelayConfig::for_port(9000)
//! };
//! let relay = SocketIoRelay::new(config)?;
//! assert_eq!(relay.stats().buffered, 0);
//!
//! let bad = RelayConfig { buffer_capacity: 0, ..RelayConfig::default() };
//! assert!(matches!(
//!     SocketIoRelay::new(bad),
//!     Err(RelayError::InvalidConfig { field: "buffer_capacity", .. })
//! ));
//! # Ok::<(), RelayError>(())
//! ```

#![forbid(unsafe_code)]

mod buffer;
mod config;
mod connection;
mod durable;
mod error;
mod pump;
mod relay;
mod shared;
mod stats;
mod wire;

pub use config::{DEFAULT_EVENT_NAME, DEFAULT_PORT, RelayCondition, RelayConfig};
pub use error::RelayError;
pub use relay::{RELAY_NAME, SocketIoRelay, StopReport};
pub use stats::RelayStats;
pub use wire::{LIFTED_FIELDS, SOURCE, wire_payload};
