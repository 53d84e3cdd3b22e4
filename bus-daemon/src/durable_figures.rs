//! The durable followers' figures: one [`Figures`] per follower, updated as it goes, and
//! their `"durable"` object in `GET /stats`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bus_core::Attached;
use bus_store::{EventLog, LogId};
use serde_json::{Value, json};

/// The figures of one follower, shared with `GET /stats`.
#[derive(Debug, Default)]
pub struct Figures {
    /// The position saved last (0: before the first event).
    pub position: AtomicU64,
    /// Everything up to this id has been read (handed over or skipped).
    pub read: AtomicU64,
    /// Events handed over.
    pub handed: AtomicU64,
    /// Batches handed over.
    pub batches: AtomicU64,
    /// Events trimmed from the log before the follower read them.
    pub missed: AtomicU64,
    /// Batches refused (or panicked on) by the consumer, and failed reads.
    pub failures: AtomicU64,
    /// Cursor saves done.
    pub saves: AtomicU64,
    /// Cursor saves that failed.
    pub save_errors: AtomicU64,
}

impl Figures {
    pub(super) fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub(super) fn add(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    /// The figures as JSON; `lag` is how far the saved position is behind the log's end.
    pub fn to_json(&self, last_id: Option<LogId>) -> Value {
        let position = Self::load(&self.position);
        let last = last_id.map_or(0, |id| id.0);
        json!({
            "position": position,
            "read": Self::load(&self.read),
            "lag": last.saturating_sub(position),
            "handed": Self::load(&self.handed),
            "batches": Self::load(&self.batches),
            "missed": Self::load(&self.missed),
            "failures": Self::load(&self.failures),
            "saves": Self::load(&self.saves),
            "save_errors": Self::load(&self.save_errors),
        })
    }
}

/// The followers' figures in `GET /stats`: `"durable": {"<consumer>": {...}}`.
pub(super) struct FollowerStats {
    pub(super) log: Arc<dyn EventLog>,
    pub(super) entries: Vec<(String, Arc<Figures>)>,
}

impl Attached for FollowerStats {
    fn describe(&self) -> String {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        format!("durable followers ({})", names.join(", "))
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        let last = self.log.last_id();
        let map: serde_json::Map<String, Value> = self
            .entries
            .iter()
            .map(|(name, figures)| (name.clone(), figures.to_json(last)))
            .collect();
        Some(("durable", Value::Object(map)))
    }
}
