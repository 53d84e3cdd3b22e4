//! The daemon's side of the content rules: whole-body schema checks for `POST /events`
//! (422), `?where=` conditions on reads, and the SIGHUP schema reload.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use bus_cel::CelCondition;
use bus_config::rules::Rules;
use bus_core::{Condition, EventBus, EventView, Invalid};
use bus_store::EventRef;
use serde_json::{Value, json};

use crate::http::ApiError;
use crate::ingest::{BodyFormat, IncomingEvent};

/// `where=`: a CEL condition over `type`, `id`, `timestamp` and `data`; a syntax error is a
/// 400 naming the parameter, the column and what was expected.
pub(crate) fn parse_where(
    query: &HashMap<String, String>,
) -> Result<Option<Arc<CelCondition>>, ApiError> {
    match query.get("where").map(|w| w.trim()) {
        None | Some("") => Ok(None),
        Some(source) => CelCondition::compile(source, "query parameter where")
            .map(|c| Some(Arc::new(c)))
            .map_err(|e| ApiError::bad_request(e.to_string())),
    }
}

/// Whether a stored event passes `condition` (none: every event). A payload the log holds
/// is JSON it wrote itself; one that does not parse fails the condition like a missing field.
pub(crate) fn stored_matches(condition: Option<&CelCondition>, event: EventRef<'_>) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    let data = serde_json::from_str(event.data).unwrap_or(Value::Null);
    condition.matches(EventView {
        event_type: event.event_type,
        id: event.id.0,
        timestamp: event.timestamp,
        data: &data,
    })
}

/// Checks every event of a body against the bus's validator; with any invalid, a 422 that
/// names each one (its index in a JSON array, or its NDJSON line), with every broken rule.
/// Called before anything of the body is stored or published.
pub(crate) fn refuse_invalid(
    bus: &EventBus,
    events: &[IncomingEvent],
    format: BodyFormat,
    body: &[u8],
) -> Result<(), ApiError> {
    let invalid: Vec<(usize, Invalid)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| bus.validate(&e.event_type, &e.data).err().map(|v| (i, v)))
        .collect();
    if invalid.is_empty() {
        return Ok(());
    }
    let lines = (format == BodyFormat::Ndjson).then(|| event_lines(body));
    let single =
        format == BodyFormat::Json && body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut details = Vec::with_capacity(invalid.len());
    let mut summary = Vec::with_capacity(invalid.len());
    for (i, why) in &invalid {
        let (label, mut entry) = match &lines {
            Some(lines) => {
                let line = lines.get(*i).copied().unwrap_or(i + 1);
                (format!("line {line}"), json!({ "line": line }))
            }
            None if single => ("the event".to_owned(), json!({ "index": 0 })),
            None => (format!("event [{i}]"), json!({ "index": i })),
        };
        entry["type"] = json!(why.event_type);
        entry["violations"] = json!(why.violations);
        let rules: Vec<String> = why.violations.iter().map(ToString::to_string).collect();
        summary.push(format!(
            "{label} ({}): {}",
            why.event_type,
            rules.join("; ")
        ));
        details.push(entry);
    }
    let count = invalid.len();
    let message = format!(
        "{count} invalid event{} (CLAUDE_MPM_EVENTBUS_SCHEMAS); nothing of this body was published: {}",
        if count == 1 { "" } else { "s" },
        summary.join(" | ")
    );
    Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message).with("invalid", json!(details)))
}

/// The 1-based line of each event of an NDJSON body, in order (blank lines hold none).
fn event_lines(body: &[u8]) -> Vec<usize> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Reloads the schema file on every SIGHUP, logging the outcome; a bad file keeps the
/// schemas in force. Installed only when a schema file is configured (otherwise SIGHUP
/// keeps its default effect).
pub(crate) fn reload_on_hangup(bus: &EventBus, rules: Option<&Arc<Rules>>) {
    #[cfg(unix)]
    {
        let Some(rules) = rules.filter(|r| r.validator().is_some()).cloned() else {
            return;
        };
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangup) = signal(SignalKind::hangup()) else {
            tracing::warn!(
                "cannot listen for SIGHUP: the schema file reloads only by PATCH /config"
            );
            return;
        };
        let bus = bus.downgrade();
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let Some(bus) = bus.upgrade() else { return };
                match rules.reload(&bus) {
                    Ok(now) => tracing::info!(schemas = %now, "SIGHUP: schema file reloaded"),
                    Err(e) => tracing::error!("SIGHUP: schema file not reloaded: {e}"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    {
        let _ = (bus, rules);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndjson_lines_skip_blank_ones() {
        assert_eq!(event_lines(b"{}\n\n  \n{}\r\n{}"), [1, 4, 5]);
    }
}
