//! Timestamps as RFC 3339 text, the format the original's stats and history use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Formats a time as RFC 3339 UTC with microseconds, e.g. `2026-11-21T18:04:24.123456Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

/// Nanoseconds since the Unix epoch; 0 for times before it.
pub(crate) fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().min(u128::from(u64::MAX)) as u64)
        .unwrap_or(0)
}

/// The inverse of [`unix_nanos`]; `None` for 0 (never set).
pub(crate) fn from_unix_nanos(n: u64) -> Option<SystemTime> {
    (n != 0).then(|| UNIX_EPOCH + std::time::Duration::from_nanos(n))
}
