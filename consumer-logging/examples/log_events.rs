//! Logs a few events to stderr.
//!
//! ```text
//! cargo run -p consumer-logging --example log_events            # text lines
//! cargo run -p consumer-logging --example log_events -- json    # JSON lines
//! cargo run -p consumer-logging --example log_events -- text debug   # DEBUG lines too
//! ```

use std::time::Duration;

use bus_core::EventBus;
use consumer_logging::{LogFormat, LoggingConfig, LoggingSubscriber, RateLimit, install_tracing};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let format: LogFormat = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("text")
        .parse()?;
    let debug = std::env::args().nth(2).as_deref() == Some("debug");
    install_tracing(format, debug)?;

    let bus = EventBus::new();
    LoggingSubscriber::attach(
        &bus,
        LoggingConfig {
            max_data_bytes: 64,
            rate_limit: Some("5/s".parse::<RateLimit>()?),
            ..LoggingConfig::default()
        },
    )?;

    bus.publish(
        "hook.pre_tool",
        json!({"tool_name": "Read", "path": "/tmp/x"}),
    );
    bus.publish(
        "hook.post_tool",
        json!({"tool_name": "Read", "output": "z".repeat(500)}),
    );
    // A flood: five lines, then one summary of the 95 skipped (written at shutdown).
    for i in 0..100 {
        bus.publish("agent.heartbeat", json!({"seq": i}));
    }
    bus.shutdown(Duration::from_secs(5)).await;
    Ok(())
}
