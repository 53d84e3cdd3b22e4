//! What priorities and rate limits cost, measured side by side in one run:
//! - async-1: one async handler (`Overflow::Block`), as in `dispatch`, timed until all handled;
//! - async-1-prio: the same with priority rules configured (`hook.error*=high,
//!   hook.subagent_stop=high,hook.stop=low`) and every event `normal`;
//! - publish-async: the publisher's time alone (handling not timed) for one async consumer;
//! - publish-limited: the same for a consumer limited to `10/s drop`: the limit runs on the
//!   consumer's worker, so the publisher's path is the same enqueue.
//!
//! `cargo bench -p bus-core --bench limits`; `cargo xtask bench` reports the ratios.

// criterion's macros generate undocumented public functions.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bus_core::{Event, EventBus, Overflow, QueueOptions};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

const EVENT: &str = "hook.pre_tool";
const BATCH: u64 = 20_000;

fn payload() -> Arc<Value> {
    Arc::new(json!({"tool_name": "Read", "file_path": "/example.py", "sessionId": "abc-123"}))
}

fn bus_with(options: QueueOptions) -> (EventBus, Arc<AtomicU64>) {
    let bus = EventBus::builder().history_size(100).build().unwrap();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    bus.on_async_with(EVENT, options, move |_: Event| {
        counter.fetch_add(1, Ordering::Relaxed);
        async {}
    })
    .unwrap();
    (bus, hits)
}

/// Publishes and waits until everything was handled: the async hand-off's throughput.
fn handled(c: &mut Criterion, name: &str, options: QueueOptions) {
    let data = payload();
    let mut group = c.benchmark_group("limits");
    group.throughput(Throughput::Elements(BATCH));
    let (bus, hits) = bus_with(options);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                for _ in 0..BATCH {
                    bus.publish(EVENT, data.clone());
                }
                assert!(bus.flush_blocking(Duration::from_secs(60)).unwrap());
            }
            start.elapsed()
        })
    });
    let stats = bus.stats();
    assert_eq!(stats.events_dropped, 0);
    assert_eq!(hits.load(Ordering::Relaxed), stats.events_published);
    group.finish();
}

/// Times the publisher alone; the consumer catches up (or drops) untimed between samples.
fn publisher(c: &mut Criterion, name: &str, options: QueueOptions) {
    let data = payload();
    let mut group = c.benchmark_group("limits");
    group.throughput(Throughput::Elements(BATCH));
    let (bus, _hits) = bus_with(options);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                for _ in 0..BATCH {
                    bus.publish(EVENT, data.clone());
                }
                spent += start.elapsed();
                assert!(bus.flush_blocking(Duration::from_secs(60)).unwrap());
            }
            spent
        })
    });
    group.finish();
}

fn workloads(c: &mut Criterion) {
    let block = QueueOptions::new(10_000, Overflow::Block);
    handled(c, "async-1", block.clone());
    let rules = "hook.error*=high,hook.subagent_stop=high,hook.stop=low"
        .parse()
        .unwrap();
    handled(c, "async-1-prio", block.clone().with_priorities(rules));
    // Room for a whole batch: the publisher never meets a full queue in either case.
    let roomy = QueueOptions::new(BATCH as usize, Overflow::DropNewest);
    publisher(c, "publish-async", roomy.clone());
    publisher(
        c,
        "publish-limited",
        roomy.with_rate_limit("10/s drop".parse().unwrap()),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = workloads
}
criterion_main!(benches);
