//! Consumer groups on the log's stream, against a real redis-server: members share the
//! entries (none to two), an unacknowledged entry stays pending with its member (read again
//! after a restart) until a live member claims it, and trimmed pending entries are reported.

use std::collections::BTreeSet;
use std::time::Duration;

use bus_redis::{GroupRead, RedisGroup, RedisLog, RedisOptions, RedisServer};
use bus_store::{EventLog, JsonText, LogId, NewEvent, RetentionPolicy};

fn events(from: u64, to: u64) -> Vec<NewEvent> {
    (from..to)
        .map(|n| NewEvent::new("t", JsonText::parse(&n.to_string()).unwrap()))
        .collect()
}

fn ids(batch: &bus_redis::GroupBatch) -> Vec<u64> {
    batch.events.iter().map(|e| e.id.0).collect()
}

const NO_WAIT: GroupRead = GroupRead::New(Duration::from_millis(1));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_share_entries_and_a_live_member_claims_a_dead_one_s_pending() {
    let server = RedisServer::start();
    let options = RedisOptions::new(server.url());
    let log = RedisLog::open(options.clone()).await.unwrap();
    log.append(events(0, 3)).await.unwrap(); // before the group: not its business
    let a = RedisGroup::join(&options, "relays", "a").await.unwrap();
    let b = RedisGroup::join(&options, "relays", "b").await.unwrap();
    assert_eq!((a.group(), a.member()), ("relays", "a"));
    assert!(
        ids(&a.read(NO_WAIT, 10).await.unwrap()).is_empty(),
        "starts at the end"
    );

    log.append(events(3, 13)).await.unwrap(); // ids 4..=13
    let got_a = a.read(NO_WAIT, 4).await.unwrap();
    let got_b = b.read(NO_WAIT, 100).await.unwrap();
    assert_eq!(ids(&got_a), [4, 5, 6, 7]);
    assert_eq!(ids(&got_b), (8..=13).collect::<Vec<_>>(), "none twice");
    assert_eq!(got_a.events[0].data.as_str(), "3");
    assert!(ids(&b.read(NO_WAIT, 100).await.unwrap()).is_empty());
    assert_eq!(
        b.read(GroupRead::Pending { after: LogId(0) }, 100)
            .await
            .unwrap(),
        got_b
    );
    let paged = b
        .read(GroupRead::Pending { after: LogId(10) }, 100)
        .await
        .unwrap();
    assert_eq!(ids(&paged), [11, 12, 13], "pending pages on after an id");

    // b acknowledges all; a only two, then "dies".
    assert_eq!(
        b.ack(&got_b.events.iter().map(|e| e.id).collect::<Vec<_>>())
            .await
            .unwrap(),
        6
    );
    assert_eq!(a.ack(&[LogId(4), LogId(5)]).await.unwrap(), 2);
    assert_eq!(a.pending().await.unwrap(), 2);
    drop(a);

    // Not idle long enough: nothing to claim. Then b claims a's two.
    assert!(
        b.claim(Duration::from_secs(60), 100)
            .await
            .unwrap()
            .events
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let claimed = b.claim(Duration::from_millis(200), 100).await.unwrap();
    assert_eq!(ids(&claimed), [6, 7]);
    assert_eq!(
        ids(&b
            .read(GroupRead::Pending { after: LogId(0) }, 100)
            .await
            .unwrap()),
        [6, 7],
        "b's now"
    );

    // a restarts under its name: its pending list is empty now (b has them).
    let a = RedisGroup::join(&options, "relays", "a").await.unwrap();
    assert!(
        ids(&a
            .read(GroupRead::Pending { after: LogId(0) }, 100)
            .await
            .unwrap())
        .is_empty()
    );
    b.ack(&[LogId(6), LogId(7)]).await.unwrap();
    assert_eq!(a.pending().await.unwrap(), 0);

    // A blocking read wakes on an append by another connection.
    let waiting =
        tokio::spawn(async move { a.read(GroupRead::New(Duration::from_secs(5)), 10).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    log.append(events(13, 14)).await.unwrap();
    let woke = tokio::time::timeout(Duration::from_secs(4), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(ids(&woke), [14]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_entries_trimmed_away_are_reported_as_gone() {
    let server = RedisServer::start();
    let options = RedisOptions {
        retention: RetentionPolicy {
            max_events: 3,
            ..RetentionPolicy::default()
        },
        ..RedisOptions::new(server.url())
    };
    let log = RedisLog::open(options.clone()).await.unwrap();
    let a = RedisGroup::join(&options, "g", "a").await.unwrap();
    let b = RedisGroup::join(&options, "g", "b").await.unwrap();
    log.append(events(0, 2)).await.unwrap();
    assert_eq!(ids(&a.read(NO_WAIT, 10).await.unwrap()), [1, 2]);
    log.append(events(2, 6)).await.unwrap(); // keeps 4..=6: a's pending 1 and 2 are gone
    let pending = a
        .read(GroupRead::Pending { after: LogId(0) }, 10)
        .await
        .unwrap();
    assert!(pending.events.is_empty(), "{pending:?}");
    assert_eq!(pending.gone, [LogId(1), LogId(2)]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let claimed = b.claim(Duration::from_millis(50), 10).await.unwrap();
    let gone: BTreeSet<LogId> = claimed.gone.into_iter().collect();
    assert_eq!(gone, BTreeSet::from([LogId(1), LogId(2)]));
    assert_eq!(
        a.pending().await.unwrap(),
        0,
        "a claim drops trimmed entries"
    );
    assert!(matches!(
        RedisGroup::join(&options, "", "a").await,
        Err(bus_store::StoreError::EmptyConsumerName)
    ));
}
