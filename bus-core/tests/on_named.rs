//! `on_named`: a sync handler under a chosen name, for several patterns.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bus_core::{BusError, EventBus};
use serde_json::json;

#[test]
fn a_named_sync_handler_sees_every_matching_event_before_publish_returns() {
    let bus = EventBus::new();
    let seen = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&seen);
    let id = bus
        .on_named(
            "counter",
            &["hook.*".into(), "app.x".into()],
            move |_: &bus_core::Event| {
                counter.fetch_add(1, Ordering::Relaxed);
            },
        )
        .unwrap();
    for kind in ["hook.a", "app.x", "app.y", "hook.b"] {
        bus.publish(kind, json!(null));
        // Counted on the publishing thread: no flush needed.
    }
    assert_eq!(seen.load(Ordering::Relaxed), 3);
    let stats = bus.stats();
    let row = stats.subscribers.iter().find(|s| s.id == id.get()).unwrap();
    assert_eq!(row.name, "counter");
    assert_eq!(row.queue_capacity, 0, "sync: no queue");
}

#[test]
fn no_patterns_or_a_bad_one_is_refused_by_name() {
    let bus = EventBus::new();
    let err = bus
        .on_named("empty", &[], |_: &bus_core::Event| {})
        .unwrap_err();
    assert!(
        matches!(err, BusError::NoPatterns { ref name } if name == "empty"),
        "{err}"
    );
    assert!(
        bus.on_named("bad", &[" x".into()], |_: &bus_core::Event| {})
            .is_err()
    );
}
