//! Captures the real `tracing` output of a `LoggingSubscriber` attached to a real bus and
//! checks the fields, the cut and the rate limit.
//!
//! The bus runs subscribers on its own worker threads, so the capture is the process-wide
//! subscriber (installed once); each test uses its own event-type prefix and reads only its
//! own lines.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use bus_core::EventBus;
use consumer_logging::{LogFormat, LoggingConfig, LoggingSubscriber, RateLimit, formatter};
use serde_json::{Value, json};
use tracing::Level;

mod common;

use common::Buffer;

/// The JSON lines logged so far whose `fields.event_type` starts with `prefix`.
fn lines_for(prefix: &str) -> Vec<Value> {
    static CAPTURE: OnceLock<Buffer> = OnceLock::new();
    let buffer = CAPTURE.get_or_init(|| {
        let buffer = Buffer::default();
        // Debug so that a DEBUG-level subscriber's lines are captured too.
        tracing::subscriber::set_global_default(formatter(LogFormat::Json, true, buffer.clone()))
            .expect("no other global subscriber in this test binary");
        buffer
    });
    let text = buffer.text();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .filter(|v| {
            v["fields"]["event_type"]
                .as_str()
                .is_some_and(|t| t.starts_with(prefix))
        })
        .collect()
}

fn bus() -> EventBus {
    lines_for("(install the capture first)");
    EventBus::new()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_each_event_with_its_fields() {
    let bus = bus();
    LoggingSubscriber::attach(
        &bus,
        LoggingConfig {
            patterns: vec!["fields.*".into()],
            level: Level::WARN,
            ..LoggingConfig::default()
        },
    )
    .unwrap();
    let before = SystemTime::now();
    assert!(bus.publish("fields.one", json!({"tool": "Read", "n": [1, 2]})));
    assert!(bus.publish("other.skipped", json!({})));
    assert!(bus.publish("fields.two", json!("text")));
    bus.flush().await;

    let lines = lines_for("fields.");
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let first = &lines[0];
    assert_eq!(first["target"], "eventbus::events");
    assert_eq!(first["level"], "WARN");
    assert_eq!(first["fields"]["message"], "event");
    assert_eq!(first["fields"]["event_id"], 1);
    assert_eq!(first["fields"]["event_type"], "fields.one");
    assert_eq!(first["fields"]["data"], r#"{"n":[1,2],"tool":"Read"}"#);
    let ts = first["fields"]["timestamp"].as_str().unwrap();
    let parsed = humantime::parse_rfc3339(ts).unwrap();
    assert!(parsed >= before - Duration::from_millis(1), "{ts}");
    assert!(ts.ends_with('Z'), "{ts}");
    assert_eq!(lines[1]["fields"]["event_id"], 3);
    assert_eq!(lines[1]["fields"]["data"], r#""text""#);
    assert!(
        lines_for("other.").is_empty(),
        "events outside the patterns are not logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_large_payloads_with_a_marker() {
    let bus = bus();
    LoggingSubscriber::attach(
        &bus,
        LoggingConfig {
            patterns: vec!["cut.*".into()],
            max_data_bytes: 16,
            ..LoggingConfig::default()
        },
    )
    .unwrap();
    bus.publish("cut.big", json!({"blob": "x".repeat(5000)}));
    bus.publish("cut.small", json!({"a": 1}));
    bus.flush().await;
    let lines = lines_for("cut.");
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0]["fields"]["data"],
        r#"{"blob":"xxxxxxx…[truncated: 16 of 5011 bytes]"#
    );
    assert_eq!(lines[1]["fields"]["data"], r#"{"a":1}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_cut_is_one_kib() {
    let bus = bus();
    LoggingSubscriber::attach(
        &bus,
        LoggingConfig {
            patterns: vec!["kib.*".into()],
            ..LoggingConfig::default()
        },
    )
    .unwrap();
    bus.publish("kib.big", json!("y".repeat(4000)));
    bus.flush().await;
    let lines = lines_for("kib.");
    let data = lines[0]["fields"]["data"].as_str().unwrap();
    let (kept, marker) = data.split_once('…').unwrap();
    assert_eq!(kept.len(), 1024);
    assert_eq!(marker, "[truncated: 1024 of 4002 bytes]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_logs_the_first_n_then_one_summary() {
    let bus = bus();
    LoggingSubscriber::attach(
        &bus,
        LoggingConfig {
            patterns: vec!["rl.*".into()],
            // A slow rate, so no budget comes back during the flood on a slow machine;
            // the summary comes from shutdown. The rate over time is unit-tested with a fake clock.
            rate_limit: Some("3/h burst 3".parse::<RateLimit>().unwrap()),
            ..LoggingConfig::default()
        },
    )
    .unwrap();
    for i in 0..10 {
        bus.publish("rl.flood", json!({"i": i}));
    }
    bus.publish("rl.quiet", json!({}));
    let report = bus.shutdown(Duration::from_secs(10)).await;
    assert!(report.complete, "{report:?}");

    let lines = lines_for("rl.");
    let events: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "event")
        .collect();
    let flood: Vec<_> = events
        .iter()
        .filter(|l| l["fields"]["event_type"] == "rl.flood")
        .map(|l| l["fields"]["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(flood, [r#"{"i":0}"#, r#"{"i":1}"#, r#"{"i":2}"#]);
    assert_eq!(events.len(), 4, "the quiet type has its own budget");
    let summaries: Vec<_> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "events skipped by the rate limit")
        .collect();
    assert_eq!(summaries.len(), 1, "{summaries:#?}");
    assert_eq!(summaries[0]["fields"]["event_type"], "rl.flood");
    assert_eq!(summaries[0]["fields"]["skipped"], 7);
    assert_eq!(summaries[0]["target"], "eventbus::events");
}

#[test]
fn bad_config_names_the_culprit() {
    let err = LoggingSubscriber::new(LoggingConfig {
        patterns: vec![" hook.*".into()],
        ..LoggingConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("\" hook.*\""), "{err}");
    let err = "0/s".parse::<RateLimit>().unwrap_err().to_string();
    assert!(err.contains("at least 1"), "{err}");
    let err = LoggingSubscriber::new(LoggingConfig {
        patterns: vec![],
        ..LoggingConfig::default()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("patterns"), "{err}");
}
