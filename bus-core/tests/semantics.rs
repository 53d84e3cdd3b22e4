//! Publish/subscribe semantics: patterns, order, filters, history, stats, failures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bus_core::{BusError, Event, EventBus, SubscriberKind};
use serde_json::{Value, json};

/// A handler with a bug; a named fn so its return type is `()`, not `!`.
fn panics(_: &Event) {
    panic!("handler bug")
}

type Log = Arc<Mutex<Vec<String>>>;
type Tagged = Box<dyn Fn(&Event) + Send + Sync>;

/// A shared log, and a maker of handlers that append `tag:event_type` to it.
fn recorder() -> (Log, impl Fn(&str) -> Tagged) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let make = move |tag: &str| {
        let l = l.clone();
        let tag = tag.to_owned();
        Box::new(move |e: &Event| l.lock().unwrap().push(format!("{tag}:{}", e.event_type())))
            as Tagged
    };
    (log, make)
}

#[test]
fn sync_handlers_run_in_subscription_order_before_publish_returns() {
    let bus = EventBus::new();
    let (log, make) = recorder();
    let a = make("a");
    let b = make("b");
    let c = make("c");
    bus.on("hook.*", move |e: &Event| a(e)).unwrap();
    bus.on("hook.pre_tool", move |e: &Event| b(e)).unwrap();
    bus.on("*", move |e: &Event| c(e)).unwrap();
    assert!(bus.publish("hook.pre_tool", json!({})));
    assert!(bus.publish("other", json!({})));
    assert_eq!(
        *log.lock().unwrap(),
        [
            "a:hook.pre_tool",
            "b:hook.pre_tool",
            "c:hook.pre_tool",
            "c:other"
        ]
    );
}

