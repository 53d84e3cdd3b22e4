//! The durable event log of the eventbus daemon.
//!
//! The daemon answers `POST /events` only after the events are committed here; SSE streams,
//! `GET /events?after=ID` paging, `eventbus tail -f` and durable consumers (which resume from a
//! saved cursor, at least once) all read from it. The contract is the [`EventLog`] trait, with
//! two backends:
//!
//! - [`SqliteLog`]: one SQLite file in WAL mode. A single writer thread drains every waiting
//!   append into one transaction and commits once (group commit), so many concurrent callers
//!   share each fsync; reads use their own connections and never wait for the writer.
//! - [`MemoryLog`]: the same in memory, for tests and `CLAUDE_MPM_EVENTBUS_STORE=memory`.
//!
//! [`DurableBus`] puts a log in front of a program's own [`bus_core::EventBus`]: the same
//! guarantee and the same ids as the daemon's. When other processes append to the same log
//! (several daemons on one Redis stream), a [shared](DurableBus::shared) `DurableBus` and its
//! [`LogFeed`] bring every event of the log, whoever appended it, to the program's bus in log
//! order: a bus bridged to the shared stream, without the daemon.
//!
//! Ids ([`LogId`]) are dense and never reused, so a consumer whose saved position was trimmed
//! away by retention learns exactly how many events it missed ([`Page::missed`]).
//!
//! ```
//! use bus_store::{EventLog, JsonText, LogId, NewEvent, ReadQuery, SqliteLog, SqliteOptions};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bus_store::StoreError> {
//! let dir = tempfile::tempdir().unwrap();
//! let log = SqliteLog::open(dir.path().join("events.db"), SqliteOptions::default())?;
//! let data = JsonText::parse(r#"{"tool":"Bash"}"#)?;
//! let ids = log.append(vec![NewEvent::new("hook.pre_tool", data)]).await?;
//! assert_eq!(ids, [LogId(1)]);
//!
//! let page = log.read(ReadQuery { pattern: Some("hook.*".into()), ..ReadQuery::default() }).await?;
//! assert_eq!(page.events[0].data.as_str(), r#"{"tool":"Bash"}"#);
//! assert_eq!(page.next, None); // the end of the log
//!
//! log.save_cursor("relay", ids[0]).await?;
//! assert_eq!(log.cursor("relay").await?, Some(LogId(1)));
//! log.close().await
//! # }
//! ```
#![forbid(unsafe_code)]

mod durable_bus;
mod error;
mod feed;
mod filter;
mod health;
mod log;
mod memory;
mod render;
mod sqlite;
mod types;

/// An event's priority, as [`NewEvent::priority`] and [`StoredEvent::priority`] carry it.
pub use bus_core::Priority;
pub use durable_bus::{Admission, DurableBus, DurableError};
pub use error::StoreError;
pub use feed::{FeedReport, FeedStatus, LogFeed, SAVE_INTERVAL as FEED_SAVE_INTERVAL};
pub use health::{BackendHealth, LOG_RECONNECT};
pub use log::EventLog;
pub use memory::MemoryLog;
pub use render::{EventRef, Render, RenderedPage};
pub use sqlite::{SQLITE_SCHEMA_VERSION, SqliteLog, SqliteOptions};
pub use types::{
    Durability, JsonText, LogId, NewEvent, PAGE_MAX_BYTES, Page, ReadQuery, RetentionPolicy,
    StoreStats, StoredEvent,
};
