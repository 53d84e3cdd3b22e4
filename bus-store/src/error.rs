//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong opening, writing or reading an event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but is not an SQLite database (wrong header); it was left untouched.
    #[error("{path} is not an event store: it is not an SQLite database (left untouched)")]
    NotADatabase {
        /// The file that was refused.
        path: PathBuf,
    },
    /// The file is an SQLite database that some other program made: it was left untouched.
    #[error(
        "{path} is an SQLite database but not an event store (it has other tables; left untouched)"
    )]
    NotAStore {
        /// The file that was refused.
        path: PathBuf,
    },
    /// The database is damaged; it was left untouched so that it can be inspected or restored.
    #[error("{path} is corrupted (left untouched): {detail}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// Another process (or another `open` in this one) already has this store open.
    #[error(
        "{path} is in use by another eventbus process (lock file {path}.lock is held); \
         stop it or choose another store path"
    )]
    Locked {
        /// The store file.
        path: PathBuf,
    },
    /// The store was written by a newer version of this crate, whose schema this one cannot read.
    #[error(
        "{path} has schema version {found}, newer than the {supported} this build supports; upgrade eventbus"
    )]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build understands.
        supported: i64,
    },
    /// The store cannot serve the request now (disk full, I/O error, ...); nothing was half-written.
    #[error("event store unavailable: {cause}")]
    Unavailable {
        /// What failed, as the operating system or SQLite reported it.
        cause: String,
    },
    /// A file or directory the store needs could not be created or opened.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An event id given as text (e.g. `after=` in a URL) is not one this log issues.
    #[error("invalid event id {text:?}: expected a decimal number")]
    InvalidId {
        /// The text that was given.
        text: String,
    },
    /// Event data given as text is not valid JSON.
    #[error("event data is not valid JSON: {detail}")]
    InvalidJson {
        /// The parser's message, with line and column.
        detail: String,
    },
    /// A durable consumer's name is empty.
    #[error("a consumer name must not be empty")]
    EmptyConsumerName,
    /// The log was closed; it accepts no more writes.
    #[error("the event log is closed")]
    Closed,
}

impl StoreError {
    /// A [`StoreError::Unavailable`] whose cause is `cause`'s message (SQLite's, a task's join
    /// error, a closed channel, ...).
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            cause: cause.to_string(),
        }
    }
}
