//! The writer thread: it owns the write connection, commits every request waiting in its
//! channel in one transaction (group commit), answers the callers, and trims for retention.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

use bus_core::Priority;
use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{oneshot, watch};

use crate::types::to_micros;
use crate::{LogId, NewEvent, RetentionPolicy, StoreError};

/// How often retention looks at the log while no chunk is pending.
const RETENTION_INTERVAL: Duration = Duration::from_secs(1);

/// A request for the writer.
pub(crate) enum Command {
    /// Append a batch; answer its ids after the commit.
    Append {
        /// The events, in order.
        batch: Vec<NewEvent>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<LogId>, StoreError>>,
    },
    /// Save a consumer's position in the same kind of group commit.
    SaveCursor {
        /// The consumer.
        name: String,
        /// Its position.
        id: LogId,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
}

impl Command {
    fn events(&self) -> usize {
        match self {
            Self::Append { batch, .. } => batch.len(),
            Self::SaveCursor { .. } => 1,
        }
    }
}

/// What the writer publishes to the log's handle; 0 stands for "none" in the id fields.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) first_id: AtomicU64,
    pub(crate) last_id: AtomicU64,
    pub(crate) appended: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) trimmed: AtomicU64,
    pub(crate) appends: watch::Sender<Option<LogId>>,
}

/// How the writer works.
pub(crate) struct WriterConfig {
    pub(crate) retention: RetentionPolicy,
    /// The most events one transaction takes from the queue.
    pub(crate) max_group_events: usize,
    /// The most events one retention transaction deletes.
    pub(crate) trim_chunk: u64,
}

/// The writer's state; [`Writer::run`] is the thread's body.
pub(crate) struct Writer {
    pub(crate) conn: Connection,
    pub(crate) requests: Receiver<Command>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) config: WriterConfig,
    /// Held for as long as the writer runs; dropping it releases the store.
    pub(crate) lock: File,
}

impl Writer {
    /// Serves requests until every sender is gone, then checkpoints and releases the store.
    pub(crate) fn run(mut self) {
        let mut last_retention = Instant::now()
            .checked_sub(RETENTION_INTERVAL)
            .unwrap_or_else(Instant::now);
        let mut trim_pending = false;
        loop {
            let wait = if trim_pending {
                Duration::ZERO
            } else {
                RETENTION_INTERVAL.saturating_sub(last_retention.elapsed())
            };
            match self.requests.recv_timeout(wait) {
                Ok(first) => self.commit_group(first),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if trim_pending || last_retention.elapsed() >= RETENTION_INTERVAL {
                last_retention = Instant::now();
                trim_pending = self.trim_chunk();
            }
        }
        if let Err(err) = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!(%err, "event store: final checkpoint failed (the WAL keeps the data)");
        }
        drop(self.conn);
        drop(self.lock);
    }

