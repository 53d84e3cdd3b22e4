//! Helpers shared by the integration tests: backends to run the contract against, and events.

#![allow(dead_code)] // each test file uses its own subset

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bus_store::{
    Durability, EventLog, JsonText, MemoryLog, NewEvent, RetentionPolicy, SqliteLog, SqliteOptions,
};

/// A log under test and whatever must outlive it (the temporary directory).
pub struct Subject {
    pub log: Arc<dyn EventLog>,
    pub _dir: Option<tempfile::TempDir>,
}

/// The backends every contract test runs against.
pub const BACKENDS: [&str; 2] = ["memory", "sqlite"];

/// How these backends write `LogId(n)` (`format_id`): decimal.
pub fn id_text(n: u64) -> String {
    n.to_string()
}

/// Texts `parse_id` must refuse with `StoreError::InvalidId`.
pub const BAD_ID_TEXTS: [&str; 7] = ["", "-1", "+1", "1.5", "abc", " 1", "99999999999999999999"];

/// A fresh, empty log of the named backend.
pub fn subject(backend: &str, retention: RetentionPolicy) -> Subject {
    match backend {
        "memory" => Subject {
            log: Arc::new(MemoryLog::new(retention)),
            _dir: None,
        },
        "sqlite" => {
            let dir = tempfile::tempdir().expect("tempdir");
            let options = SqliteOptions {
                retention,
                durability: Durability::Normal,
                ..SqliteOptions::default()
            };
            let log = SqliteLog::open(dir.path().join("events.db"), options).expect("open");
            Subject {
                log: Arc::new(log),
                _dir: Some(dir),
            }
        }
        other => panic!("no backend {other}"),
    }
}

/// An event of `event_type` whose data is `{"n": n}`.
pub fn event(event_type: &str, n: u64) -> NewEvent {
    NewEvent::new(
        event_type,
        JsonText::parse(&format!("{{\"n\":{n}}}")).unwrap(),
    )
}

/// [`event`] stamped at `timestamp`.
pub fn event_at(event_type: &str, n: u64, timestamp: SystemTime) -> NewEvent {
    NewEvent {
        timestamp,
        ..event(event_type, n)
    }
}

/// Waits (up to 10 s) until `condition` holds: retention runs in the background.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
