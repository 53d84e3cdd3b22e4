//! How many events failed validation, in total and per event type.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// Most event types counted separately; the rest are summed under `(other)`, so a stream
/// of distinct invalid types cannot grow memory.
pub const MAX_COUNTED_TYPES: usize = 1000;

/// Invalid-event counters, shared by a validator and whoever reports them.
#[derive(Debug, Default)]
pub struct InvalidCounts {
    total: AtomicU64,
    // Only invalid events take this lock; valid ones never touch it.
    by_type: Mutex<BTreeMap<String, u64>>,
}

/// A snapshot of [`InvalidCounts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvalidSummary {
    /// Invalid events seen.
    pub total: u64,
    /// Per event type.
    pub by_type: BTreeMap<String, u64>,
}

impl InvalidCounts {
    /// Counts one invalid event of `event_type`.
    pub fn record(&self, event_type: &str) {
        self.total.fetch_add(1, Ordering::Relaxed);
        let mut by_type = self
            .by_type
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = if by_type.contains_key(event_type) || by_type.len() < MAX_COUNTED_TYPES {
            event_type
        } else {
            "(other)"
        };
        *by_type.entry(key.to_owned()).or_default() += 1;
    }

    /// The counts now.
    pub fn summary(&self) -> InvalidSummary {
        InvalidSummary {
            total: self.total.load(Ordering::Relaxed),
            by_type: self
                .by_type
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }

    /// The counts as `{"events_invalid": N, "events_invalid_by_type": {...}}`.
    pub fn to_json(&self) -> Value {
        let s = self.summary();
        json!({ "events_invalid": s.total, "events_invalid_by_type": s.by_type })
    }
}
