//! The plain values that go in and out of an [`EventLog`](crate::EventLog).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bus_core::Priority;
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// The position of a stored event: unique, strictly increasing in log order, dense (one per event,
/// no gaps) and never reused, even after trimming or a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogId(pub u64);

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An event's data as JSON text that is known to be valid JSON.
///
/// The log stores and returns the text as it was given, so a daemon that received raw JSON
/// never re-serializes it; cloning is cheap (shared).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct JsonText(Arc<str>);

impl JsonText {
    /// Checks that `text` is one valid JSON value and wraps it unchanged.
    pub fn parse(text: &str) -> Result<Self, StoreError> {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|err| {
            StoreError::InvalidJson {
                detail: err.to_string(),
            }
        })?;
        Ok(Self(Arc::from(text)))
    }

    /// Serializes a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Self {
        Self(Arc::from(value.to_string()))
    }

    /// Wraps text that this crate itself stored after checking it.
    pub(crate) fn trusted(text: &str) -> Self {
        Self(Arc::from(text))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text into a [`serde_json::Value`].
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }
}

impl fmt::Debug for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for JsonText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The event type, e.g. `hook.pre_tool`; read queries match patterns against it.
    pub event_type: String,
    /// The event's payload.
    pub data: JsonText,
    /// When the event happened (stored with microsecond precision).
    pub timestamp: SystemTime,
    /// The priority its publisher gave it (`None`: each consumer's rules decide). Stored with
    /// the event, so a consumer fed from the log (a durable relay, a replay) orders it as a
    /// live one would.
    pub priority: Option<Priority>,
}

impl NewEvent {
    /// An event stamped with the current time, with no priority of its own.
    pub fn new(event_type: impl Into<String>, data: JsonText) -> Self {
        Self {
            event_type: event_type.into(),
            data,
            timestamp: SystemTime::now(),
            priority: None,
        }
    }

    /// This event with the priority its publisher gives it.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }
}

/// An event read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its position in the log.
    pub id: LogId,
    /// The event type.
    pub event_type: String,
    /// The payload, as it was appended.
    pub data: JsonText,
    /// When the event happened, to the microsecond.
    pub timestamp: SystemTime,
    /// The priority its publisher gave it, as appended.
    pub priority: Option<Priority>,
}

impl StoredEvent {
    /// The bus event it stands for: the log's id, type, data and timestamp, and the
    /// publisher's priority. Fails only when the data is not JSON (a damaged store).
    pub fn to_event(&self) -> Result<bus_core::Event, serde_json::Error> {
        let event = bus_core::Event::from_parts(
            self.id.0,
            &self.event_type,
            self.data.to_value()?,
            self.timestamp,
        );
        Ok(match self.priority {
            Some(priority) => event.with_priority(priority),
            None => event,
        })
    }
}

/// The most payload bytes one page holds: a read stops early once its events' data add up
/// to this (always taking at least one event) and sets `next`, so paging through events of
/// many megabytes each never builds a reply of gigabytes.
pub const PAGE_MAX_BYTES: usize = 8 << 20;

/// What to read: events after a position, optionally filtered, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadQuery {
    /// Only events with a larger id; `None` reads from the oldest stored event.
    pub after: Option<LogId>,
    /// Only events whose timestamp is at or after this time.
    pub since: Option<SystemTime>,
    /// Only events whose type matches this glob (`*` any run, `?` one character).
    pub pattern: Option<String>,
    /// The most events in one page; 0 is read as 1. A page also stops at
    /// [`PAGE_MAX_BYTES`] of data.
    pub limit: usize,
}

impl Default for ReadQuery {
    fn default() -> Self {
        Self {
            after: None,
            since: None,
            pattern: None,
            limit: 1000,
        }
    }
}

impl ReadQuery {
    /// Up to `limit` events after `after` (all of them from the start if `None`), unfiltered.
    pub fn after(after: Option<LogId>, limit: usize) -> Self {
        Self {
            after,
            limit,
            ..Self::default()
        }
    }
}

/// One page of a read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    /// The events, oldest first.
    pub events: Vec<StoredEvent>,
    /// Pass this as `after` to read the next page; `None` when the read reached the end of
    /// the log (wait on [`EventLog::subscribe_appends`](crate::EventLog::subscribe_appends)
    /// and read again from the last event's id).
    pub next: Option<LogId>,
    /// How many events existed after the query's `after` but were trimmed by retention
    /// before this read: what a consumer resuming from a saved position has missed.
    pub missed: u64,
}

