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
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bus_store::{EventLog, LogId, ReadQuery, Render, StoreError, StoredEvent};

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
    let page = log.read(query.to_read()).await.map_err(read_failed)?;
    check_missed(log, query, page.missed)?;
    Ok(page)
}

impl EventsQuery {
    /// The store's query for this page.
    fn to_read(&self) -> ReadQuery {
        ReadQuery {
            after: self.after,
            since: self.since,
            pattern: self.pattern.clone(),
            limit: self.limit,
        }
    }
}

/// A 410 when `missed` events after the query's `after` were trimmed away.
fn check_missed(log: &dyn EventLog, query: &EventsQuery, missed: u64) -> Result<(), ApiError> {
    if missed == 0 {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::GONE,
        format!(
            "after={}: {missed} events after it were trimmed by the retention (CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS/_AGE); the oldest stored id is {}; start again without after=, or after it",
            query.after.map_or(String::new(), |a| log.format_id(a)),
            log.first_id()
                .map_or("none".to_owned(), |f| log.format_id(f)),
        ),
    ))
}

fn read_failed(e: StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the event log cannot be read now: {e}"),
    )
}

/// The `next` of a `GET /events` reply, read from the end of its text without parsing its
/// events, so a client can ask for the following page while it still parses this one. The
/// daemon writes `next` last; `None` when the text does not end that way (parse it whole
/// to learn why). A string cannot hold an unescaped `"`, so the last `,"next":` is the key.
pub fn page_next(text: &str) -> Option<Option<String>> {
    let body = text.trim_end().strip_suffix('}')?;
    let at = body.rfind(",\"next\":")?;
    serde_json::from_str(&body[at + ",\"next\":".len()..]).ok()
}

/// One stored event as JSON text: `{"id", "type", "data", "timestamp"}` (and `"priority"`
/// when its publisher gave one), appended to `out`. For many, keep one [`EventJson`].
pub fn event_json(log: &dyn EventLog, event: &StoredEvent, out: &mut String) {
    EventJson::new().write(log, event.borrowed(), out);
}

/// `GET /events`: the page is rendered by the store as it reads it (no event is built).
pub(crate) async fn list_events(
    State(state): State<AppState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let log = Arc::clone(state.ingest.log());
    let query = EventsQuery::parse(log.as_ref(), &raw)?;
    let condition = crate::rules::parse_where(&raw)?;
    let mut body = String::with_capacity(64 + query.limit.min(MAX_PAGE) * 128);
    body.push_str("{\"events\":[");
    let opened = body.len();
    let mut writer = EventJson::new();
    let ids = Arc::clone(&log);
    // With `where=` a page holds only the matching events of the stretch it read, so it
    // may be shorter than `limit` (even empty) while `next` goes on.
    let render: Render = Box::new(move |event, out: &mut String| {
        if crate::rules::stored_matches(condition.as_deref(), event) {
            if out.len() > opened {
                out.push(',');
            }
            writer.write(ids.as_ref(), event, out);
        }
    });
    let page = log
        .read_rendered(query.to_read(), body, render)
        .await
        .map_err(read_failed)?;
    check_missed(log.as_ref(), &query, page.missed)?;
    let mut body = page.text;
    body.push_str("],\"next\":");
    match page.next {
        Some(next) => crate::event_json::json_string(&log.format_id(next), &mut body),
        None => body.push_str("null"),
    }
    body.push('}');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::page_next;

    #[test]
    fn a_pages_next_is_read_from_its_end() {
        let page =
            r#"{"events":[{"id":"1","type":"t","data":{"next":"9",",\"next\":":"x"}}],"next":"1"}"#;
        assert_eq!(page_next(page), Some(Some("1".to_owned())));
        assert_eq!(page_next(r#"{"events":[],"next":null}"#), Some(None));
        assert_eq!(
            page_next(r#"{"events":[],"next":"0-1\",\"next\":\"2"}"#),
            Some(Some(r#"0-1","next":"2"#.to_owned()))
        );
        for not_a_page in [
            "",
            "{}",
            r#"{"events":[]}"#,
            r#"{"error":"x"}"#,
            r#"{"next":5}"#,
        ] {
            assert_eq!(page_next(not_a_page), None, "{not_a_page}");
        }
    }
}
