//! Rate-limited consumers, on tokio's paused clock: the virtual time moves only when every
//! task waits, so rates are checked exactly, never by timing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bus_core::{Event, EventBus, Overflow, QueueOptions, RateLimit, RatePolicy, SubscriptionId};
use serde_json::json;
use tokio::runtime::Handle;

fn counting_bus(options: QueueOptions) -> (EventBus, Arc<AtomicU64>, SubscriptionId) {
    let bus = EventBus::builder()
        .runtime(Handle::current())
        .build()
        .unwrap();
    let handled = Arc::new(AtomicU64::new(0));
    let counter = handled.clone();
    let id = bus
        .on_async_with("*", options, move |_e: Event| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
        .unwrap();
    (bus, handled, id)
}

#[tokio::test(start_paused = true)]
async fn a_delay_consumer_gets_its_rate_within_five_percent_over_ten_seconds() {
    let limit: RateLimit = "500/s burst 50".parse().unwrap();
    let (bus, handled, _) =
        counting_bus(QueueOptions::new(20_000, Overflow::DropNewest).with_rate_limit(limit));
    for i in 0..20_000 {
        assert!(bus.publish("hook.pre_tool", json!(i)));
    }
    // Publishing never waited for the limit: everything is queued, nothing dropped.
    let row = bus.stats().subscribers[0].clone();
    assert_eq!((row.queue_len, row.dropped), (20_000, 0));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let n = handled.load(Ordering::Relaxed);
    let rate = (n - 50) as f64 / 10.0;
    assert!(
        (rate - 500.0).abs() <= 25.0,
        "{n} handled in 10 s: {rate}/s"
    );
    let stats = bus.stats().subscribers[0].rate_limit.clone().unwrap();
    assert_eq!(stats.limit, "500/s burst 50 delay");
    assert_eq!(stats.configured_per_second, 500.0);
    assert!(
        (stats.current_per_second - 500.0).abs() <= 25.0,
        "{stats:?}"
    );
    assert!(stats.delayed >= n - 51 && stats.dropped == 0, "{stats:?}");
}

#[tokio::test(start_paused = true)]
async fn a_drop_consumer_drops_and_counts_exactly_per_type() {
    let limit = RateLimit::parse_with_default("100/s burst 10", RatePolicy::Drop).unwrap();
    let (bus, handled, _) =
        counting_bus(QueueOptions::new(10_000, Overflow::DropNewest).with_rate_limit(limit));
    for i in 0..1_000 {
        let t = if i % 5 == 0 {
            "hook.error"
        } else {
            "hook.pre_tool"
        };
        bus.publish(t, json!(i));
    }
    // The worker runs only now, with the clock standing still: exactly the burst goes through.
    bus.flush().await;
    assert_eq!(handled.load(Ordering::Relaxed), 10);
    let row = bus.stats().subscribers[0].clone();
    let stats = row.rate_limit.unwrap();
    assert_eq!((stats.dropped, row.dropped), (990, 990));
    // Events 0, 5: the two errors among the first ten went through.
    assert_eq!(stats.dropped_by_type["hook.error"], 200 - 2);
    assert_eq!(stats.dropped_by_type["hook.pre_tool"], 800 - 8);
    assert_eq!(bus.stats().events_dropped, 990);
}

#[tokio::test(start_paused = true)]
async fn the_limit_changes_while_the_consumer_runs() {
    let (bus, handled, id) = counting_bus(
        QueueOptions::new(100_000, Overflow::DropNewest)
            .with_rate_limit("10/s burst 1".parse().unwrap()),
    );
    for i in 0..50_000 {
        bus.publish("t", json!(i));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let slow = handled.load(Ordering::Relaxed);
    assert!((20..=22).contains(&slow), "{slow}");
    bus.set_rate_limit(id, Some("1000/s burst 1000".parse().unwrap()))
        .unwrap();
    assert_eq!(bus.rate_limit(id).unwrap().events.get(), 1000);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let fast = handled.load(Ordering::Relaxed) - slow;
    assert!((10_450..=11_550).contains(&fast), "{fast}");
    bus.set_rate_limit(id, None).unwrap();
    bus.flush().await;
    assert_eq!(handled.load(Ordering::Relaxed), 50_000);
    assert!(bus.stats().subscribers[0].rate_limit.is_none());
    assert!(bus.set_rate_limit_by_name("nobody", None).is_err());
}
