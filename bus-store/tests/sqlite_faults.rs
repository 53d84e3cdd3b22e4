//! The SQLite backend against bad files, a second opener, restarts and a full disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bus_store::{
    EventLog, JsonText, LogId, NewEvent, ReadQuery, SqliteLog, SqliteOptions, StoreError,
};
use common::event;

fn open(path: &Path) -> Result<SqliteLog, StoreError> {
    SqliteLog::open(path, SqliteOptions::default())
}

/// Asserts that opening `path` fails as `check` expects and leaves the file as it was.
fn refused_untouched(path: &Path, check: impl FnOnce(&StoreError) -> bool) -> StoreError {
    let before = std::fs::read(path).unwrap();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let wal_before = std::fs::read(&wal).ok();
    let err = open(path).expect_err("a bad file must be refused");
    assert!(check(&err), "unexpected error: {err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the message names the file: {err}"
    );
    assert_eq!(std::fs::read(path).unwrap(), before, "the file was changed");
    assert_eq!(std::fs::read(&wal).ok(), wal_before, "the WAL was changed");
    err
}

async fn store_with_events(path: &Path, count: u64) {
    let log = open(path).unwrap();
    let big = "x".repeat(500);
    let batch = (0..count)
        .map(|n| {
            NewEvent::new(
                "t",
                JsonText::from_value(&serde_json::json!({ "n": n, "pad": big })),
            )
        })
        .collect();
    log.append(batch).await.unwrap();
    log.close().await.unwrap();
}

#[test]
fn files_that_are_not_databases_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(100)).unwrap();
    refused_untouched(
        &text,
        |e| matches!(e, StoreError::NotADatabase { path } if path == &text),
    );

    let random = dir.path().join("random.db");
    let bytes: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    refused_untouched(&random, |e| matches!(e, StoreError::NotADatabase { .. }));

    let short = dir.path().join("short.db");
    std::fs::write(&short, b"SQLite").unwrap();
    refused_untouched(&short, |e| matches!(e, StoreError::NotADatabase { .. }));
}

#[tokio::test]
async fn a_corrupted_store_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    store_with_events(&path, 2000).await;
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 64 * 4096, "the store spans many pages");
    // Scribble over b-tree pages in the middle of the file, header intact.
    for byte in &mut bytes[20 * 4096..40 * 4096] {
        *byte = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    refused_untouched(
        &path,
        |e| matches!(e, StoreError::Corrupt { detail, .. } if !detail.is_empty()),
    );
}

#[test]
fn another_programs_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
        .unwrap();
    drop(conn);
    refused_untouched(&path, |e| matches!(e, StoreError::NotAStore { .. }));
}

#[tokio::test]
async fn a_store_from_a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    store_with_events(&path, 3).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 7).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    let err = refused_untouched(
        &path,
        |e| matches!(e, StoreError::NewerSchema { found: 7, supported, .. } if *supported == bus_store::SQLITE_SCHEMA_VERSION),
    );
    assert!(err.to_string().contains("upgrade"), "{err}");
}

#[tokio::test]
async fn a_second_opener_is_told_the_store_is_locked_until_the_first_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let first = open(&path).unwrap();
    first.append(vec![event("t", 1)]).await.unwrap();
    match open(&path) {
        Err(StoreError::Locked { path: locked }) => assert_eq!(locked, path),
        other => panic!("expected Locked, got {other:?}"),
    }
    // Dropping releases the lock (close() does too).
    drop(first);
    let again = open(&path).unwrap();
    assert_eq!(again.last_id(), Some(LogId(1)));
    again.close().await.unwrap();
    let third = open(&path).unwrap();
    assert_eq!(
        third.read(ReadQuery::default()).await.unwrap().events.len(),
        1
    );
}

