//! `IdOrder::PerThread`: unique ids, increasing per thread, and a history that still holds
//! the newest events when several threads publish.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bus_core::{Event, EventBus, ID_BLOCK, IdOrder};
use serde_json::json;

fn per_thread_bus(history: usize) -> EventBus {
    EventBus::builder()
        .history_size(history)
        .id_order(IdOrder::PerThread)
        .build()
        .unwrap()
}

#[test]
fn one_publishing_thread_still_gets_one_two_three() {
    let bus = per_thread_bus(100);
    let ids: Vec<u64> = (0..3 * ID_BLOCK)
        .map(|n| bus.try_publish("t", json!(n)).unwrap().id())
        .collect();
    assert_eq!(ids, (1..=3 * ID_BLOCK).collect::<Vec<_>>());
    let recent: Vec<u64> = bus.recent_events(100).iter().map(Event::id).collect();
    assert_eq!(
        recent,
        (3 * ID_BLOCK - 99..=3 * ID_BLOCK).collect::<Vec<_>>()
    );
}

#[test]
fn threads_get_unique_ids_in_their_own_order_and_the_history_keeps_the_newest() {
    const THREADS: usize = 4;
    const PER_THREAD: u64 = 5_000;
    const HISTORY: usize = 100;
    let bus = per_thread_bus(HISTORY);
    // Every delivered event with the thread that published it, in delivery order per thread.
    let seen: Arc<Mutex<Vec<(String, u64, SystemTime)>>> = Arc::default();
    let log = seen.clone();
    bus.on("load.*", move |e: &Event| {
        let thread = std::thread::current().name().unwrap_or("?").to_owned();
        log.lock().unwrap().push((thread, e.id(), e.timestamp()));
    })
    .unwrap();
    let payload = Arc::new(json!({"shared": true}));
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (bus, payload) = (&bus, payload.clone());
            std::thread::Builder::new()
                .name(format!("publisher-{t}"))
                .spawn_scoped(s, move || {
                    for _ in 0..PER_THREAD {
                        assert!(bus.publish("load.tick", payload.clone()));
                    }
                })
                .unwrap();
        }
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), THREADS * PER_THREAD as usize);
    let unique: HashSet<u64> = seen.iter().map(|(_, id, _)| *id).collect();
    assert_eq!(unique.len(), seen.len(), "every id is unique");
    for t in 0..THREADS {
        let name = format!("publisher-{t}");
        let ids: Vec<u64> = seen
            .iter()
            .filter(|(thread, ..)| *thread == name)
            .map(|(_, id, _)| *id)
            .collect();
        assert_eq!(ids.len(), PER_THREAD as usize);
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "{name}'s ids increase in its publishing order"
        );
    }

    let mut newest: Vec<(SystemTime, u64)> = seen.iter().map(|(_, id, at)| (*at, *id)).collect();
    newest.sort_unstable();
    let newest: Vec<u64> = newest[newest.len() - HISTORY..]
        .iter()
        .map(|(_, id)| *id)
        .collect();
    let recent: Vec<u64> = bus.recent_events(HISTORY).iter().map(Event::id).collect();
    assert_eq!(recent, newest, "the newest {HISTORY} by time, oldest first");
    assert_eq!(bus.stats().history_size, HISTORY);

    drop(bus);
    assert_eq!(
        Arc::strong_count(&payload),
        1,
        "the history let go of every event with the bus"
    );
}

#[test]
fn the_history_holds_at_most_its_size_per_publishing_thread() {
    const HISTORY: usize = 50;
    let bus = per_thread_bus(HISTORY);
    let payload = Arc::new(json!("held"));
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..1_000 {
                    bus.publish("t", payload.clone());
                }
            });
        }
    });
    let held = Arc::strong_count(&payload) - 1;
    assert!(held <= 3 * HISTORY, "{held} events held");
    assert_eq!(bus.recent_events(usize::MAX).len(), HISTORY);
}

#[test]
fn resizing_keeps_the_newest_in_time_order() {
    let bus = per_thread_bus(10);
    std::thread::scope(|s| {
        s.spawn(|| (0..30).for_each(|n| assert!(bus.publish("t", json!(n)))));
    });
    (0..30).for_each(|n| assert!(bus.publish("t", json!(100 + n))));
    let before: Vec<u64> = bus.recent_events(5).iter().map(Event::id).collect();
    bus.set_history_size(5);
    let after: Vec<u64> = bus.recent_events(5).iter().map(Event::id).collect();
    assert_eq!(after, before);
}
