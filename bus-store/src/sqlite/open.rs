//! Opening a store file safely: the lock, the checks made before anything is written, and
//! the schema.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::{Durability, StoreError};

/// The schema version this build writes and reads (`PRAGMA user_version`); a store with a
/// higher one is refused with [`StoreError::NewerSchema`].
pub const SCHEMA_VERSION: i64 = 2;

/// The first 16 bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// How long a connection waits for SQLite's own locks (checkpoints) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Ids are AUTOINCREMENT so that they are never reused, even after the newest events were
/// trimmed; `ts` has no index because reads walk in id order (a `since` filter cannot use a
/// ts index to find the first matching id, and the index would slow appends). `priority` is
/// the publisher's (`high`, `normal`, `low`), NULL for the many events that have none.
const SCHEMA: &str = "
    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        data TEXT NOT NULL,
        ts INTEGER NOT NULL,
        priority TEXT
    );
    CREATE TABLE cursors (name TEXT PRIMARY KEY, id INTEGER NOT NULL);
    PRAGMA user_version = 2;
";

/// Version 1 to 2: the `priority` column (adding a NULL column rewrites no row).
const UPGRADE_1_TO_2: &str = "
    ALTER TABLE events ADD COLUMN priority TEXT;
    PRAGMA user_version = 2;
";

/// The path of the lock file beside a store.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the store's exclusive lock. The operating system drops it when the process dies,
/// so a killed daemon never blocks its restart.
pub(crate) fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = lock_path(path);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::Io {
            path: lock_path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io {
            path: lock_path,
            source,
        }),
    }
}

/// Turns an SQLite error about the store file into the error that names the problem.
pub(crate) fn classify(path: &Path, err: rusqlite::Error) -> StoreError {
    let path = path.to_owned();
    match err.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotADatabase { path },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::Corrupt {
            path,
            detail: err.to_string(),
        },
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked { path },
        _ => StoreError::Unavailable {
            cause: format!("{}: {err}", path.display()),
        },
    }
}

/// Checks an existing file without writing to it: the header, the schema version, that it is
/// ours, and (if `integrity`) `PRAGMA quick_check`. A missing or empty file passes.
///
/// Reading a WAL-mode database creates its `-wal` and `-shm` files even read-only; when the
/// file is refused, the ones that were not there before are removed again.
pub(crate) fn inspect(path: &Path, integrity: bool) -> Result<(), StoreError> {
    let sidecars: Vec<PathBuf> = ["-wal", "-shm"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .filter(|sidecar| !sidecar.exists())
        .collect();
    let verdict = inspect_file(path, integrity);
    if verdict.is_err() {
        for sidecar in sidecars {
            // Best effort: they hold nothing yet.
            let _ = std::fs::remove_file(sidecar);
        }
    }
    verdict
}

fn inspect_file(path: &Path, integrity: bool) -> Result<(), StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(io(err)),
    };
    let mut header = Vec::with_capacity(SQLITE_HEADER.len());
    file.by_ref()
        .take(SQLITE_HEADER.len() as u64)
        .read_to_end(&mut header)
        .map_err(io)?;
    if header.is_empty() {
        return Ok(());
    }
    if header != SQLITE_HEADER {
        return Err(StoreError::NotADatabase {
            path: path.to_owned(),
        });
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|err| classify(path, err))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|err| classify(path, err))?;
    let found: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| classify(path, err))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0))
            .map_err(|err| classify(path, err))?;
        if tables > 0 {
            return Err(StoreError::NotAStore {
                path: path.to_owned(),
            });
        }
    }
    if integrity {
        let problems = quick_check(&conn).map_err(|err| classify(path, err))?;
        if problems.first().is_some_and(|first| first != "ok") {
            return Err(StoreError::Corrupt {
                path: path.to_owned(),
                detail: problems.join("; "),
            });
        }
    }
    Ok(())
}

/// The first few lines of `PRAGMA quick_check`: `["ok"]` for a sound database.
fn quick_check(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("PRAGMA quick_check(5)")?;
    let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
    rows.collect()
}

/// Opens the write connection: WAL, the durability asked for, and the schema if the file is new.
pub(crate) fn open_writer(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let fail = |err| classify(path, err);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable {
            cause: format!("{}: cannot use WAL mode (got {mode})", path.display()),
        });
    }
    conn.pragma_update(None, "synchronous", durability.pragma())
        .map_err(fail)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(fail)?;
    if version == 0 {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))
            .map_err(fail)?;
    } else if version == 1 {
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {UPGRADE_1_TO_2} COMMIT;"))
            .map_err(fail)?;
    }
    Ok(conn)
}

/// Opens one read connection.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let fail = |err| classify(path, err);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(fail)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    Ok(conn)
}
