//! Several threads publishing while others subscribe and unsubscribe: exact counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus_core::{Event, EventBus, Overflow};
use serde_json::json;

#[test]
fn counts_stay_exact_while_subscriptions_churn() {
    let bus = EventBus::new();
    let stable = Arc::new(AtomicUsize::new(0));
    let s = stable.clone();
    bus.on("load.*", move |_: &Event| {
        s.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = (0..2)
        .map(|i| {
            let (bus, stop) = (bus.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut rounds = 0;
                while !stop.load(Ordering::Relaxed) {
                    let pattern = if i == 0 { "load.*" } else { "load.t1" };
                    let id = bus.on(pattern, |_: &Event| ()).unwrap();
                    let async_id = bus.on_async(pattern, |_e: Event| async {}).unwrap();
                    assert!(bus.unsubscribe(id));
                    assert!(bus.unsubscribe(async_id));
                    rounds += 1;
                }
                rounds
            })
        })
        .collect();
    let publishers: Vec<_> = (0..4)
        .map(|t| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for i in 0..20_000 {
                    assert!(bus.publish(&format!("load.t{t}"), json!(i)));
                }
            })
        })
        .collect();
    publishers.into_iter().for_each(|p| p.join().unwrap());
    stop.store(true, Ordering::Relaxed);
    let rounds: usize = churners.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(rounds > 0);
    assert_eq!(stable.load(Ordering::Relaxed), 80_000);
    let stats = bus.stats();
    assert_eq!(stats.events_published, 80_000);
    assert_eq!(stats.subscribers.len(), 1);
    assert_eq!(stats.subscribers[0].delivered, 80_000);
    assert_eq!(stats.events_failed, 0);
}

#[test]
fn once_fires_exactly_once_under_contention() {
    for round in 0..50 {
        let bus = EventBus::new();
        let fired = Arc::new(AtomicUsize::new(0));
        let f = fired.clone();
        bus.once(
            if round % 2 == 0 { "race" } else { "r*" },
            move |_: &Event| {
                f.fetch_add(1, Ordering::SeqCst);
            },
        )
        .unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let bus = bus.clone();
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        bus.publish("race", json!(null));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(fired.load(Ordering::SeqCst), 1, "round {round}");
    }
}

#[test]
fn each_consumer_sees_each_producers_events_in_order() {
    let bus = EventBus::builder()
        .overflow(Overflow::Block)
        .queue_capacity(64)
        .build()
        .unwrap();
    let seen: Arc<Mutex<Vec<(u64, u64)>>> = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    bus.on_async("seq", move |e: Event| {
        let s = s.clone();
        async move {
            let d = e.data();
            s.lock()
                .unwrap()
                .push((d["producer"].as_u64().unwrap(), d["n"].as_u64().unwrap()));
        }
    })
    .unwrap();
    let producers: Vec<_> = (0..3)
        .map(|p| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for n in 0..5_000 {
                    bus.publish("seq", json!({"producer": p, "n": n}));
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    assert!(bus.flush_blocking(Duration::from_secs(30)).unwrap());
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 15_000, "Block loses nothing");
    let mut next: HashMap<u64, u64> = HashMap::new();
    for (p, n) in seen.iter() {
        let expected = next.entry(*p).or_insert(0);
        assert_eq!(n, expected, "producer {p} out of order");
        *expected += 1;
    }
}

#[test]
fn history_stays_bounded_and_ordered_with_many_publishing_threads() {
    let bus = EventBus::builder().history_size(50).build().unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let bus = bus.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    bus.publish("h", json!(null));
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let recent = bus.recent_events(1000);
    assert_eq!(recent.len(), 50);
    assert!(recent.windows(2).all(|w| w[0].id() < w[1].id()));
    assert_eq!(
        recent.last().unwrap().id(),
        4000,
        "the newest event is kept"
    );
    assert_eq!(bus.stats().history_size, 50);
}
