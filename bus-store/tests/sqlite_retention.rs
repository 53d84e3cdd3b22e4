//! Retention on the SQLite backend: a large backlog is trimmed in bounded chunks while the
//! log keeps accepting appends, and what was trimmed stays trimmed across a restart.

mod common;

use std::time::Duration;

use bus_store::{
    Durability, EventLog, LogId, ReadQuery, RetentionPolicy, SqliteLog, SqliteOptions,
};
use common::{event, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_trimmed_in_chunks_down_to_max_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let options = SqliteOptions {
        durability: Durability::Off,
        retention: RetentionPolicy {
            max_events: 100,
            max_age: Duration::MAX,
        },
        trim_chunk: 250,
        ..SqliteOptions::default()
    };
    let log = SqliteLog::open(&path, options.clone()).unwrap();
    log.append((0..5000).map(|n| event("t", n)).collect())
        .await
        .unwrap();
    // Appends keep being answered while the backlog is trimmed.
    for n in 0..20 {
        log.append(vec![event("more", n)]).await.unwrap();
    }
    eventually("trimming down to 100 events", || log.stats().stored == 100).await;
    let stats = log.stats();
    assert_eq!(stats.trimmed, 4920);
    assert_eq!(
        (stats.first_id, stats.last_id),
        (Some(LogId(4921)), Some(LogId(5020)))
    );
    let page = log
        .read(ReadQuery::after(Some(LogId(0)), 1000))
        .await
        .unwrap();
    assert_eq!(page.missed, 4920);
    assert_eq!(page.events.len(), 100);
    assert_eq!(page.events[0].id, LogId(4921));
    drop(log);

    let reopened = SqliteLog::open(&path, options).unwrap();
    assert_eq!(reopened.first_id(), Some(LogId(4921)));
    assert_eq!(
        reopened.append(vec![event("t", 0)]).await.unwrap(),
        [LogId(5021)]
    );
}