#[tokio::test]
async fn a_reopened_store_keeps_events_cursors_and_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/events.db");
    {
        let log = open(&path).unwrap();
        log.append(vec![event("t", 1), event("t", 2)])
            .await
            .unwrap();
        log.save_cursor("relay", LogId(1)).await.unwrap();
    }
    let log = open(&path).unwrap();
    assert_eq!(
        (log.first_id(), log.last_id()),
        (Some(LogId(1)), Some(LogId(2)))
    );
    assert_eq!(log.cursor("relay").await.unwrap(), Some(LogId(1)));
    assert_eq!(log.append(vec![event("t", 3)]).await.unwrap(), [LogId(3)]);
    let mut appends = log.subscribe_appends();
    assert_eq!(*appends.borrow_and_update(), Some(LogId(3)));
    let stats = log.stats();
    assert_eq!((stats.stored, stats.appended, stats.commits), (3, 1, 1));
    assert!(stats.bytes_on_disk.unwrap() > 0);
    // The file is in WAL mode: header bytes 18 and 19 are both 2.
    let header = std::fs::read(&path).unwrap();
    assert_eq!((header[18], header[19]), (2, 2));
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "this test mounts a small tmpfs to fill it: it needs root (mount -t tmpfs)"
        );
        Self { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Fills the file system with a ballast file until writes fail.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while file
        .write_all(&chunk)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
    let small = [0u8; 512];
    while file
        .write_all(&small)
        .and_then(|()| file.sync_all())
        .is_ok()
    {}
}

#[tokio::test]
async fn a_full_disk_fails_appends_cleanly_and_they_succeed_once_space_returns() {
    let disk = SmallDisk::mount("8m");
    let path = disk.path().join("events.db");
    let log = open(&path).unwrap();
    let before = log
        .append(vec![event("t", 1), event("t", 2)])
        .await
        .unwrap();
    assert_eq!(before, [LogId(1), LogId(2)]);
    fill(&disk.path().join("ballast"));

    let big = JsonText::from_value(&serde_json::json!({ "pad": "y".repeat(10_000) }));
    let batch = || {
        (0..200)
            .map(|_| NewEvent::new("big", big.clone()))
            .collect::<Vec<_>>()
    };
    match log.append(batch()).await {
        Err(StoreError::Unavailable { cause }) => {
            assert!(cause.contains("full"), "the cause is named: {cause}");
        }
        other => panic!("expected Unavailable on a full disk, got {other:?}"),
    }
    // Nothing of the failed batch is visible, and no id was used up.
    let page = log.read(ReadQuery::default()).await.unwrap();
    assert_eq!(page.events.iter().map(|e| e.id).collect::<Vec<_>>(), before);
    assert_eq!(log.last_id(), Some(LogId(2)));

    std::fs::remove_file(disk.path().join("ballast")).unwrap();
    let after = log
        .append(vec![event("t", 3)])
        .await
        .expect("appends succeed again");
    assert_eq!(after, [LogId(3)], "ids stay dense across the failure");
    let ids = log.append(batch()).await.unwrap();
    assert_eq!(ids.first(), Some(&LogId(4)));
    log.close().await.unwrap();
    drop(log);

    let reopened = open(&path).unwrap();
    let ids: Vec<u64> = reopened
        .read(ReadQuery::after(None, 10_000))
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| e.id.0)
        .collect();
    assert_eq!(ids, (1..=203).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_version_1_store_is_upgraded_in_place_and_keeps_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    // The schema the first release wrote, with two events and a cursor. The events are
    // stamped now: older than the default retention (7 days), the writer's first trim would
    // rightly delete them, racing the read below.
    let now_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE events (
             id INTEGER PRIMARY KEY AUTOINCREMENT,
             type TEXT NOT NULL, data TEXT NOT NULL, ts INTEGER NOT NULL);
         CREATE TABLE cursors (name TEXT PRIMARY KEY, id INTEGER NOT NULL);
         INSERT INTO events (type, data, ts) VALUES ('a', '{{\"n\":1}}', {now_micros});
         INSERT INTO events (type, data, ts) VALUES ('b', '{{\"n\":2}}', {});
         INSERT INTO cursors VALUES ('relay', 1);
         PRAGMA user_version = 1;",
        now_micros + 1
    ))
    .unwrap();
    drop(conn);

    let log = open(&path).unwrap();
    let page = log.read(ReadQuery::default()).await.unwrap();
    let old: Vec<(u64, &str, Option<bus_store::Priority>)> = page
        .events
        .iter()
        .map(|e| (e.id.0, e.event_type.as_str(), e.priority))
        .collect();
    assert_eq!(old, [(1, "a", None), (2, "b", None)]);
    assert_eq!(log.cursor("relay").await.unwrap(), Some(LogId(1)));
    let ids = log
        .append(vec![event("c", 3).with_priority(bus_store::Priority::High)])
        .await
        .unwrap();
    assert_eq!(ids, [LogId(3)]);
    let newest = log.read_last(1).await.unwrap();
    assert_eq!(newest[0].priority, Some(bus_store::Priority::High));
    log.close().await.unwrap();
    drop(log);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, bus_store::SQLITE_SCHEMA_VERSION);
}
