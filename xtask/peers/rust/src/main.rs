//! One `cargo xtask bench` workload on a Rust channel; prints one JSON line.
//!
//! Usage: `rust-peers LIBRARY WORKLOAD SECONDS`
//!
//! LIBRARY: `broadcast` (`tokio::sync::broadcast`), `flume`, `async-broadcast`, or
//! `eventbus` (ours through the same harness, so that the xtask can pair its runs with the
//! channels').
//! WORKLOAD: `async-1` (one receiver task) or `fanout-10` (ten receiver tasks, each getting
//! every event); the synchronous workloads have no counterpart on a channel (exit status 3).
//!
//! As bus-core's async-1: the main thread sends batches of 20,000 clones of one prebuilt
//! shared payload, losslessly (it waits for room, as `Overflow::Block` does), into a channel of
//! 10,000 (bus-core's default queue capacity); receiver tasks run on a two-thread tokio
//! runtime (as the bus's own); each batch is timed until every receiver has handled it. The
//! JSON says how many events were sent in the timed part, how long it took, how many were
//! handled then (`delivered`, summed over receivers) and how many reached a receiver out of
//! order, twice, or not at all (`misdelivered`): the xtask checks them.

mod bus;
mod channels;
mod handled;

use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};

use channels::Channel;
use handled::Handled;

/// Events per batch, as in bus-core's async-1.
const BATCH: u64 = 20_000;
/// Room in each channel: bus-core's default queue capacity.
pub(crate) const CAPACITY: usize = 10_000;

/// What receivers get: a sequence number (to check order and loss) and the shared payload.
pub(crate) type Message = (u64, Arc<Value>);

#[allow(clippy::print_stdout)] // the JSON line on stdout is what the xtask reads
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [library, workload, seconds] = args.as_slice() else {
        eprintln!(
            "usage: rust-peers broadcast|flume|async-broadcast|eventbus async-1|fanout-10 SECONDS"
        );
        std::process::exit(2);
    };
    let Ok(seconds) = seconds.parse::<f64>() else {
        eprintln!("SECONDS must be a number, not {seconds:?}");
        std::process::exit(2);
    };
    let receivers = match workload.as_str() {
        "async-1" => 1,
        "fanout-10" => 10,
        "exact-1" | "exact-10" | "wild-100" | "threads-2" => {
            not_applicable(if library == "eventbus" {
                "this harness runs the queued workloads only (ours are all in bus-core's criterion benches)"
            } else {
                "a channel has no synchronous handlers or patterns: only the queued workloads apply"
            })
        }
        other => {
            eprintln!("unknown workload {other:?}");
            std::process::exit(2);
        }
    };
    if library == "flume" && receivers > 1 {
        not_applicable("flume hands each message to one receiver (no broadcast)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let handled = Arc::new(Handled::default());
    let channel = match Channel::open(library, receivers, &runtime, &handled) {
        Ok(channel) => channel,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let report = run(channel, receivers, &handled, seconds);
    println!("{report}");
}

fn not_applicable(why: &str) -> ! {
    eprintln!("{why}");
    std::process::exit(3)
}

/// Sends batches until `seconds` have passed (after one untimed batch), then closes the
/// channel and checks what every receiver saw.
fn run(mut channel: Channel, receivers: u64, handled: &Handled, seconds: f64) -> Value {
    let payload =
        Arc::new(json!({"tool_name": "Read", "file_path": "/example.py", "sessionId": "abc-123"}));
    let mut sent = 0u64;
    let mut batch = |channel: &mut Channel| {
        for _ in 0..BATCH {
            sent += 1;
            channel.send((sent, payload.clone()));
        }
        handled.wait_for(sent * receivers);
    };
    batch(&mut channel);
    let before = handled.count();
    let mut events = 0;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        batch(&mut channel);
        events += BATCH;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let delivered = handled.count() - before;
    let total = events + BATCH;
    let misdelivered = channel.close(total);
    json!({
        "events": events,
        "seconds": elapsed,
        "delivered": delivered,
        "misdelivered": misdelivered,
    })
}