impl Page {
    /// The page a backend's scan produced: `more` when it stopped before the end of the log
    /// (at the limit or the byte cap), so `next` is the last event's id.
    pub fn scanned(events: Vec<StoredEvent>, more: bool, missed: u64) -> Self {
        let next = if more {
            events.last().map(|e| e.id)
        } else {
            None
        };
        Page {
            events,
            next,
            missed,
        }
    }
}

/// How long events are kept. Trimming always removes the oldest events first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    /// Keep at most this many events (default 1,000,000).
    pub max_events: u64,
    /// Drop events older than this (default 7 days). Age trimming stops at the first event
    /// (in log order) that is young enough, so log order and ids stay a dense range.
    pub max_age: Duration,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            max_events: 1_000_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// How hard a commit works to survive crashes. Every mode is crash-safe for the store's
/// integrity (WAL journal); they differ in which acknowledged appends a crash can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `PRAGMA synchronous=FULL`: the WAL is fsynced before `append` answers. Nothing that
    /// was acknowledged is lost, by a process crash, an OS crash or a power loss.
    #[default]
    Full,
    /// `PRAGMA synchronous=NORMAL` in WAL mode: no fsync per commit (only at checkpoints).
    /// A process crash loses nothing acknowledged (the data is in the OS's cache); an OS
    /// crash or power loss can lose the last acknowledged transactions, but never corrupts.
    Normal,
    /// `PRAGMA synchronous=OFF`: SQLite never fsyncs. A process crash loses nothing
    /// acknowledged; an OS crash or power loss can lose any amount of recent data and, at a
    /// checkpoint, may corrupt the database.
    Off,
}

impl Durability {
    /// The value for `PRAGMA synchronous`.
    pub(crate) fn pragma(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Normal => "NORMAL",
            Self::Off => "OFF",
        }
    }
}

/// Counters and positions of a log, for `/stats`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StoreStats {
    /// Which backend: `sqlite` or `memory`.
    pub backend: String,
    /// Events appended since the log was opened.
    pub appended: u64,
    /// Transactions committed since the log was opened (each may hold many appends).
    pub commits: u64,
    /// Events removed by retention since the log was opened.
    pub trimmed: u64,
    /// Events stored now.
    pub stored: u64,
    /// The oldest stored event, if any.
    pub first_id: Option<LogId>,
    /// The newest id ever issued, if any (it may have been trimmed).
    pub last_id: Option<LogId>,
    /// Size of the store's files (database and WAL), when the backend has files.
    pub bytes_on_disk: Option<u64>,
}

/// How many events after `after` were trimmed away, given the oldest stored id and the last
/// issued id. Ids are dense, so this is exact.
pub(crate) fn missed_after(after: Option<LogId>, first: Option<LogId>, last: Option<LogId>) -> u64 {
    let (Some(after), Some(last)) = (after, last) else {
        return 0;
    };
    // Everything up to `oldest_kept - 1` is gone.
    let oldest_kept = first.map_or(last.0.saturating_add(1), |first| first.0);
    oldest_kept.saturating_sub(1).saturating_sub(after.0)
}

/// Microseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn to_micros(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// The inverse of [`to_micros`].
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missed_counts_trimmed_ids_only() {
        let id = |n| Some(LogId(n));
        assert_eq!(missed_after(id(3), id(10), id(20)), 6); // 4..=9
        assert_eq!(missed_after(id(9), id(10), id(20)), 0);
        assert_eq!(missed_after(id(15), id(10), id(20)), 0);
        assert_eq!(missed_after(id(0), id(1), id(20)), 0);
        assert_eq!(missed_after(id(5), None, id(20)), 15); // all trimmed: 6..=20
        assert_eq!(missed_after(None, id(10), id(20)), 0);
        assert_eq!(missed_after(id(5), None, None), 0);
    }

    #[test]
    fn micros_round_trip_both_sides_of_the_epoch() {
        for micros in [0, 1, -1, 1_700_000_000_123_456, -86_400_000_000] {
            assert_eq!(to_micros(from_micros(micros)), micros);
        }
    }

    #[test]
    fn json_text_rejects_invalid_json_and_keeps_valid_text_verbatim() {
        assert!(matches!(
            JsonText::parse("{\"a\":"),
            Err(StoreError::InvalidJson { .. })
        ));
        assert!(JsonText::parse("1 2").is_err());
        let text = "{ \"a\" : [1, 2.50] }";
        assert_eq!(JsonText::parse(text).unwrap().as_str(), text);
    }
}
