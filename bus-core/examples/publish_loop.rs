//! Publishes N events to one handler and prints the rate.
//!
//! `cargo run --release -p bus-core --example publish_loop -- 1000000 [sync|async]`
//!
//! `sync` (the default) runs one sync handler; `async` one async handler behind a `Block`
//! queue, timed until every event is handled; `fanout` ten such async handlers, each getting
//! every event. With a fixed N it is also the workload for
//! instruction counts, which unlike wall-clock time do not depend on what else the machine is
//! doing: `valgrind --tool=callgrind target/release/examples/publish_loop 1000000`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bus_core::{Event, EventBus, Overflow};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .map(|a| {
            a.parse()
                .expect("the first argument is the number of events")
        })
        .unwrap_or(10_000_000);
    let handlers: u64 = match args.next().as_deref() {
        None | Some("sync") => 0,
        Some("async") => 1,
        Some("fanout") => 10,
        Some(other) => panic!("the second argument is sync, async or fanout, not {other:?}"),
    };
    let bus = EventBus::builder()
        .overflow(Overflow::Block)
        .build()
        .expect("valid settings");
    let hits = Arc::new(AtomicU64::new(0));
    for _ in 0..handlers {
        let counter = hits.clone();
        bus.on_async("hook.pre_tool", move |_: Event| {
            counter.fetch_add(1, Ordering::Relaxed);
            async {}
        })
        .expect("a valid pattern");
    }
    if handlers == 0 {
        let counter = hits.clone();
        bus.on("hook.pre_tool", move |_: &Event| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .expect("a valid pattern");
    }
    let data =
        Arc::new(json!({"tool_name": "Read", "file_path": "/example.py", "sessionId": "abc-123"}));
    let start = Instant::now();
    for _ in 0..n {
        bus.publish("hook.pre_tool", data.clone());
    }
    assert!(
        bus.flush_blocking(Duration::from_secs(600))
            .expect("called without a runtime")
    );
    let elapsed = start.elapsed();
    assert_eq!(
        hits.load(Ordering::Relaxed),
        n * handlers.max(1),
        "every event handled"
    );
    eprintln!(
        "{n} events in {elapsed:?}: {:.2} million events/s",
        n as f64 / elapsed.as_secs_f64() / 1e6
    );
}