#[test]
fn globs_match_dots_and_single_characters_case_sensitively() {
    let bus = EventBus::new();
    let hits = Arc::new(AtomicUsize::new(0));
    for pattern in ["hook.*", "a?c"] {
        let h = hits.clone();
        bus.on(pattern, move |_: &Event| {
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    }
    for t in ["hook.a.b", "hook.", "abc", "Hook.x", "ac", "hook"] {
        bus.publish(t, Value::Null);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[test]
fn empty_and_padded_patterns_are_refused_by_name() {
    let bus = EventBus::new();
    let err = bus.on("", |_: &Event| ()).unwrap_err();
    assert!(matches!(err, BusError::InvalidPattern { ref pattern, .. } if pattern.is_empty()));
    let err = bus.add_filter("hook.* ").unwrap_err().to_string();
    assert!(err.contains("\"hook.* \""), "{err}");
    assert!(EventBus::builder().filters(["ok", ""]).build().is_err());
}

#[test]
fn every_kind_of_subscription_can_be_removed_wildcards_included() {
    let bus = EventBus::new();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let wild = bus
        .on("hook.*", move |_: &Event| {
            h.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    let once = bus.once("hook.*", panics).unwrap();
    assert!(bus.unsubscribe(wild));
    assert!(bus.unsubscribe(once));
    assert!(!bus.unsubscribe(wild), "second removal reports false");
    bus.publish("hook.pre_tool", json!({}));
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(bus.stats().events_failed, 0);
    assert!(bus.stats().subscribers.is_empty());
}

#[test]
fn failing_and_panicking_handlers_are_counted_and_isolated() {
    let bus = EventBus::new();
    let after = Arc::new(AtomicUsize::new(0));
    bus.on("x", |_: &Event| -> Result<(), String> {
        Err("nope".into())
    })
    .unwrap();
    bus.on("x", panics).unwrap();
    bus.once("x", panics).unwrap();
    let a = after.clone();
    bus.on("x", move |_: &Event| {
        a.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    assert!(bus.publish("x", json!(1)));
    assert!(bus.publish("x", json!(2)));
    assert_eq!(after.load(Ordering::SeqCst), 2);
    let stats = bus.stats();
    assert_eq!(stats.events_published, 2);
    assert_eq!(stats.events_failed, 5, "2 errors + 2 panics + 1 once panic");
    let failed: Vec<u64> = stats.subscribers.iter().map(|s| s.failed).collect();
    assert_eq!(
        failed,
        [2, 2, 0],
        "the once row is gone; its failure stays in the total"
    );
    assert_eq!(stats.subscribers[2].delivered, 2);
}

#[test]
fn once_fires_for_the_first_match_only_and_accepts_globs() {
    let bus = EventBus::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    bus.once("hook.*", move |e: &Event| s.lock().unwrap().push(e.id()))
        .unwrap();
    bus.publish("other", json!({}));
    bus.publish("hook.a", json!({}));
    bus.publish("hook.b", json!({}));
    assert_eq!(*seen.lock().unwrap(), [2]);
    assert!(bus.stats().subscribers.is_empty());
}

#[test]
fn filters_allow_list_counts_refusals_and_applies_immediately() {
    let bus = EventBus::new();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    bus.on("*", move |_: &Event| {
        h.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    assert!(bus.publish("app.user_action", json!({})));
    bus.add_filter("hook.*").unwrap();
    bus.add_filter("system.critical.*").unwrap();
    assert!(!bus.publish("app.user_action", json!({})));
    assert!(bus.publish("hook.pre_tool", json!({})));
    assert!(bus.publish("system.critical.disk", json!({})));
    assert!(bus.remove_filter("hook.*"));
    assert!(!bus.remove_filter("hook.*"));
    assert!(!bus.publish("hook.pre_tool", json!({})));
    let stats = bus.stats();
    assert!(stats.filters_active);
    assert_eq!(stats.filter_count, 1);
    assert_eq!(stats.events_filtered, 2);
    assert_eq!(stats.events_published, 3);
    bus.clear_filters();
    assert!(bus.publish("hook.pre_tool", json!({})));
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    assert_eq!(
        bus.recent_events(100).len(),
        4,
        "filtered events are not recorded"
    );
}

#[test]
fn a_disabled_bus_accepts_and_records_nothing() {
    let bus = EventBus::builder().enabled(false).build().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    bus.on("*", move |_: &Event| {
        h.fetch_add(1, Ordering::SeqCst);
    })
    .unwrap();
    assert!(!bus.publish("x", json!({})));
    let stats = bus.stats();
    assert_eq!((stats.events_published, stats.events_filtered), (0, 0));
    assert!(stats.last_event_time.is_none());
    assert!(bus.recent_events(10).is_empty());
    bus.set_enabled(true);
    assert!(bus.is_enabled());
    assert!(bus.publish("x", json!({})));
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert!(bus.stats().last_event_time.is_some());
}

#[test]
fn history_is_a_bounded_ring_and_limit_zero_gives_none() {
    let bus = EventBus::builder().history_size(5).build().unwrap();
    for i in 0..12 {
        bus.publish("t", json!(i));
    }
    let recent = bus.recent_events(3);
    let data: Vec<&Value> = recent.iter().map(Event::data).collect();
    assert_eq!(data, [&json!(9), &json!(10), &json!(11)]);
    assert_eq!(bus.recent_events(100).len(), 5);
    assert!(bus.recent_events(0).is_empty());
    assert_eq!(bus.stats().history_size, 5);

    bus.set_history_size(2);
    let ids: Vec<u64> = bus.recent_events(10).iter().map(Event::id).collect();
    assert_eq!(ids, [11, 12], "shrinking keeps the newest");
    bus.set_history_size(0);
    bus.publish("t", json!(12));
    assert!(bus.recent_events(10).is_empty());
    bus.set_history_size(4);
    bus.publish("t", json!(13));
    assert_eq!(bus.recent_events(10).len(), 1);
    bus.clear_history();
    assert!(bus.recent_events(10).is_empty());
    assert_eq!(bus.stats().history_capacity, 4);
}

#[test]
fn ids_increase_and_payloads_are_shared_not_copied() {
    let bus = EventBus::new();
    let payload = Arc::new(json!({"big": "payload"}));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    bus.on("t", move |e: &Event| s.lock().unwrap().push(e.clone()))
        .unwrap();
    bus.publish("t", payload.clone());
    bus.publish("t", payload.clone());
    let seen = seen.lock().unwrap();
    assert!(seen[0].id() < seen[1].id());
    assert!(Arc::ptr_eq(seen[0].shared_data(), &payload));
    assert!(Arc::ptr_eq(seen[1].shared_data(), &payload));
}

#[test]
fn stats_serialize_with_the_original_keys_and_reset() {
    let bus = EventBus::new();
    bus.on("t", |_: &Event| ()).unwrap();
    bus.publish("t", json!({}));
    let v = serde_json::to_value(bus.stats()).unwrap();
    for key in [
        "events_published",
        "events_filtered",
        "events_failed",
        "last_event_time",
        "enabled",
        "filters_active",
        "filter_count",
        "history_size",
        "events_dropped",
        "subscribers",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert_eq!(v["subscribers"][0]["kind"], "sync");
    assert_eq!(v["subscribers"][0]["delivered"], 1);
    bus.reset_stats();
    let stats = bus.stats();
    assert_eq!(stats.events_published, 0);
    assert_eq!(stats.subscribers[0].delivered, 0);
    assert_eq!(stats.stats_resets, 1);
    assert_eq!(stats.subscribers[0].kind, SubscriberKind::Sync);
}

#[test]
fn handlers_may_publish_subscribe_and_unsubscribe_without_deadlock() {
    let bus = EventBus::new();
    let weak = bus.downgrade();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    bus.on("first", move |_: &Event| {
        let bus = weak.upgrade().unwrap();
        let s2 = s.clone();
        let id = bus
            .on("second", move |e: &Event| s2.lock().unwrap().push(e.id()))
            .unwrap();
        assert!(bus.publish("second", json!({})));
        assert!(bus.unsubscribe(id));
        assert!(bus.publish("second", json!({})));
    })
    .unwrap();
    assert!(bus.publish("first", json!({})));
    assert_eq!(
        *seen.lock().unwrap(),
        [2],
        "added mid-publish, removed right after"
    );
}

#[test]
fn try_publish_returns_the_event_or_the_reason() {
    let bus = EventBus::builder().filters(["hook.*"]).build().unwrap();
    let event = bus.try_publish("hook.a", json!({"n": 1})).unwrap();
    assert_eq!((event.id(), event.event_type()), (1, "hook.a"));
    assert_eq!(
        bus.try_publish("other", json!(null)).unwrap_err(),
        bus_core::Refusal::Filtered
    );
    bus.set_enabled(false);
    assert_eq!(
        bus.try_publish("hook.a", json!(null)).unwrap_err(),
        bus_core::Refusal::Disabled
    );
}

#[test]
fn global_is_one_shared_instance() {
    let a = EventBus::global();
    let b = EventBus::global();
    assert!(std::ptr::eq(a, b));
}

#[test]
fn a_million_distinct_event_types_are_routed_correctly() {
    // The route cache is bounded; this checks that starting it over keeps routing right.
    let bus = EventBus::builder().history_size(0).build().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    bus.on("t.*7", move |_: &Event| {
        h.fetch_add(1, Ordering::Relaxed);
    })
    .unwrap();
    for i in 0..1_000_000u32 {
        bus.publish(&format!("t.{i}"), Value::Null);
    }
    assert_eq!(hits.load(Ordering::Relaxed), 100_000);
}
