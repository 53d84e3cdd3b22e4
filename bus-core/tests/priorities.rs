//! Priorities in a consumer's queue: order, the lower priorities' share, eviction, flush.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus_core::{Event, EventBus, Overflow, Priority, PriorityRules, QueueOptions};
use serde_json::json;
use tokio::sync::Semaphore;

/// A consumer that records the ids it handles and stops at events marked `"hold": true` until
/// the test releases it.
#[derive(Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<u64>>>,
    gate: Arc<Semaphore>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            seen: Arc::default(),
            gate: Arc::new(Semaphore::new(0)),
        }
    }

    fn attach(&self, bus: &EventBus, options: QueueOptions) {
        let me = self.clone();
        bus.on_async_with("*", options, move |e: Event| {
            let me = me.clone();
            async move {
                me.seen.lock().unwrap().push(e.id());
                if e.data()["hold"] == true {
                    me.gate.acquire().await.unwrap().forget();
                }
            }
        })
        .unwrap();
    }

    fn seen(&self) -> Vec<u64> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (without a deadline on the outcome: the test fails on the order, not on time)
    /// until the consumer has started on `id`.
    async fn wait_for(&self, id: u64) {
        while !self.seen().contains(&id) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn release(&self) {
        self.gate.add_permits(1);
    }
}

fn rules() -> PriorityRules {
    "t.high*=high,t.low=low".parse().unwrap()
}

