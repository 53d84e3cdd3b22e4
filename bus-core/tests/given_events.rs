//! Events whose id and timestamp were assigned outside the bus (a durable log's), published
//! with `try_publish_event`, and the replay marker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bus_core::{
    Event, EventBus, HandlerResult, Overflow, QueueOptions, Refusal, Subscriber, async_trait,
};
use serde_json::json;

const PATIENCE: Duration = Duration::from_secs(20);

/// What a consumer saw of one event.
type Seen = (u64, SystemTime, bool);
type Log = Arc<Mutex<Vec<Seen>>>;

fn seen(e: &Event) -> Seen {
    (e.id(), e.timestamp(), e.is_replay())
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

struct Recorder(Log);

#[async_trait]
impl Subscriber for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }
    fn patterns(&self) -> Vec<String> {
        vec!["log.*".into()]
    }
    async fn handle(&self, event: Event) -> HandlerResult {
        self.0.lock().unwrap().push(seen(&event));
        Ok(())
    }
}

/// A sync handler, an async handler and a `Subscriber`, each recording what it saw.
fn consumers(bus: &EventBus) -> [Log; 3] {
    let logs: [Log; 3] = Default::default();
    let sync = logs[0].clone();
    bus.on("log.*", move |e: &Event| sync.lock().unwrap().push(seen(e)))
        .unwrap();
    let asynchronous = logs[1].clone();
    bus.on_async("log.*", move |e: Event| {
        let log = asynchronous.clone();
        async move { log.lock().unwrap().push(seen(&e)) }
    })
    .unwrap();
    bus.subscribe(Arc::new(Recorder(logs[2].clone()))).unwrap();
    logs
}

#[test]
fn given_ids_and_timestamps_reach_every_kind_of_consumer_and_the_history() {
    let bus = EventBus::new();
    let logs = consumers(&bus);
    // Gaps, as a log leaves when some of its events go elsewhere, and old timestamps.
    let given = [(1000, at(10)), (1003, at(20)), (1010, at(30))];
    for (id, ts) in given {
        let event = Event::from_parts(id, "log.entry", json!({"n": id}), ts);
        let payload = event.shared_data().clone();
        let accepted = bus.try_publish_event(event).unwrap();
        assert_eq!((accepted.id(), accepted.timestamp()), (id, ts));
        assert!(Arc::ptr_eq(accepted.shared_data(), &payload), "not copied");
    }
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    let expected: Vec<Seen> = given.iter().map(|&(id, ts)| (id, ts, false)).collect();
    for (log, who) in logs.iter().zip(["sync", "async", "subscriber"]) {
        assert_eq!(*log.lock().unwrap(), expected, "{who}");
    }
    let history: Vec<Seen> = bus.recent_events(10).iter().map(seen).collect();
    assert_eq!(history, expected);
    assert_eq!(bus.recent_events(10)[1].data()["n"], 1003);
    assert_eq!(bus.stats().events_published, 3);
}

#[test]
fn the_bus_counter_is_not_consumed_by_given_events() {
    let bus = EventBus::new();
    bus.try_publish_event(Event::from_parts(500, "a", json!(1), at(1)))
        .unwrap();
    assert_eq!(bus.try_publish("a", json!(2)).unwrap().id(), 1);
    bus.try_publish_event(Event::from_parts(501, "a", json!(3), at(2)))
        .unwrap();
    assert_eq!(bus.try_publish("a", json!(4)).unwrap().id(), 2);
}

#[test]
fn history_keeps_its_capacity_of_given_events_despite_id_gaps() {
    let bus = EventBus::builder().history_size(3).build().unwrap();
    for id in [10, 20, 30, 40, 50] {
        bus.try_publish_event(Event::from_parts(id, "a", json!(id), at(id)))
            .unwrap();
    }
    let ids: Vec<u64> = bus.recent_events(10).iter().map(Event::id).collect();
    assert_eq!(ids, [30, 40, 50]);
    assert_eq!(bus.stats().history_size, 3);
}

