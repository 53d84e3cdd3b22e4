//! `GET /events`: stored events read back from the log, oldest first, paged.
//!
//! `?after=ID` (an id from a reply, a page's `next`, or SSE), `limit=N` (1-10000, default
//! 100), `pattern=P` (an event-type glob), `since=TIME` (RFC 3339, such as
//! `2026-12-02T17:00:00Z`, or an age such as `10m`), `where=EXPR` (a CEL condition over `type`,
//! `id`, `timestamp` and `data`; a page then holds the matching events of the stretch it read,
//! so it may be shorter than `limit`: follow `next`). The answer is
//! `{"events": [{"id", "type", "data", "timestamp"}, ...], "next": ID or null}`; pass `next`
//! back as `after` for the following page. An `after` that is not an id is a 400, one above
//! the newest id is a 400 (it names an event that does not exist yet), and one the retention
//! trimmed away is a 410 saying how many events were lost.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bus_store::{EventLog, LogId, ReadQuery, StoreError, StoredEvent};

pub use crate::event_json::EventJson;
use crate::http::{ApiError, AppState};

/// Largest page `GET /events` returns.
pub const MAX_PAGE: usize = 10_000;
/// The page size when `limit` is left out.
pub const DEFAULT_PAGE: usize = 100;

/// The query of `GET /events`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsQuery {
    /// Start after this position.
    pub after: Option<LogId>,
    /// At most this many events.
    pub limit: usize,
    /// Only types matching this glob.
    pub pattern: Option<String>,
    /// Only events at or after this time.
    pub since: Option<SystemTime>,
}

impl EventsQuery {
    /// Checks the raw query parameters against `log`; the error names the parameter.
    pub fn parse(log: &dyn EventLog, query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let after = query
            .get("after")
            .map(|raw| check_after(log, raw.trim()))
            .transpose()?;
        let limit = match query.get("limit") {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "query parameter limit={raw:?}: expected a whole number from 1 to {MAX_PAGE}"
                    ))
                })?,
        };
        let pattern = parse_pattern(query)?;
        let since = query.get("since").map(|raw| parse_since(raw)).transpose()?;
        Ok(EventsQuery {
            after,
            limit,
            pattern,
            since,
        })
    }
}

/// `pattern=`: an event-type glob, checked by bus-core's rules; empty means none.
pub fn parse_pattern(query: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match query.get("pattern").map(|p| p.trim()) {
        None | Some("") => Ok(None),
        Some(p) => {
            bus_core::Pattern::new(p).map_err(|e| {
                ApiError::bad_request(format!("query parameter pattern={p:?}: {e}"))
            })?;
            Ok(Some(p.to_owned()))
        }
    }
}

/// An `after=` position: an id the log issued, not above the newest one.
pub fn check_after(log: &dyn EventLog, raw: &str) -> Result<LogId, ApiError> {
    let id = log.parse_id(raw).map_err(|_| {
        ApiError::bad_request(format!(
            "after={raw:?} is not an event id; use an id from a POST /events reply, a page's \"next\" or an SSE id"
        ))
    })?;
    if log.last_id().is_none_or(|last| id > last) && id != LogId(0) {
        return Err(ApiError::bad_request(format!(
            "after={raw:?}: no such event yet (the newest id is {})",
            log.last_id()
                .map_or("none: the log is empty".to_owned(), |l| log.format_id(l))
        )));
    }
    Ok(id)
}

/// `since=`: RFC 3339 (`2026-12-02T17:00:00Z`) or an age (`10m`, `2h`, `7d`).
pub fn parse_since(raw: &str) -> Result<SystemTime, ApiError> {
    let raw = raw.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(raw) {
        return Ok(t);
    }
    humantime::parse_duration(raw)
        .ok()
        .and_then(|age: Duration| SystemTime::now().checked_sub(age))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "query parameter since={raw:?}: expected a time such as 2026-12-02T17:00:00Z, or an age such as 10m"
            ))
        })
}

/// Reads one page; a position trimmed away is a 410 naming how many events were lost.
pub async fn read_page(
    log: &dyn EventLog,
    query: &EventsQuery,
) -> Result<bus_store::Page, ApiError> {
    let page = log
        .read(ReadQuery {
            after: query.after,
            since: query.since,
            pattern: query.pattern.clone(),
            limit: query.limit,
        })
        .await
        .map_err(read_failed)?;
    if page.missed > 0 {
        return Err(ApiError::new(
            StatusCode::GONE,
            format!(
                "after={}: {} events after it were trimmed by the retention (CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS/_AGE); the oldest stored id is {}; start again without after=, or after it",
                query.after.map_or(String::new(), |a| log.format_id(a)),
                page.missed,
                log.first_id()
                    .map_or("none".to_owned(), |f| log.format_id(f)),
            ),
        ));
    }
    Ok(page)
}

fn read_failed(e: StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the event log cannot be read now: {e}"),
    )
}

/// One stored event as JSON text: `{"id", "type", "data", "timestamp"}` (and `"priority"`
/// when its publisher gave one), appended to `out`. For many, keep one [`EventJson`].
pub fn event_json(log: &dyn EventLog, event: &StoredEvent, out: &mut String) {
    EventJson::new(log).write(event, out);
}

/// `GET /events`.
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let log = state.ingest.log().as_ref();
    let query = EventsQuery::parse(log, &raw)?;
    let condition = crate::rules::parse_where(&raw)?;
    let page = read_page(log, &query).await?;
    let mut body = String::with_capacity(64 + crate::event_json::json_size(&page.events));
    body.push_str("{\"events\":[");
    // With `where=` a page holds only the matching events of the stretch it read, so it
    // may be shorter than `limit` (even empty) while `next` goes on.
    let matching = page
        .events
        .iter()
        .filter(|e| crate::rules::stored_matches(condition.as_deref(), e));
    let mut writer = EventJson::new(log);
    for (i, event) in matching.enumerate() {
        if i > 0 {
            body.push(',');
        }
        writer.write(event, &mut body);
    }
    body.push_str("],\"next\":");
    match page.next {
        Some(next) => body.push_str(&serde_json::Value::String(log.format_id(next)).to_string()),
        None => body.push_str("null"),
    }
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