fn publish(bus: &EventBus, event_type: &str, data: serde_json::Value) -> u64 {
    bus.try_publish(event_type, data).unwrap().id()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_event_behind_ten_thousand_low_ones_is_handled_next() {
    let bus = EventBus::new();
    let rec = Recorder::new();
    rec.attach(
        &bus,
        QueueOptions::new(20_000, Overflow::DropNewest).with_priorities(rules()),
    );
    let held = publish(&bus, "t.normal", json!({"hold": true}));
    rec.wait_for(held).await;
    let lows: Vec<u64> = (0..10_000)
        .map(|i| publish(&bus, "t.low", json!(i)))
        .collect();
    let high = publish(&bus, "t.high", json!({}));
    rec.release();
    bus.flush().await;
    let seen = rec.seen();
    assert_eq!(
        seen[..2],
        [held, high],
        "the one in progress, then the high one"
    );
    assert_eq!(seen[2..], lows[..], "the low ones after it, in order");
    assert_eq!(
        bus.stats().subscribers[0].priorities.as_deref(),
        Some("t.high*=high,t.low=low")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_event_overtakes_the_rest_of_a_batch_already_taken() {
    let bus = EventBus::new();
    let rec = Recorder::new();
    rec.attach(
        &bus,
        QueueOptions::new(1_000, Overflow::DropNewest).with_priorities(rules()),
    );
    let first = publish(&bus, "t.normal", json!({"hold": true}));
    rec.wait_for(first).await;
    // Queued while the worker is held: its next batch takes them all at once.
    let lows: Vec<u64> = (0..300)
        .map(|i| publish(&bus, "t.low", json!({"hold": i == 1})))
        .collect();
    rec.release();
    rec.wait_for(lows[1]).await;
    let high = publish(&bus, "t.high", json!({}));
    rec.release();
    bus.flush().await;
    let seen = rec.seen();
    assert_eq!(
        seen[..4],
        [first, lows[0], lows[1], high],
        "{:?}",
        &seen[..6]
    );
    assert_eq!(seen[4..], lows[2..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_high_flood_low_events_get_one_in_eight() {
    let bus = EventBus::new();
    let rec = Recorder::new();
    rec.attach(
        &bus,
        QueueOptions::new(10_000, Overflow::DropNewest).with_priorities(rules()),
    );
    let held = publish(&bus, "t.normal", json!({"hold": true}));
    rec.wait_for(held).await;
    let lows: Vec<u64> = (0..200).map(|i| publish(&bus, "t.low", json!(i))).collect();
    let highs: Vec<u64> = (0..2_000)
        .map(|i| publish(&bus, "t.high", json!(i)))
        .collect();
    rec.release();
    bus.flush().await;
    let seen = rec.seen();
    // While both wait: seven high, one low, again and again.
    let flood = &seen[1..1 + 8 * 200];
    for (i, chunk) in flood.chunks(8).enumerate() {
        assert_eq!(chunk[..7], highs[7 * i..7 * i + 7], "chunk {i}");
        assert_eq!(chunk[7], lows[i], "chunk {i}");
    }
    assert_eq!(seen[1 + 8 * 200..], highs[7 * 200..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_gives_up_the_lowest_priority_first() {
    for overflow in [Overflow::DropNewest, Overflow::DropOldest] {
        let bus = EventBus::new();
        let rec = Recorder::new();
        // The held event counts against the capacity: four places are left.
        rec.attach(
            &bus,
            QueueOptions::new(5, overflow).with_priorities(rules()),
        );
        let held = publish(&bus, "t.normal", json!({"hold": true}));
        rec.wait_for(held).await;
        let low1 = publish(&bus, "t.low", json!(1));
        let low2 = publish(&bus, "t.low", json!(2));
        let normal = publish(&bus, "t.normal", json!(3));
        let high1 = publish(&bus, "t.high", json!(4));
        // Full. Each new high evicts a low, then the normal.
        let high2 = publish(&bus, "t.high", json!(5));
        let high3 = publish(&bus, "t.high", json!(6));
        let high4 = publish(&bus, "t.high", json!(7));
        // Full of high events: now a high one is given up.
        let high5 = publish(&bus, "t.high", json!(8));
        // A low event cannot evict a high one.
        let low3 = publish(&bus, "t.low", json!(9));
        rec.release();
        bus.flush().await;
        let seen = rec.seen();
        let expected_highs = match overflow {
            // The newcomer is refused.
            Overflow::DropNewest => [high1, high2, high3, high4],
            // The oldest high gives way to the newest.
            _ => [high2, high3, high4, high5],
        };
        assert_eq!(seen[0], held);
        assert_eq!(seen[1..], expected_highs, "{overflow:?}");
        let row = &bus.stats().subscribers[0];
        assert_eq!(row.dropped, 5, "{overflow:?}");
        let _ = (low1, low2, normal, low3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publisher_priority_wins_over_the_rules_and_needs_none() {
    // No rules: the lanes appear with the first event whose publisher gave a priority.
    let bus = EventBus::new();
    let rec = Recorder::new();
    rec.attach(&bus, QueueOptions::new(100, Overflow::DropNewest));
    let held = publish(&bus, "t.normal", json!({"hold": true}));
    rec.wait_for(held).await;
    let normal = publish(&bus, "x", json!(1));
    let low = bus
        .publish_with_priority("x", json!(2), Priority::Low)
        .unwrap()
        .id();
    let high = bus
        .try_publish_event(Event::new(1_000, "t.low", json!(3)).with_priority(Priority::High))
        .unwrap()
        .id();
    rec.release();
    bus.flush().await;
    assert_eq!(rec.seen(), [held, high, normal, low]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_waits_for_earlier_low_events_and_not_for_later_ones() {
    let bus = EventBus::new();
    let rec = Recorder::new();
    rec.attach(
        &bus,
        QueueOptions::new(1_000, Overflow::DropNewest).with_priorities(rules()),
    );
    let held = publish(&bus, "t.normal", json!({"hold": true}));
    rec.wait_for(held).await;
    let lows: Vec<u64> = (0..50).map(|i| publish(&bus, "t.low", json!(i))).collect();
    let flushing = {
        let bus = bus.clone();
        tokio::spawn(async move { bus.flush().await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        !flushing.is_finished(),
        "the held event and the lows are not handled yet"
    );
    rec.release();
    flushing.await.unwrap();
    let seen = rec.seen();
    assert!(
        lows.iter().all(|id| seen.contains(id)),
        "flush returned before the lows"
    );
    assert_eq!(bus.stats().subscribers[0].queue_len, 0);
}
