//! The per-event test of a [`ReadQuery`](crate::ReadQuery), shared by the backends.

use std::time::SystemTime;

use wildmatch::WildMatch;

use crate::ReadQuery;
use crate::types::to_micros;

/// A compiled read filter.
pub(crate) struct Filter {
    since_micros: Option<i64>,
    pattern: Option<WildMatch>,
}

impl Filter {
    /// Compiles the query's `since` and `pattern`.
    pub(crate) fn new(query: &ReadQuery) -> Self {
        Self {
            since_micros: query.since.map(to_micros),
            pattern: query.pattern.as_deref().map(WildMatch::new),
        }
    }

    /// Whether an event with this type and timestamp (microseconds) belongs in the page.
    pub(crate) fn accepts(&self, event_type: &str, ts_micros: i64) -> bool {
        self.since_micros.is_none_or(|since| ts_micros >= since)
            && self.pattern.as_ref().is_none_or(|p| p.matches(event_type))
    }

    /// [`accepts`](Self::accepts) for a `SystemTime`.
    pub(crate) fn accepts_at(&self, event_type: &str, time: SystemTime) -> bool {
        self.accepts(event_type, to_micros(time))
    }
}
