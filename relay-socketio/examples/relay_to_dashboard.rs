//! Relays a few `hook.*` events to a running dashboard (or any Socket.IO server with a
//! `claude_event` handler) and prints the relay's stats.
//!
//! ```text
//! python tools/dashboard_server.py 8765 --record /tmp/received.jsonl &
//! cargo run -p relay-socketio --example relay_to_dashboard -- http://localhost:8765
//! ```
//!
//! Set `RUST_LOG=relay_socketio=debug` to watch connections and retries.

#![allow(clippy::print_stdout)] // a command-line demo: its output is the point

use std::sync::Arc;
use std::time::Duration;

use bus_core::EventBus;
use relay_socketio::{RelayConfig, SocketIoRelay};
use serde_json::json;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| RelayConfig::default().url);
    let bus = EventBus::new();
    let relay = Arc::new(SocketIoRelay::new(RelayConfig {
        url,
        ..RelayConfig::default()
    })?);
    relay.attach(&bus)?;

    bus.publish(
        "hook.pre_tool",
        json!({"tool_name": "Read", "session_id": "demo"}),
    );
    bus.publish(
        "hook.post_tool",
        json!({"tool_name": "Read", "exit_code": 0}),
    );
    bus.publish("hook.user_prompt", json!("a prompt that is not an object"));
    bus.publish("agent.spawned", json!({})); // not matched by `hook.*`: not relayed

    let report = relay.stop(Duration::from_secs(10)).await;
    println!("{}", serde_json::to_string_pretty(&relay.stats())?);
    println!(
        "relayed {}, undelivered {}, complete: {}",
        report.relayed, report.undelivered, report.complete
    );
    Ok(())
}