    /// Takes `first` and everything else waiting, commits it once, answers everyone.
    fn commit_group(&mut self, first: Command) {
        let mut group = vec![first];
        let mut events = group[0].events();
        while events < self.config.max_group_events {
            match self.requests.try_recv() {
                Ok(command) => {
                    events += command.events();
                    group.push(command);
                }
                Err(_) => break,
            }
        }
        match write_group(&mut self.conn, &group) {
            Ok(ids) => {
                let appended: usize = ids.iter().map(Vec::len).sum();
                if let Some(last) = ids.iter().rev().find_map(|ids| ids.last()) {
                    let first = ids.iter().find_map(|ids| ids.first()).map_or(0, |id| id.0);
                    let _ = self.shared.first_id.compare_exchange(
                        0,
                        first,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                    self.shared.last_id.store(last.0, Ordering::Release);
                    self.shared.appends.send_replace(Some(*last));
                }
                self.shared
                    .appended
                    .fetch_add(appended as u64, Ordering::Relaxed);
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                for (command, ids) in group.into_iter().zip(ids) {
                    match command {
                        Command::Append { reply, .. } => drop(reply.send(Ok(ids))),
                        Command::SaveCursor { reply, .. } => drop(reply.send(Ok(()))),
                    }
                }
            }
            Err(err) => {
                tracing::warn!(%err, requests = group.len(), "event store: commit failed, rolled back");
                let cause = err.to_string();
                for command in group {
                    let err = StoreError::Unavailable {
                        cause: cause.clone(),
                    };
                    match command {
                        Command::Append { reply, .. } => drop(reply.send(Err(err))),
                        Command::SaveCursor { reply, .. } => drop(reply.send(Err(err))),
                    }
                }
            }
        }
    }

    /// Deletes one bounded chunk of the oldest events that retention no longer keeps; answers
    /// whether more remain to delete.
    fn trim_chunk(&mut self) -> bool {
        let first = self.shared.first_id.load(Ordering::Acquire);
        let last = self.shared.last_id.load(Ordering::Acquire);
        if first == 0 {
            return false;
        }
        let chunk_end = first.saturating_add(self.config.trim_chunk - 1).min(last);
        let stored = last - first + 1;
        // Trim ids up to `cut` (0 = nothing): first the count, then the age of what follows.
        let mut cut = last
            .saturating_sub(self.config.retention.max_events)
            .min(chunk_end);
        let cutoff = SystemTime::now()
            .checked_sub(self.config.retention.max_age)
            .map_or(i64::MIN, to_micros);
        let result = (|| -> rusqlite::Result<u64> {
            if cut < chunk_end {
                cut = oldest_run_before(&self.conn, cut.max(first - 1), chunk_end, cutoff)?;
            }
            if cut < first {
                return Ok(0);
            }
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute("DELETE FROM events WHERE id <= ?1", [cut as i64])?;
            tx.commit()?;
            Ok(deleted as u64)
        })();
        match result {
            Ok(0) => false,
            Ok(deleted) => {
                let new_first = if cut >= last { 0 } else { cut + 1 };
                self.shared.first_id.store(new_first, Ordering::Release);
                self.shared.trimmed.fetch_add(deleted, Ordering::Relaxed);
                tracing::debug!(deleted, stored, "event store: retention trimmed");
                cut == chunk_end && cut < last
            }
            Err(err) => {
                tracing::warn!(%err, "event store: retention trim failed; will retry");
                false
            }
        }
    }
}

/// Inserts every request of a group in one transaction; the ids of each request, in order.
/// On failure the transaction is rolled back whole and, AUTOINCREMENT's counter being part of
/// it, no id is used up.
fn write_group(conn: &mut Connection, group: &[Command]) -> rusqlite::Result<Vec<Vec<LogId>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut all = Vec::with_capacity(group.len());
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (type, data, ts, priority) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut save = tx.prepare_cached(
            "INSERT INTO cursors (name, id) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET id = excluded.id",
        )?;
        for command in group {
            match command {
                Command::Append { batch, .. } => {
                    let mut ids = Vec::with_capacity(batch.len());
                    for event in batch {
                        insert.execute(params![
                            event.event_type,
                            event.data.as_str(),
                            to_micros(event.timestamp),
                            event.priority.map(Priority::as_str)
                        ])?;
                        ids.push(LogId(tx.last_insert_rowid() as u64));
                    }
                    all.push(ids);
                }
                Command::SaveCursor { name, id, .. } => {
                    save.execute(params![name, i64::try_from(id.0).unwrap_or(i64::MAX)])?;
                    all.push(Vec::new());
                }
            }
        }
    }
    tx.commit()?;
    Ok(all)
}

/// The last id of the run of events after `after` (up to `end`) older than `cutoff`;
/// `after` itself when the next event is young enough.
fn oldest_run_before(
    conn: &Connection,
    after: u64,
    end: u64,
    cutoff: i64,
) -> rusqlite::Result<u64> {
    let mut stmt =
        conn.prepare_cached("SELECT id, ts FROM events WHERE id > ?1 AND id <= ?2 ORDER BY id")?;
    let mut rows = stmt.query([after as i64, end as i64])?;
    let mut cut = after;
    while let Some(row) = rows.next()? {
        let ts: i64 = row.get(1)?;
        if ts >= cutoff {
            break;
        }
        cut = row.get::<_, i64>(0)? as u64;
    }
    Ok(cut)
}
