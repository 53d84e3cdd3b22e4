//! A log shared by two writers (two buses on one `MemoryLog`, as two daemons share one Redis
//! stream): each bus's handlers get every event of the log, whichever bus published it, in
//! log order, once each, and a feed stopped and started again resumes from its cursor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus_core::{Event, EventBus};
use bus_store::{DurableBus, EventLog, LogId, MemoryLog};
use serde_json::json;

/// The ids and payloads a handler got, in order.
type Seen = Arc<Mutex<Vec<(u64, i64)>>>;

/// A bus whose handler records the ids and payloads it gets.
fn recording_bus() -> (EventBus, Seen) {
    let bus = EventBus::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    bus.on("n.*", move |e: &Event| {
        sink.lock()
            .unwrap()
            .push((e.id(), e.data().as_i64().unwrap()));
    })
    .unwrap();
    (bus, seen)
}

async fn wait_for(seen: &Mutex<Vec<(u64, i64)>>, count: usize) -> Vec<(u64, i64)> {
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = seen.lock().unwrap().clone();
        if got.len() >= count || tokio::time::Instant::now() > until {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_buses_on_one_log_see_every_event_in_log_order_and_resume() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let (bus_a, seen_a) = recording_bus();
    let (bus_b, seen_b) = recording_bus();
    let a = DurableBus::new(&bus_a, log.clone()).shared();
    let b = DurableBus::new(&bus_b, log.clone()).shared();
    assert!(a.is_shared());
    let feed_a = a.feed("bus@a").await.unwrap();
    let feed_b = b.feed("bus@b").await.unwrap();

    // Interleaved publishers, concurrently: the log's order is the only order.
    let publish = |durable: DurableBus, from: i64| async move {
        for n in from..from + 50 {
            durable.publish("n.x", json!(n)).await.unwrap();
        }
    };
    tokio::join!(publish(a.clone(), 0), publish(b.clone(), 1000));
    let order: Vec<(u64, i64)> = log
        .read(bus_store::ReadQuery::after(None, 1000))
        .await
        .unwrap()
        .events
        .iter()
        .map(|e| (e.id.0, e.data.to_value().unwrap().as_i64().unwrap()))
        .collect();
    assert_eq!(order.len(), 100);
    assert_eq!(
        wait_for(&seen_a, 100).await,
        order,
        "bus a: the log's order"
    );
    assert_eq!(
        wait_for(&seen_b, 100).await,
        order,
        "bus b: the log's order"
    );
    assert_eq!(feed_a.status().to_json()["dispatched"], 100);
    assert_eq!(feed_a.status().lag(), 0);

    // b stops (saving its cursor); a goes on; b starts again and gets only what it missed.
    let report = feed_b.stop(Duration::from_secs(5)).await;
    assert_eq!(report.position, LogId(100));
    assert_eq!(report.behind, 0);
    for n in 2000..2010 {
        a.publish("n.x", json!(n)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        seen_b.lock().unwrap().len(),
        100,
        "a stopped feed dispatches nothing"
    );
    let feed_b = b.feed("bus@b").await.unwrap();
    let got = wait_for(&seen_b, 110).await;
    let tail: Vec<i64> = got[100..].iter().map(|e| e.1).collect();
    assert_eq!(
        tail,
        (2000..2010).collect::<Vec<_>>(),
        "resumed after its cursor"
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(seen_b.lock().unwrap().len(), 110, "none twice");
    assert_eq!(wait_for(&seen_a, 110).await.len(), 110);
    feed_b.stop(Duration::from_secs(1)).await;
    feed_a.stop(Duration::from_secs(1)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_feed_starts_at_the_end_and_a_stop_drains_what_the_log_holds() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let (bus, seen) = recording_bus();
    let durable = DurableBus::new(&bus, log.clone()).shared();
    // Published before any feed existed: history, not dispatched to a new feed.
    durable.publish("n.x", json!(-1)).await.unwrap();
    assert!(
        seen.lock().unwrap().is_empty(),
        "a shared bus leaves dispatch to the feed"
    );
    let feed = durable.feed("bus@one").await.unwrap();
    assert_eq!(
        log.cursor("bus@one").await.unwrap(),
        Some(LogId(1)),
        "saved at once"
    );
    for n in 0..5000 {
        durable.publish("n.x", json!(n)).await.unwrap();
    }
    let report = feed.stop(Duration::from_secs(10)).await;
    assert_eq!(
        report,
        bus_store::FeedReport {
            position: LogId(5001),
            behind: 0
        }
    );
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 5000);
    assert!(
        got.iter().map(|e| e.1).eq(0..5000),
        "in order, from the end at the start"
    );
    assert_eq!(log.cursor("bus@one").await.unwrap(), Some(LogId(5001)));
    assert!(matches!(
        durable.feed("").await,
        Err(bus_store::StoreError::EmptyConsumerName)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_priority_reaches_the_other_bus_through_the_log() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let (bus_a, _) = recording_bus();
    let bus_b = EventBus::new();
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    bus_b
        .on("p.*", move |e: &Event| {
            sink.lock().unwrap().push(e.priority())
        })
        .unwrap();
    let a = DurableBus::new(&bus_a, log.clone()).shared();
    let b = DurableBus::new(&bus_b, log.clone()).shared();
    let _feed_b = b.feed("bus@b").await.unwrap();
    a.publish_batch_with_priorities(vec![
        ("p.x".into(), json!(1), Some(bus_core::Priority::High)),
        ("p.x".into(), json!(2), None),
    ])
    .await
    .unwrap();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().len() < 2 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(*got.lock().unwrap(), [Some(bus_core::Priority::High), None]);
}
