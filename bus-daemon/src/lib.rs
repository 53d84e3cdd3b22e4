//! `bus-daemon`: the `eventbus` daemon (an [`EventBus`](bus_core::EventBus) behind a small
//! HTTP API), its client and its command line. The configuration and the wiring of the
//! consumers come from `bus-config`; this crate serves what it wires.
//!
//! Start a daemon on a free loopback port, publish to it with the [`Client`], and stop it:
//!
//! ```
//! use bus_daemon::{Client, Daemon};
//!
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(async {
//! let config = bus_config::Config::from_iter([
//!     ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
//!     ("CLAUDE_MPM_EVENTBUS_LOGGING".to_owned(), "false".to_owned()),
//!     ("CLAUDE_MPM_EVENTBUS_STORE".to_owned(), "memory".to_owned()),
//! ])?;
//! let daemon = Daemon::start(&config).await?;
//! let client = Client::new(daemon.local_addr(), None)?;
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let serving = tokio::spawn(daemon.run(async { let _ = stopped.await; }));
//!
//! // The client blocks; the daemon serves on the runtime's worker threads meanwhile.
//! let reply = client.publish("hook.pre_tool", &serde_json::json!({"tool_name": "Read"}))?;
//! assert_eq!(reply.accepted, 1);
//!
//! let _ = stop.send(());
//! let outcome = serving.await??;
//! assert_eq!(outcome.stats.events_published, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The `eventbus` binary
//!
//! - `eventbus` / `eventbus serve`: the daemon; HTTP API in [`http`]. Exit code 2 for a bad
//!   configuration, an address in use, or a non-loopback address without a token.
//! - `eventbus publish TYPE [JSON]`, `eventbus publish -` (NDJSON on stdin): publish to a
//!   running daemon ([`Client`]); `--addr` overrides `CLAUDE_MPM_EVENTBUS_HTTP_ADDR`, the
//!   token comes from `CLAUDE_MPM_EVENTBUS_TOKEN`. Prints the daemon's [`IngestReply`] as
//!   JSON; exits 0 only when every event was accepted, 1 when the daemon is unreachable (or
//!   fails), 2 on bad input or a 4xx answer, 3 when events were refused (bus disabled or
//!   shutting down), 4 when the bus's filters dropped some (none refused); a one-line reason
//!   goes to stderr.
//! - `eventbus hook`: a Claude Code hook command ([`hook`]): publishes its stdin as
//!   `hook.<subtype>`, prints nothing, always exits 0, and spools the event ([`spool`]) when
//!   the daemon is down; `eventbus hook --settings` prints the settings.json block.
//! - `eventbus config [--json]`: print the effective configuration, token masked.
//! - `eventbus open`: print the web view's URL ([`ui`]), and check that the daemon answers.
//!
//! `CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER` exists for tests only: it attaches a deliberately
//! slow consumer so that draining at shutdown can be observed.
//!
//! On SIGINT/SIGTERM the daemon stops accepting connections, drains the consumers' queues
//! within `CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT`, prints what could not be delivered, and
//! exits 0.
//!
//! # Token and proxies
//!
//! With `CLAUDE_MPM_EVENTBUS_TOKEN` set, every route except `GET /healthz` and `GET /metrics`
//! needs `Authorization: Bearer <token>` (scheme in any case), reads included: `GET
//! /events/recent` returns event payloads, and `/stats` and `/config` describe the setup.
//! Probes and Prometheus scrapers (counts per event type, no payloads) need no token.
//!
//! Neither [`Client`] nor the relay goes through `HTTP_PROXY`/`ALL_PROXY`: the daemon is
//! addressed by `IP:PORT`, almost always on loopback, and the relay connects to the dashboard
//! over a WebSocket directly.

#![forbid(unsafe_code)]

pub mod backend;
mod bignum;
pub mod budget;
mod client;
mod daemon;
pub mod durable;
mod error;
mod event_json;
pub mod group;
mod guard;
pub mod hook;
pub mod http;
mod ingest;
mod limits;
pub mod logcmd;
pub mod read;
mod replay;
mod rules;
pub mod shared;
pub mod spool;
pub mod stream;
pub mod ui;

pub use client::Client;
pub use daemon::{Daemon, Outcome, shutdown_signal};
pub use error::{PublishError, ServeError};
pub use ingest::{BodyFormat, IncomingEvent, Ingest, IngestReply, parse_body};
