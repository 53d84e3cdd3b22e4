//! The Redis backend for bus-store's contract tests: each subject gets a fresh
//! `redis-server` of its own, and the log lives on a runtime of its own so that the
//! synchronous `subject()` the contract calls can open it.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::Arc;

use bus_redis::{RedisLog, RedisOptions, RedisServer};
use bus_store::{EventLog, RetentionPolicy};

#[path = "../../../bus-store/tests/common/mod.rs"]
mod store_common;

pub use store_common::{event, event_at, eventually};

/// The backends the contract runs against here.
pub const BACKENDS: [&str; 1] = ["redis"];

/// A log under test and what must outlive it: its server and the runtime its connections
/// and follower run on.
pub struct Subject {
    pub log: Arc<dyn EventLog>,
    pub server: RedisServer,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Subject {
    fn drop(&mut self) {
        // Dropping a runtime inside the test's async context would panic.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A fresh, empty log on a fresh server.
pub fn subject(backend: &str, retention: RetentionPolicy) -> Subject {
    assert_eq!(backend, "redis");
    let server = RedisServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let options = RedisOptions {
        retention,
        ..RedisOptions::new(server.url())
    };
    let log = std::thread::scope(|s| {
        s.spawn(|| runtime.block_on(RedisLog::open(options)))
            .join()
            .expect("open")
    })
    .expect("open the Redis log");
    Subject {
        log: Arc::new(log),
        server,
        runtime: Some(runtime),
    }
}

/// How the Redis log writes `LogId(n)`: the stream id `0-n`.
pub fn id_text(n: u64) -> String {
    format!("0-{n}")
}

/// Texts `parse_id` must refuse with `StoreError::InvalidId`.
pub const BAD_ID_TEXTS: [&str; 9] = [
    "",
    "42",
    "-1",
    "1-42",
    "0-",
    "0-+1",
    "0-1.5",
    " 0-1",
    "0-99999999999999999999",
];
