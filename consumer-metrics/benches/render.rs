//! Cost of one scrape: `BusMetrics::render` on a busy bus (the full per-type cap of 256
//! types, 20 subscriptions, 10 of them queued with histograms).

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::time::Duration;

use bus_core::EventBus;
use consumer_metrics::{BusMetrics, MetricsConfig};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn render(c: &mut Criterion) {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    for i in 0..10 {
        bus.on(&format!("t.{i}.*"), |_: &bus_core::Event| {})
            .unwrap();
        bus.on_async(&format!("t.{i}.*"), |_| async {}).unwrap();
    }
    for i in 0..300 {
        bus.publish(&format!("t.{}.{i}", i % 10), json!({}));
    }
    bus.flush_blocking(Duration::from_secs(10)).unwrap();
    let bytes = metrics.render().len();
    c.bench_function(&format!("render ({bytes} bytes)"), |b| {
        b.iter(|| metrics.render())
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
