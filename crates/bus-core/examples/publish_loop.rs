//! Publishes N events to one sync handler and prints the rate.
//!
//! `cargo run --release -p bus-core --example publish_loop -- 1000000`
//!
//! With a fixed N it is also the workload for instruction counts, which unlike wall-clock
//! time do not depend on what else the machine is doing:
//! `valgrind --tool=callgrind target/release/examples/publish_loop 1000000`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bus_core::{Event, EventBus};
use serde_json::json;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("the argument is the number of events"))
        .unwrap_or(10_000_000);
    let bus = EventBus::new();
    let hits = Arc::new(AtomicU64::new(0));
    let counter = hits.clone();
    bus.on("hook.pre_tool", move |_: &Event| {
        counter.fetch_add(1, Ordering::Relaxed);
    })
    .expect("a valid pattern");
    let data =
        Arc::new(json!({"tool_name": "Read", "file_path": "/example.py", "sessionId": "abc-123"}));
    let start = Instant::now();
    for _ in 0..n {
        bus.publish("hook.pre_tool", data.clone());
    }
    let elapsed = start.elapsed();
    assert_eq!(hits.load(Ordering::Relaxed), n);
    eprintln!(
        "{n} events in {elapsed:?}: {:.2} million events/s",
        n as f64 / elapsed.as_secs_f64() / 1e6
    );
}
