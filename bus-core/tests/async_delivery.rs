//! Async handlers and `Subscriber`s: queues, order, overflow policies, isolation, draining.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus_core::{
    Event, EventBus, HandlerResult, Overflow, QueueOptions, Subscriber, SubscriberKind, async_trait,
};
use serde_json::json;
use tokio::sync::Semaphore;

const PATIENCE: Duration = Duration::from_secs(20);

fn ids(events: &Mutex<Vec<u64>>) -> Vec<u64> {
    events.lock().unwrap().clone()
}

/// Polls `cond` until it holds, failing the test after `PATIENCE`.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn async_handlers_on_exact_names_run_even_without_a_runtime() {
    // The original created the coroutine and never awaited it.
    let bus = EventBus::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    bus.on_async("hook.pre_tool", move |e: Event| {
        let s = s.clone();
        async move {
            tokio::task::yield_now().await;
            s.lock().unwrap().push(e.id());
        }
    })
    .unwrap();
    for _ in 0..1000 {
        assert!(bus.publish("hook.pre_tool", json!({})));
    }
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    assert_eq!(
        ids(&seen),
        (1..=1000).collect::<Vec<_>>(),
        "all, in publish order"
    );
}

#[tokio::test]
async fn async_delivery_works_from_a_current_thread_runtime() {
    let bus = EventBus::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    bus.on_async("hook.*", move |_e: Event| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    for _ in 0..500 {
        bus.publish("hook.x", json!(1));
    }
    bus.flush().await;
    assert_eq!(seen.load(Ordering::SeqCst), 500);
    assert!(
        bus.flush_blocking(PATIENCE).is_err(),
        "blocking flush refused in async code"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_delivery_works_from_a_multi_thread_runtime() {
    let bus = EventBus::new();
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    bus.on_async("*", move |_e: Event| {
        let s = s.clone();
        async move {
            s.fetch_add(1, Ordering::SeqCst);
        }
    })
    .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let bus = bus.clone();
            tokio::spawn(async move {
                for _ in 0..250 {
                    bus.publish_async("e", json!(null)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    bus.flush().await;
    assert_eq!(seen.load(Ordering::SeqCst), 1000);
}

/// A consumer whose handler waits for a permit per event, and records what it handled.
struct Gated {
    gate: Arc<Semaphore>,
    started: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<u64>>>,
}

fn gated_bus(overflow: Overflow, capacity: usize) -> (EventBus, Gated) {
    let bus = EventBus::new();
    let gated = Gated {
        gate: Arc::new(Semaphore::new(0)),
        started: Arc::new(AtomicUsize::new(0)),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let (gate, started, seen) = (
        gated.gate.clone(),
        gated.started.clone(),
        gated.seen.clone(),
    );
    bus.on_async_with(
        "t",
        QueueOptions::new(capacity, overflow),
        move |e: Event| {
            let (gate, started, seen) = (gate.clone(), started.clone(), seen.clone());
            async move {
                started.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                seen.lock().unwrap().push(e.id());
            }
        },
    )
    .unwrap();
    (bus, gated)
}

#[test]
fn drop_newest_keeps_the_queue_and_counts_each_refusal() {
    let (bus, g) = gated_bus(Overflow::DropNewest, 4);
    bus.publish("t", json!(1));
    wait_until("the first event to reach the handler", || {
        g.started.load(Ordering::SeqCst) == 1
    });
    for _ in 0..9 {
        assert!(
            bus.publish("t", json!(1)),
            "accepted by the bus even when a queue drops it"
        );
    }
    // The capacity bounds unhandled events, the one in the handler included: 1 + 3 queued.
    let stats = bus.stats();
    assert_eq!(stats.events_dropped, 6);
    assert_eq!(stats.subscribers[0].dropped, 6);
    assert_eq!(stats.subscribers[0].queue_len, 4);
    assert_eq!(stats.subscribers[0].queue_capacity, 4);
    g.gate.add_permits(100);
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    assert_eq!(ids(&g.seen), [1, 2, 3, 4]);
    assert_eq!(bus.stats().subscribers[0].delivered, 4);
}

#[test]
fn drop_oldest_evicts_and_counts_each_eviction() {
    let (bus, g) = gated_bus(Overflow::DropOldest, 4);
    bus.publish("t", json!(1));
    wait_until("the first event to reach the handler", || {
        g.started.load(Ordering::SeqCst) == 1
    });
    for _ in 0..9 {
        bus.publish("t", json!(1));
    }
    assert_eq!(bus.stats().events_dropped, 6);
    g.gate.add_permits(100);
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    assert_eq!(ids(&g.seen), [1, 8, 9, 10], "the one in the handler stays");
}

#[test]
fn block_makes_the_publisher_wait_and_loses_nothing() {
    let (bus, g) = gated_bus(Overflow::Block, 2);
    let published = Arc::new(AtomicUsize::new(0));
    let producer = {
        let (bus, published) = (bus.clone(), published.clone());
        std::thread::spawn(move || {
            for _ in 0..20 {
                bus.publish("t", json!(1));
                published.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // One event in the handler, one queued: the third publish must wait.
    wait_until("the producer to block", || {
        published.load(Ordering::SeqCst) == 2
    });
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        published.load(Ordering::SeqCst),
        2,
        "the producer is held back"
    );
    g.gate.add_permits(1000);
    producer.join().unwrap();
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    assert_eq!(ids(&g.seen), (1..=20).collect::<Vec<_>>());
    assert_eq!(bus.stats().events_dropped, 0);
}

#[tokio::test]
async fn publish_async_waits_for_room_without_blocking_the_runtime() {
    let (bus, g) = gated_bus(Overflow::Block, 1);
    let producer = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                bus.publish_async("t", json!(1)).await;
            }
        })
    };
    // This current-thread runtime keeps running other tasks while the producer waits.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!producer.is_finished());
    g.gate.add_permits(100);
    producer.await.unwrap();
    bus.flush().await;
    assert_eq!(ids(&g.seen), (1..=10).collect::<Vec<_>>());
}

#[test]
fn a_handler_publishing_into_its_own_full_block_queue_does_not_deadlock() {
    let bus = EventBus::new();
    let weak = bus.downgrade();
    let handled = Arc::new(AtomicUsize::new(0));
    let h = handled.clone();
    bus.on_async_with(
        "loop",
        QueueOptions::new(1, Overflow::Block),
        move |_e: Event| {
            let (weak, h) = (weak.clone(), h.clone());
            async move {
                if h.fetch_add(1, Ordering::SeqCst) < 5 {
                    let bus = weak.upgrade().unwrap();
                    // Two publishes: the second finds the queue full.
                    bus.publish("loop", json!(null));
                    bus.publish("loop", json!(null));
                }
            }
        },
    )
    .unwrap();
    bus.publish("loop", json!(null));
    wait_until("the loop to settle", || {
        let s = bus.stats();
        s.subscribers[0].delivered + s.subscribers[0].dropped == s.events_published
    });
    assert!(bus.stats().events_dropped > 0);
}

#[test]
fn panics_and_errors_in_async_handlers_are_counted_and_the_worker_survives() {
    let bus = EventBus::new();
    let ok = Arc::new(AtomicUsize::new(0));
    let o = ok.clone();
    bus.on_async("t", move |e: Event| {
        let o = o.clone();
        async move {
            match e.data().as_u64() {
                Some(0) => panic!("async handler bug"),
                Some(1) => Err("refused".to_string()),
                _ => {
                    o.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                }
            }
        }
    })
    .unwrap();
    for v in [0, 2, 1, 2, 0, 2] {
        bus.publish("t", json!(v));
    }
    assert!(bus.flush_blocking(PATIENCE).unwrap());
    assert_eq!(ok.load(Ordering::SeqCst), 3);
    let stats = bus.stats();
    assert_eq!((stats.events_failed, stats.subscribers[0].failed), (3, 3));
    assert_eq!(stats.subscribers[0].delivered, 3);
    let hist = stats.subscribers[0].handler_duration.as_ref().unwrap();
    assert_eq!(hist.count, 6);
}

#[test]
fn a_panic_before_the_async_block_is_counted_and_the_worker_survives() {
    // Unwrapping the payload ahead of `async move` panics while the future is being built,
    // outside the future itself.
    for overflow in [Overflow::DropNewest, Overflow::Block] {
        let bus = EventBus::builder()
            .overflow(overflow)
            .queue_capacity(2)
            .build()
            .unwrap();
        let sum = Arc::new(AtomicUsize::new(0));
        let s = sum.clone();
        bus.on_async("t", move |e: Event| {
            let n = e.data().as_u64().expect("a number") as usize;
            let s = s.clone();
            async move {
                s.fetch_add(n, Ordering::SeqCst);
            }
        })
        .unwrap();
        for v in [
            json!(1),
            json!("not a number"),
            json!(2),
            json!(null),
            json!(4),
        ] {
            // With Block and a dead worker this would hang once the queue filled up.
            bus.publish("t", v);
            assert!(bus.flush_blocking(PATIENCE).unwrap(), "{overflow:?}");
        }
        assert_eq!(sum.load(Ordering::SeqCst), 7, "{overflow:?}");
        let row = &bus.stats().subscribers[0];
        assert_eq!((row.delivered, row.failed), (3, 2), "{overflow:?}");
    }
}

/// A slow consumer that counts what it handled and reports a fixed number it "holds".
struct Slow {
    handled: Arc<AtomicUsize>,
    delay: Duration,
}

#[async_trait]
impl Subscriber for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn patterns(&self) -> Vec<String> {
        vec!["work.*".into(), "urgent".into()]
    }
    async fn handle(&self, _event: Event) -> HandlerResult {
        tokio::time::sleep(self.delay).await;
        self.handled.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn queue_capacity(&self) -> Option<usize> {
        Some(1000)
    }
    async fn on_shutdown(&self, _timeout: Duration) -> u64 {
        7
    }
}

#[tokio::test]
async fn shutdown_drains_within_the_timeout_and_reports_the_rest() {
    let bus = EventBus::new();
    let handled = Arc::new(AtomicUsize::new(0));
    bus.subscribe(Arc::new(Slow {
        handled: handled.clone(),
        delay: Duration::from_millis(1),
    }))
    .unwrap();
    let row = &bus.stats().subscribers[0];
    assert_eq!(
        (row.name.as_str(), row.kind),
        ("slow", SubscriberKind::Subscriber)
    );
    for _ in 0..20 {
        bus.publish("work.item", json!({}));
    }
    let report = bus.shutdown(PATIENCE).await;
    assert_eq!(
        handled.load(Ordering::SeqCst),
        20,
        "drained before reporting"
    );
    assert_eq!(
        report.undelivered, 7,
        "only what the subscriber itself held"
    );
    assert!(!report.complete);
    assert!(
        !bus.publish("work.item", json!({})),
        "no events after shutdown"
    );
    assert!(
        bus.on("x", |_: &Event| ()).is_err(),
        "no subscriptions after shutdown"
    );
}

#[tokio::test]
async fn shutdown_that_runs_out_of_time_counts_what_stayed_queued() {
    let bus = EventBus::new();
    let handled = Arc::new(AtomicUsize::new(0));
    bus.subscribe(Arc::new(Slow {
        handled: handled.clone(),
        delay: Duration::from_millis(200),
    }))
    .unwrap();
    for _ in 0..50 {
        bus.publish("urgent", json!({}));
    }
    let report = bus.shutdown(Duration::from_millis(300)).await;
    let handled = handled.load(Ordering::SeqCst) as u64;
    let queued = report.subscribers[0].queued;
    assert!(handled < 50);
    // At most one event was in the handler when the time ran out.
    assert!(
        (49..=50).contains(&(handled + queued)),
        "{handled} + {queued}"
    );
    assert!(!report.complete);
}

#[tokio::test]
async fn flush_returns_after_a_shutdown_that_ran_out_of_time() {
    let bus = EventBus::new();
    bus.subscribe(Arc::new(Slow {
        handled: Arc::new(AtomicUsize::new(0)),
        delay: Duration::from_millis(200),
    }))
    .unwrap();
    for _ in 0..5 {
        bus.publish("urgent", json!({}));
    }
    let report = bus.shutdown(Duration::from_millis(50)).await;
    assert!(report.undelivered >= 5, "{report:?}");
    // Nothing is left to wait for: the events were reported undelivered.
    tokio::time::timeout(Duration::from_secs(5), bus.flush())
        .await
        .expect("flush returns after a shutdown that ran out of time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reported_undelivered_at_shutdown_are_not_handled_afterwards() {
    let bus = EventBus::new();
    let handled = Arc::new(AtomicUsize::new(0));
    let counter = handled.clone();
    // The first event holds its runtime thread past the deadline (a handler that blocks
    // instead of awaiting); the rest of its batch would be handled at once.
    bus.on_async("t", move |event: Event| {
        if event.id() == 1 {
            std::thread::sleep(Duration::from_millis(300));
        }
        counter.fetch_add(1, Ordering::SeqCst);
        async {}
    })
    .unwrap();
    // Both runtime threads busy while the events are published, so that the worker takes
    // all five in one batch.
    let both_busy = Arc::new(std::sync::Barrier::new(3));
    for _ in 0..2 {
        let both_busy = both_busy.clone();
        tokio::spawn(async move {
            both_busy.wait();
            std::thread::sleep(Duration::from_millis(100));
        });
    }
    both_busy.wait();
    for _ in 0..5 {
        bus.publish("t", json!({}));
    }
    let report = bus.shutdown(Duration::from_millis(150)).await;
    assert_eq!(report.undelivered, 5, "{report:?}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The event in the handler's hands when time ran out may still finish (on a loaded
    // machine the worker may not have started it by then); none after it is handled.
    let handled = handled.load(Ordering::SeqCst);
    assert!(
        handled <= 1,
        "{handled} handled after all 5 were reported undelivered"
    );
}
