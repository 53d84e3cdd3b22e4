//! Read connections and the queries they run. Each read is one SQLite read transaction in
//! WAL mode, so it sees one consistent snapshot and never waits for the writer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use bus_core::Priority;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Transaction};

use crate::filter::Filter;
use crate::types::{from_micros, missed_after};
use crate::{
    EventRef, JsonText, LogId, PAGE_MAX_BYTES, Page, ReadQuery, Render, RenderedPage, StoreError,
    StoredEvent,
};

/// A few read connections; a reader takes a free one, or waits its turn on one.
pub(crate) struct ReaderPool {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReaderPool {
    /// A pool over connections already open (at least one).
    pub(crate) fn new(connections: Vec<Connection>) -> Self {
        assert!(!connections.is_empty(), "a reader pool needs a connection");
        Self {
            connections: connections.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `work` on a connection (blocking: call it from a blocking thread).
    pub(crate) fn with<R>(&self, work: impl FnOnce(&mut Connection) -> R) -> R {
        let mut conn = self.acquire();
        work(&mut conn)
    }

    fn acquire(&self) -> MutexGuard<'_, Connection> {
        for conn in &self.connections {
            if let Ok(guard) = conn.try_lock() {
                return guard;
            }
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        // A panic while reading leaves the connection usable: SQLite ends the statement.
        self.connections[turn]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The oldest stored id and the newest issued id, as one snapshot sees them.
pub(crate) fn bounds(conn: &Connection) -> rusqlite::Result<(Option<LogId>, Option<LogId>)> {
    let first: Option<i64> = conn
        .query_row("SELECT id FROM events ORDER BY id LIMIT 1", [], |row| {
            row.get(0)
        })
        .optional()?;
    // AUTOINCREMENT keeps the highest id ever issued here, even once it is trimmed.
    let last: Option<i64> = conn
        .query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = 'events'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let to_id = |id: i64| u64::try_from(id).ok().filter(|&id| id > 0).map(LogId);
    Ok((first.and_then(to_id), last.and_then(to_id)))
}

/// Reads one page.
pub(crate) fn read_page(conn: &mut Connection, query: &ReadQuery) -> Result<Page, StoreError> {
    let mut events = Vec::with_capacity(query.limit.clamp(1, 4096));
    let end = in_transaction(conn, |tx| {
        scan(tx, query, |event| {
            events.push(StoredEvent {
                id: event.id,
                event_type: event.event_type.to_owned(),
                data: JsonText::trusted(event.data),
                timestamp: event.timestamp,
                priority: event.priority,
            });
        })
    })?;
    Ok(Page {
        events,
        next: end.next,
        missed: end.missed,
    })
}

/// Reads one page, each event rendered onto `out` straight from the row.
pub(crate) fn render_page(
    conn: &mut Connection,
    query: &ReadQuery,
    mut out: String,
    mut render: Render,
) -> Result<RenderedPage, StoreError> {
    let end = in_transaction(conn, |tx| scan(tx, query, |event| render(event, &mut out)))?;
    Ok(RenderedPage {
        text: out,
        events: end.events,
        next: end.next,
        missed: end.missed,
    })
}

fn in_transaction<R>(
    conn: &mut Connection,
    work: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<R>,
) -> Result<R, StoreError> {
    let tx = conn.transaction().map_err(StoreError::unavailable)?;
    let result = work(&tx).map_err(StoreError::unavailable)?;
    tx.finish().map_err(StoreError::unavailable)?;
    Ok(result)
}

/// How a page's scan ended.
struct ScanEnd {
    events: usize,
    next: Option<LogId>,
    missed: u64,
}

/// Visits the events of one page, borrowed from SQLite's row buffer.
fn scan(
    tx: &Transaction<'_>,
    query: &ReadQuery,
    mut visit: impl FnMut(EventRef<'_>),
) -> rusqlite::Result<ScanEnd> {
    let (first, last) = bounds(tx)?;
    let missed = missed_after(query.after, first, last);
    let filter = Filter::new(query);
    let limit = query.limit.max(1);
    let after = query
        .after
        .map_or(0, |id| i64::try_from(id.0).unwrap_or(i64::MAX));
    let mut stmt = tx.prepare_cached(
        "SELECT id, type, data, ts, priority FROM events WHERE id > ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query([after])?;
    let (mut events, mut bytes, mut last_seen) = (0usize, 0usize, None);
    let mut more = false;
    while let Some(row) = rows.next()? {
        if events == limit || bytes >= PAGE_MAX_BYTES {
            more = true;
            break;
        }
        let event_type = row.get_ref(1)?.as_str()?;
        let ts: i64 = row.get(3)?;
        if !filter.accepts(event_type, ts) {
            continue;
        }
        let id = LogId(row.get::<_, i64>(0)? as u64);
        let data = row.get_ref(2)?.as_str()?;
        bytes += data.len();
        events += 1;
        last_seen = Some(id);
        visit(EventRef {
            id,
            event_type,
            data,
            timestamp: from_micros(ts),
            priority: priority(row.get_ref(4)?),
        });
    }
    Ok(ScanEnd {
        events,
        next: if more { last_seen } else { None },
        missed,
    })
}

/// The newest `limit` stored events (at most [`PAGE_MAX_BYTES`] of data, the newest kept),
/// oldest first.
pub(crate) fn read_last(conn: &Connection, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
    let run = || -> rusqlite::Result<Vec<StoredEvent>> {
        let mut stmt = conn.prepare_cached(
            "SELECT id, type, data, ts, priority FROM events ORDER BY id DESC LIMIT ?1",
        )?;
        let mut rows = stmt.query([i64::try_from(limit).unwrap_or(i64::MAX)])?;
        let (mut events, mut bytes) = (Vec::new(), 0usize);
        while let Some(row) = rows.next()? {
            if bytes >= PAGE_MAX_BYTES {
                break;
            }
            let data = row.get_ref(2)?.as_str()?;
            bytes += data.len();
            let id: i64 = row.get(0)?;
            events.push(StoredEvent {
                id: LogId(id as u64),
                event_type: row.get_ref(1)?.as_str()?.to_owned(),
                data: JsonText::trusted(data),
                timestamp: from_micros(row.get(3)?),
                priority: priority(row.get_ref(4)?),
            });
        }
        events.reverse();
        Ok(events)
    };
    run().map_err(StoreError::unavailable)
}

/// A stored priority: NULL (none), or the name this crate wrote (anything else, which only
/// a hand edit could put there, reads as none).
fn priority(value: ValueRef<'_>) -> Option<Priority> {
    value.as_str().ok().and_then(|text| text.parse().ok())
}

/// A consumer's saved position.
pub(crate) fn cursor(conn: &Connection, consumer: &str) -> Result<Option<LogId>, StoreError> {
    let id: Option<i64> = conn
        .query_row(
            "SELECT id FROM cursors WHERE name = ?1",
            [consumer],
            |row| row.get(0),
        )
        .optional()
        .map_err(StoreError::unavailable)?;
    Ok(id.map(|id| LogId(id as u64)))
}
