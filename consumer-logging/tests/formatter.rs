//! The formatter helper writes text or JSON lines at the configured level.

use consumer_logging::{LogFormat, formatter};
use serde_json::Value;

mod common;

use common::Buffer;

fn capture(format: LogFormat, debug: bool) -> String {
    let buffer = Buffer::default();
    tracing::subscriber::with_default(formatter(format, debug, buffer.clone()), || {
        tracing::info!(target: "eventbus::events", event_id = 7u64, "visible");
        tracing::debug!(target: "eventbus::events", "debug line");
    });
    buffer.text()
}

#[test]
fn json_lines_carry_target_level_and_fields() {
    let out = capture(LogFormat::Json, false);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "INFO hides debug: {out}");
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(lines[0]["target"], "eventbus::events");
    assert_eq!(lines[0]["fields"]["event_id"], 7);
    assert_eq!(lines[0]["fields"]["message"], "visible");
}

#[test]
fn debug_flag_shows_debug_lines() {
    let out = capture(LogFormat::Json, true);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("\"DEBUG\""), "{out}");
}

#[test]
fn text_lines_are_plain_text() {
    let out = capture(LogFormat::Text, false);
    assert_eq!(out.lines().count(), 1, "{out}");
    let line = out.lines().next().unwrap();
    assert!(
        line.contains(" INFO eventbus::events: visible event_id=7"),
        "{line}"
    );
    assert!(
        !line.contains('\u{1b}'),
        "no colour codes when not a terminal: {line:?}"
    );
    assert!(serde_json::from_str::<Value>(line).is_err());
}
