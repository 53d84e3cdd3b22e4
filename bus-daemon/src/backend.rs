//! The event log's backend as probes and scrapers see it: `/healthz` gains `"store"` (and says
//! `"degraded"` while a Redis log reconnects: publishes answer 503 then, in-process consumers
//! get nothing new), `/stats` `"store"` gains `"health"`, and `/metrics` gains the backend's
//! series (connection, reconnects, errors) and the lag of every reader of the log (entries
//! behind the stream's head: the bus feed, the durable consumers, a consumer group's
//! unacknowledged events).

use std::fmt::Write as _;
use std::sync::Arc;

use bus_core::Attached;
use bus_store::{BackendHealth, EventLog};
use serde_json::{Value, json};

/// The health as JSON: `{"backend", "state", "last_error", "last_error_at", "reconnects",
/// "errors"}`.
pub fn health_json(backend: &str, health: &BackendHealth) -> Value {
    json!({
        "backend": backend,
        "state": health.state(),
        "last_error": health.last_error,
        "last_error_at": health
            .last_error_at
            .map(|t| humantime::format_rfc3339_millis(t).to_string()),
        "reconnects": health.reconnects,
        "errors": health.errors,
    })
}

/// The body of `GET /healthz`: `{"status": "ok"}`, with `"store"` for a networked backend
/// (`"status": "degraded"` while it is not connected).
pub fn healthz(log: &dyn EventLog) -> Value {
    match log.health() {
        None => json!({ "status": "ok" }),
        Some(health) => json!({
            "status": if health.connected { "ok" } else { "degraded" },
            "store": health_json(&log.stats().backend, &health),
        }),
    }
}

/// One gauge or counter family with its help and type lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str, rows: &[(String, f64)]) {
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in rows {
        let _ = writeln!(out, "{name}{labels} {value}");
    }
}

/// The series `/metrics` adds for the log: `eventbus_store_connected`,
/// `eventbus_store_reconnects_total`, `eventbus_store_errors_total` (networked backends), and
/// `eventbus_log_lag{reader}`, entries behind the log's head per reader (`feed`, each durable
/// consumer; for a consumer group, its handed and unacknowledged events).
pub fn metrics_text(log: &dyn EventLog, consumers: &[Arc<dyn Attached>]) -> String {
    let mut out = String::new();
    if let Some(health) = log.health() {
        let backend = log.stats().backend;
        let label = format!("{{backend=\"{backend}\"}}");
        family(
            &mut out,
            "eventbus_store_connected",
            "gauge",
            "1 while the event log's server answers, 0 while it reconnects.",
            &[(label.clone(), if health.connected { 1.0 } else { 0.0 })],
        );
        family(
            &mut out,
            "eventbus_store_reconnects_total",
            "counter",
            "Times the event log's connection came back after failing.",
            &[(label.clone(), health.reconnects as f64)],
        );
        family(
            &mut out,
            "eventbus_store_errors_total",
            "counter",
            "Calls to the event log's server that failed.",
            &[(label, health.errors as f64)],
        );
    }
    let mut lag = Vec::new();
    for (key, figures) in consumers.iter().filter_map(|c| c.stats()) {
        match key {
            "feed" => {
                if let Some(n) = figures["lag"].as_u64() {
                    lag.push(("{reader=\"feed\"}".to_owned(), n as f64));
                }
            }
            "durable" => {
                for (name, row) in figures.as_object().into_iter().flatten() {
                    if let Some(n) = row["lag"].as_u64() {
                        lag.push((format!("{{reader=\"{}\"}}", escape(name)), n as f64));
                    }
                }
            }
            "group" => {
                if let (Some(name), Some(n)) = (
                    figures["consumer"].as_str(),
                    figures["outstanding"].as_u64(),
                ) {
                    let group = figures["group"].as_str().unwrap_or("");
                    lag.push((
                        format!(
                            "{{reader=\"{}\",group=\"{}\"}}",
                            escape(name),
                            escape(group)
                        ),
                        n as f64,
                    ));
                }
            }
            _ => {}
        }
    }
    family(
        &mut out,
        "eventbus_log_lag",
        "gauge",
        "Entries of the event log a reader has not processed yet (behind the head; for a consumer group, handed over and not acknowledged).",
        &lag,
    );
    out
}

/// A label value with `\`, `"` and line breaks escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
