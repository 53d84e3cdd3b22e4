//! [`SqliteLog`]: the event log in one SQLite file (WAL mode), written by one group-committing
//! thread and read through a small pool of read connections.

mod open;
mod reader;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};

use crate::log::check_consumer_name;
use crate::{
    Durability, EventLog, LogId, NewEvent, Page, ReadQuery, Render, RenderedPage, RetentionPolicy,
    StoreError, StoreStats, StoredEvent,
};
use reader::ReaderPool;
use writer::{Command, Shared, Writer, WriterConfig};

pub use open::SCHEMA_VERSION as SQLITE_SCHEMA_VERSION;

/// How to open a [`SqliteLog`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// What a crash can lose; see [`Durability`].
    pub durability: Durability,
    /// How long events are kept.
    pub retention: RetentionPolicy,
    /// Read connections (at least 1; default 4).
    pub readers: usize,
    /// Run `PRAGMA quick_check` on an existing file before using it (default on). It reads
    /// the whole file: about a second per few hundred MB.
    pub check_integrity: bool,
    /// The most events one group commit takes (default 65,536), bounding a commit's latency.
    pub max_group_events: usize,
    /// The most events one retention transaction deletes (default 10,000), so that trimming
    /// a large backlog never stalls appends for long.
    pub trim_chunk: u64,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Full,
            retention: RetentionPolicy::default(),
            readers: 4,
            check_integrity: true,
            max_group_events: 65_536,
            trim_chunk: 10_000,
        }
    }
}

/// An [`EventLog`] in an SQLite file. One process at a time may open a store (a lock file
/// beside it, `<file>.lock`, says who); dropping the log or [`EventLog::close`] releases it.
pub struct SqliteLog {
    path: PathBuf,
    shared: Arc<Shared>,
    readers: Arc<ReaderPool>,
    requests: Mutex<Option<Sender<Command>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for SqliteLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteLog")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteLog {
    /// Opens (creating it and its directories if needed) the store at `path`.
    ///
    /// Before writing anything it takes the lock and checks an existing file: a file that is
    /// not an SQLite database, another program's database, a damaged one, or one with a newer
    /// schema is refused with an error naming it, and left byte for byte as it was.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
                path: parent.to_owned(),
                source,
            })?;
        }
        let lock = open::lock(&path)?;
        open::inspect(&path, options.check_integrity)?;
        let conn = open::open_writer(&path, options.durability)?;
        let (first, last) = reader::bounds(&conn).map_err(|err| open::classify(&path, err))?;
        let readers = (0..options.readers.max(1))
            .map(|_| open::open_reader(&path))
            .collect::<Result<Vec<_>, _>>()?;
        let (appends, _) = watch::channel(last);
        let shared = Arc::new(Shared {
            first_id: AtomicU64::new(first.map_or(0, |id| id.0)),
            last_id: AtomicU64::new(last.map_or(0, |id| id.0)),
            appended: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            trimmed: AtomicU64::new(0),
            appends,
        });
        let (sender, requests) = mpsc::channel();
        let writer = Writer {
            conn,
            requests,
            shared: Arc::clone(&shared),
            config: WriterConfig {
                retention: options.retention,
                max_group_events: options.max_group_events.max(1),
                trim_chunk: options.trim_chunk.max(1),
            },
            lock,
        };
        let thread = std::thread::Builder::new()
            .name("bus-store-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(Self {
            path,
            shared,
            readers: Arc::new(ReaderPool::new(readers)),
            requests: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(thread)),
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let sender = requests.as_ref().ok_or(StoreError::Closed)?;
        sender.send(command).map_err(|_| StoreError::Closed)
    }

    /// Stops the writer after it has committed what it was given, and waits for it.
    fn stop_writer(&self) -> Option<JoinHandle<()>> {
        drop(
            self.requests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        self.writer.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    async fn on_reader<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with(work))
            .await
            .map_err(StoreError::unavailable)?
    }

    fn bytes_on_disk(&self) -> Option<u64> {
        let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        Some(size(&self.path) + size(Path::new(&wal)))
    }
}

async fn answer<T>(reply: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    reply.await.map_err(|_| StoreError::Unavailable {
        cause: "the writer thread stopped before answering".to_owned(),
    })?
}

fn id_or_none(raw: u64) -> Option<LogId> {
    (raw > 0).then_some(LogId(raw))
}

#[async_trait]
impl EventLog for SqliteLog {
    fn write_id(&self, id: LogId, out: &mut String) {
        // Decimal, as the default `format_id`, without the String.
        out.push_str(itoa::Buffer::new().format(id.0));
    }

    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<LogId>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answered) = oneshot::channel();
        self.send(Command::Append { batch, reply })?;
        answer(answered).await
    }

    async fn read(&self, query: ReadQuery) -> Result<Page, StoreError> {
        self.on_reader(move |conn| reader::read_page(conn, &query))
            .await
    }

    async fn read_rendered(
        &self,
        query: ReadQuery,
        out: String,
        render: Render,
    ) -> Result<RenderedPage, StoreError> {
        self.on_reader(move |conn| reader::render_page(conn, &query, out, render))
            .await
    }

    async fn read_last(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.on_reader(move |conn| reader::read_last(conn, limit))
            .await
    }

    fn first_id(&self) -> Option<LogId> {
        id_or_none(self.shared.first_id.load(Ordering::Acquire))
    }

    fn last_id(&self) -> Option<LogId> {
        id_or_none(self.shared.last_id.load(Ordering::Acquire))
    }

    fn subscribe_appends(&self) -> watch::Receiver<Option<LogId>> {
        self.shared.appends.subscribe()
    }

    async fn save_cursor(&self, consumer: &str, id: LogId) -> Result<(), StoreError> {
        check_consumer_name(consumer)?;
        let (reply, answered) = oneshot::channel();
        self.send(Command::SaveCursor {
            name: consumer.to_owned(),
            id,
            reply,
        })?;
        answer(answered).await
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<LogId>, StoreError> {
        check_consumer_name(consumer)?;
        let consumer = consumer.to_owned();
        self.on_reader(move |conn| reader::cursor(conn, &consumer))
            .await
    }

    fn stats(&self) -> StoreStats {
        let first = self.first_id();
        let last = self.last_id();
        StoreStats {
            backend: "sqlite".to_owned(),
            appended: self.shared.appended.load(Ordering::Relaxed),
            commits: self.shared.commits.load(Ordering::Relaxed),
            trimmed: self.shared.trimmed.load(Ordering::Relaxed),
            stored: match (first, last) {
                (Some(first), Some(last)) => last.0 - first.0 + 1,
                _ => 0,
            },
            first_id: first,
            last_id: last,
            bytes_on_disk: self.bytes_on_disk(),
        }
    }

    async fn close(&self) -> Result<(), StoreError> {
        if let Some(thread) = self.stop_writer() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(StoreError::unavailable)?
                .map_err(|_| StoreError::Unavailable {
                    cause: "the writer thread panicked".to_owned(),
                })?;
        }
        Ok(())
    }
}

impl Drop for SqliteLog {
    fn drop(&mut self) {
        if let Some(thread) = self.stop_writer() {
            // The writer only finishes the commit in hand and a checkpoint: a short wait.
            let _ = thread.join();
        }
    }
}
