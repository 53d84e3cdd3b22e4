//! What only the Redis backend does: two logs on one stream see each other's appends (the
//! fan-out), and a dead server gives `StoreError::Unavailable` naming it, never a success.

use std::time::Duration;

use bus_redis::{RedisLog, RedisOptions, RedisServer};
use bus_store::{EventLog, JsonText, LogId, NewEvent, ReadQuery, StoreError};

fn event(n: u64) -> NewEvent {
    NewEvent::new("t", JsonText::parse(&format!("{{\"n\":{n}}}")).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_through_one_log_wake_and_reach_the_other() {
    let server = RedisServer::start();
    let a = RedisLog::open(RedisOptions::new(server.url()))
        .await
        .unwrap();
    let b = RedisLog::open(RedisOptions::new(server.url()))
        .await
        .unwrap();
    assert_eq!(a.stream(), "eventbus:events");
    let mut wake = b.subscribe_appends();
    assert_eq!(*wake.borrow_and_update(), None);

    let ids = a.append(vec![event(1), event(2)]).await.unwrap();
    assert_eq!(ids, [LogId(1), LogId(2)]);
    tokio::time::timeout(Duration::from_secs(10), async {
        while *wake.borrow_and_update() != Some(LogId(2)) {
            wake.changed().await.unwrap();
        }
    })
    .await
    .expect("b's follower saw a's append");
    assert_eq!(b.last_id(), Some(LogId(2)));
    assert_eq!(b.stats().stored, 2);

    // Both append: one order, dense ids, the same for both readers.
    b.append(vec![event(3)]).await.unwrap();
    a.append(vec![event(4)]).await.unwrap();
    let seen_a = a.read(ReadQuery::default()).await.unwrap().events;
    let seen_b = b.read(ReadQuery::default()).await.unwrap().events;
    assert_eq!(seen_a, seen_b);
    let ns: Vec<String> = seen_a.iter().map(|e| e.data.to_string()).collect();
    assert_eq!(ns, ["{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"]);
    assert_eq!(a.format_id(seen_a[3].id), "0-4");

    // Cursors are shared too (one hash per stream).
    a.save_cursor("relay", LogId(3)).await.unwrap();
    assert_eq!(b.cursor("relay").await.unwrap(), Some(LogId(3)));

    // A reopened log resumes the stream's ids.
    drop(a);
    let again = RedisLog::open(RedisOptions::new(server.url()))
        .await
        .unwrap();
    assert_eq!(
        (again.first_id(), again.last_id()),
        (Some(LogId(1)), Some(LogId(4)))
    );
    assert_eq!(again.append(vec![event(5)]).await.unwrap(), [LogId(5)]);
}

#[tokio::test]
async fn a_dead_server_is_unavailable_with_its_address() {
    let mut server = RedisServer::start();
    let log = RedisLog::open(RedisOptions::new(server.url()))
        .await
        .unwrap();
    log.append(vec![event(1)]).await.unwrap();
    server.kill();
    let where_ = format!("127.0.0.1:{}", server.port());
    for _ in 0..3 {
        match log.append(vec![event(2)]).await {
            Err(StoreError::Unavailable { cause }) => {
                assert!(cause.contains(&where_), "{cause}");
            }
            other => panic!("append to a dead Redis gave {other:?}"),
        }
    }
    assert!(matches!(
        log.read(ReadQuery::default()).await,
        Err(StoreError::Unavailable { .. })
    ));
    let err = RedisLog::open(RedisOptions::new(server.url()))
        .await
        .err()
        .expect("no server, no log");
    assert!(err.to_string().contains(&where_), "{err}");
}

#[tokio::test]
async fn a_bad_url_is_refused_by_name() {
    let err = RedisLog::open(RedisOptions::new("http://example.invalid/"))
        .await
        .err()
        .expect("not a Redis URL");
    assert!(err.to_string().contains("invalid Redis URL"), "{err}");
}
