//! How fast a CEL condition routes in-process: a sync subscriber with a condition on a
//! `data` field, fed the PreToolUse hook payload; and a patterns-only subscriber's publish
//! rate with and without conditional subscribers elsewhere on the bus (other patterns).
//!
//! `cargo run --release -p bus-cel --example condition_rate -- [EVENTS]` prints lines like
//! `matched: 5000000 events in 1.23 s = 4065040 events/s (handler counted 5000000)`, read by
//! `cargo xtask bench --rules`.

// A benchmark's output is its figures, on stdout for `cargo xtask bench --rules`.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bus_cel::CelCondition;
use bus_core::{Event, EventBus};
use serde_json::Value;

const HOOK: &str = r#"{
  "session_id": "abc123", "transcript_path": "/home/me/.claude/projects/demo/00893aaf-19fa-41d2-8238-13269b9b3ca0.jsonl", "cwd": "/home/me/demo",
  "permission_mode": "default", "hook_event_name": "PreToolUse", "tool_name": "Write",
  "tool_input": {"file_path": "/home/me/demo/notes.txt", "content": "line one\nline two"}
}"#;

const CONDITION: &str = r#"data.tool_name in ["Edit", "Write"]"#;

fn counter(bus: &EventBus, pattern: &str, condition: Option<Arc<CelCondition>>) -> Arc<AtomicU64> {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let handler = move |_: &Event| {
        c.fetch_add(1, Ordering::Relaxed);
    };
    match condition {
        Some(condition) => bus.on_where(pattern, condition, handler),
        None => bus.on(pattern, handler),
    }
    .expect("a valid pattern");
    count
}

/// Publishes `n` events of `event_type` with `data`; returns events/s.
fn publish(bus: &EventBus, event_type: &str, data: &Arc<Value>, n: u64) -> f64 {
    let started = Instant::now();
    for _ in 0..n {
        bus.publish(event_type, data.clone());
    }
    n as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let data: Arc<Value> = Arc::new(serde_json::from_str(HOOK).expect("the payload is JSON"));
    let condition = || Arc::new(CelCondition::compile(CONDITION, "bench").expect("compiles"));
    let quiet = || EventBus::builder().history_size(0).build().expect("a bus");

    let bus = quiet();
    let cond = condition();
    let matched = counter(&bus, "hook.*", Some(cond.clone()));
    publish(&bus, "hook.pre_tool", &data, n / 10); // warm-up
    matched.store(0, Ordering::Relaxed);
    let rate = publish(&bus, "hook.pre_tool", &data, n);
    println!(
        "matched: {n} events = {rate:.0} events/s (handler counted {}, condition errors {})",
        matched.load(Ordering::Relaxed),
        cond.errors()
    );

    // Best of three alternating rounds each, so neither side gets the quieter moment.
    let (mut alone_best, mut beside_best) = (0f64, 0f64);
    for _ in 0..3 {
        let alone = quiet();
        let seen = counter(&alone, "tool.*", None);
        alone_best = alone_best.max(publish(&alone, "tool.used", &data, n));
        assert_eq!(seen.load(Ordering::Relaxed), n);

        let beside = quiet();
        let seen = counter(&beside, "tool.*", None);
        for i in 0..4 {
            counter(&beside, &format!("hook.{i}.*"), Some(condition()));
        }
        beside_best = beside_best.max(publish(&beside, "tool.used", &data, n));
        assert_eq!(seen.load(Ordering::Relaxed), n);
    }
    println!("patterns_only: {n} events = {alone_best:.0} events/s");
    println!("patterns_only_beside_conditions: {n} events = {beside_best:.0} events/s");
}