#[test]
fn filters_a_disabled_bus_and_shutdown_refuse_given_events() {
    let bus = EventBus::builder().filters(["log.*"]).build().unwrap();
    let logs = consumers(&bus);
    let other = Event::from_parts(7, "other", json!(null), at(7));
    assert_eq!(bus.try_publish_event(other).err(), Some(Refusal::Filtered));
    assert_eq!(bus.stats().events_filtered, 1);

    bus.set_enabled(false);
    let entry = Event::from_parts(8, "log.entry", json!(null), at(8));
    assert_eq!(
        bus.try_publish_event(entry.clone()).err(),
        Some(Refusal::Disabled)
    );
    let stats = bus.stats();
    assert_eq!((stats.events_published, stats.events_filtered), (0, 1));

    bus.set_enabled(true);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(bus.shutdown(PATIENCE));
    assert_eq!(bus.try_publish_event(entry).err(), Some(Refusal::ShutDown));

    assert!(bus.recent_events(10).is_empty());
    for log in &logs {
        assert!(log.lock().unwrap().is_empty());
    }
}

#[test]
fn consumers_can_tell_a_replay_from_a_live_event() {
    let bus = EventBus::new();
    let logs = consumers(&bus);
    let replay = Event::from_parts(1, "log.entry", json!("old"), at(1)).into_replay();
    assert!(bus.try_publish_event(replay).unwrap().is_replay());
    let live = Event::from_parts(2, "log.entry", json!("new"), at(2));
    assert!(!bus.try_publish_event(live).unwrap().is_replay());
    assert!(
        !bus.try_publish("log.entry", json!("bus"))
            .unwrap()
            .is_replay()
    );
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    for (log, who) in logs.iter().zip(["sync", "async", "subscriber"]) {
        let flags: Vec<bool> = log.lock().unwrap().iter().map(|s| s.2).collect();
        assert_eq!(flags, [true, false, false], "{who}");
    }
    let history: Vec<bool> = bus.recent_events(10).iter().map(Event::is_replay).collect();
    assert_eq!(history, [true, false, false]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_form_waits_for_room_in_block_queues_and_keeps_the_ids() {
    let bus = EventBus::new();
    let log: Log = Arc::default();
    let l = log.clone();
    let options = QueueOptions::new(1, Overflow::Block);
    bus.on_async_with("log.*", options, move |e: Event| {
        let l = l.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            l.lock().unwrap().push(seen(&e));
        }
    })
    .unwrap();
    let mut expected = Vec::new();
    for id in (100..120).step_by(2) {
        let event = Event::from_parts(id, "log.entry", json!(id), at(id));
        let event = if id % 4 == 0 {
            event.into_replay()
        } else {
            event
        };
        expected.push((id, at(id), id % 4 == 0));
        let accepted = bus.try_publish_event_async(event).await.unwrap();
        assert_eq!(accepted.id(), id);
    }
    bus.flush().await;
    assert_eq!(*log.lock().unwrap(), expected, "every event, none dropped");
    assert_eq!(bus.stats().events_dropped, 0);
}

#[test]
fn the_batch_form_reports_each_outcome_in_order() {
    let bus = EventBus::builder().filters(["log.*"]).build().unwrap();
    let outcomes = bus.try_publish_events([
        Event::from_parts(1, "log.a", json!(1), at(1)),
        Event::from_parts(2, "nope", json!(2), at(2)),
        Event::from_parts(3, "log.b", json!(3), at(3)).into_replay(),
    ]);
    let summary: Vec<Result<(u64, bool), Refusal>> = outcomes
        .into_iter()
        .map(|o| o.map(|e| (e.id(), e.is_replay())))
        .collect();
    assert_eq!(
        summary,
        [Ok((1, false)), Err(Refusal::Filtered), Ok((3, true))]
    );
    let ids: Vec<u64> = bus.recent_events(10).iter().map(Event::id).collect();
    assert_eq!(ids, [1, 3]);
}
