//! The eventbus durable log on Redis Streams: many daemons, on many hosts, share one ordered
//! event stream.
//!
//! [`RedisLog`] implements bus-store's [`EventLog`](bus_store::EventLog) on one stream, so the
//! daemon (with `CLAUDE_MPM_EVENTBUS_REDIS_URL`) or a program's
//! [`DurableBus`](bus_store::DurableBus) can put its log there instead of a local file:
//!
//! - `append` is one `MULTI`/`EXEC` of `XADD`s (the last with `MAXLEN =` from the retention): a batch is
//!   atomic, gets contiguous ids, and is answered only once Redis has accepted it;
//! - ids are the stream ids `0-1`, `0-2`, ...: `XADD key 0-*` lets Redis number the entries,
//!   atomically for all daemons, densely as the contract wants; HTTP shows them as they are;
//! - `read`/`read_last` are `XRANGE`/`XREVRANGE` (pattern and `since` applied here);
//! - a task blocked in `XREAD BLOCK` wakes the log's followers when any daemon appends: the
//!   fan-out that brings every event to every daemon's SSE clients and durable consumers;
//! - cursors are fields of the hash `<stream>:cursors`;
//! - [`RedisGroup`] makes consumers of several daemons share the work through a consumer
//!   group (`XREADGROUP`, `XACK`, `XAUTOCLAIM` for a dead member's pending entries);
//! - connections reconnect by themselves (redis's connection manager); while Redis cannot be
//!   reached, calls fail with [`StoreError::Unavailable`](bus_store::StoreError::Unavailable)
//!   naming the server and the cause, and the daemon answers 503.
//!
//! Needs Redis 7.0 or newer. Durability is Redis's own (its AOF and `appendfsync` settings).
//!
//! ```no_run
//! use bus_redis::{RedisLog, RedisOptions};
//! use bus_store::{EventLog, JsonText, NewEvent, ReadQuery};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), bus_store::StoreError> {
//! // Needs a Redis server: the crate's tests start their own.
//! let log = RedisLog::open(RedisOptions::new("redis://127.0.0.1:6379/0")).await?;
//! let data = JsonText::parse(r#"{"tool":"Bash"}"#)?;
//! let ids = log.append(vec![NewEvent::new("hook.pre_tool", data)]).await?;
//! assert!(log.format_id(ids[0]).starts_with("0-"));
//!
//! let page = log.read(ReadQuery::default()).await?;
//! assert_eq!(page.events.last().map(|e| e.id), Some(ids[0]));
//! log.close().await
//! # }
//! ```
#![forbid(unsafe_code)]

mod entry;
mod follower;
mod group;
mod health;
mod ids;
mod log;
mod options;
mod positions;
mod scan;
#[cfg(feature = "test-server")]
mod test_server;

pub use group::{GroupBatch, GroupRead, MAX_BLOCK, RedisGroup};
pub use log::RedisLog;
pub use options::{DEFAULT_STREAM, RedisOptions};
#[cfg(feature = "test-server")]
pub use test_server::RedisServer;
