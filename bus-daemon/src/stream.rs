//! `GET /events/stream`: Server-Sent Events from the log, first what is stored after the
//! client's position, then live, with no gap and no duplicate at the seam (both are the same
//! read of the same log, woken by each commit).
//!
//! Each event is `id: <id>`, `event: <type>`, `data: <the event as JSON>`. The position is
//! `Last-Event-ID` (what a reconnecting `EventSource` sends), else `?after=ID`, else the end
//! of the log (only new events). `?pattern=P` filters by type, `?where=EXPR` by content (CEL
//! over `type`, `id`, `timestamp`, `data`). A comment line every 15 s keeps
//! proxies and clients from timing out. A client too slow for the retention (its position is
//! trimmed before it reads it) gets a final `event: error` saying how many events it missed,
//! and the stream ends; a slow client never holds up the bus or anyone else, since each
//! stream reads the log at its own pace.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bus_store::{EventLog, LogId, ReadQuery};
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::watch;

use crate::http::{ApiError, AppState};
use crate::read::{check_after, event_json, parse_pattern};

/// Events read from the log per wake-up.
const BATCH: usize = 1000;
/// How often a keep-alive comment is sent on an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where one stream is, and what wakes it.
struct Cursor {
    log: Arc<dyn EventLog>,
    after: Option<LogId>,
    pattern: Option<String>,
    condition: Option<Arc<bus_cel::CelCondition>>,
    appends: watch::Receiver<Option<LogId>>,
    closing: watch::Receiver<bool>,
    done: bool,
}

impl Cursor {
    /// The next batch of SSE events: what the log has after the position, waiting for a
    /// commit when there is nothing yet. `None` ends the stream (daemon closing, or the
    /// client fell behind the retention).
    async fn next_batch(&mut self) -> Option<Vec<SseEvent>> {
        if self.done {
            return None;
        }
        loop {
            // Mark the current commit as seen before reading, so a commit that lands after
            // the read wakes `changed()` below: nothing slips through between the two.
            self.appends.borrow_and_update();
            let page = match self
                .log
                .read(ReadQuery {
                    after: self.after,
                    since: None,
                    pattern: self.pattern.clone(),
                    limit: BATCH,
                })
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    self.done = true;
                    return Some(vec![final_error(format!(
                        "the event log cannot be read: {e}"
                    ))]);
                }
            };
            if page.missed > 0 {
                self.done = true;
                return Some(vec![final_error(format!(
                    "this stream fell behind the retention: {} events after id {} were trimmed before it read them; reconnect without Last-Event-ID, or read the oldest stored ones with GET /events",
                    page.missed,
                    self.after.map_or("0".to_owned(), |a| self.log.format_id(a)),
                ))]);
            }
            // A page can come back empty while the scan went on (a rare pattern): move on.
            let scanned_to = page.next.or(page.events.last().map(|e| e.id));
            let matching: Vec<_> = page
                .events
                .iter()
                .filter(|e| crate::rules::stored_matches(self.condition.as_deref(), e))
                .collect();
            if !page.events.is_empty() && matching.is_empty() {
                self.after = scanned_to;
                continue;
            }
            if !page.events.is_empty() {
                self.after = scanned_to;
                let mut out = Vec::with_capacity(matching.len());
                for event in matching {
                    let mut json = String::with_capacity(event.data.as_str().len() + 96);
                    event_json(self.log.as_ref(), event, &mut json);
                    out.push(
                        SseEvent::default()
                            .id(self.log.format_id(event.id))
                            .event(&event.event_type)
                            .data(json),
                    );
                }
                return Some(out);
            }
            if page.next.is_some() {
                self.after = page.next;
                continue;
            }
            tokio::select! {
                changed = self.appends.changed() => {
                    if changed.is_err() {
                        return None; // the log was dropped
                    }
                }
                _ = self.closing.wait_for(|closing| *closing) => return None,
            }
        }
    }
}

fn final_error(message: String) -> SseEvent {
    SseEvent::default().event("error").data(message)
}

/// `GET /events/stream`.
pub(crate) async fn stream_events(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let log = state.ingest.log().clone();
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let after = match resume.or(query.get("after").map(|a| a.trim())) {
        Some(raw) => Some(check_after(log.as_ref(), raw)?),
        // Only new events: start at the current end of the log.
        None => Some(log.last_id().unwrap_or(LogId(0))),
    };
    let pattern = parse_pattern(&query)?;
    let condition = crate::rules::parse_where(&query)?;
    let cursor = Cursor {
        condition,
        appends: log.subscribe_appends(),
        log,
        after,
        pattern,
        closing: state.closing.clone(),
        done: false,
    };
    Ok(Sse::new(events(cursor))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

fn events(cursor: Cursor) -> impl Stream<Item = Result<SseEvent, Infallible>> + Send {
    stream::unfold(cursor, |mut cursor| async move {
        let batch = cursor.next_batch().await?;
        Some((stream::iter(batch.into_iter().map(Ok)), cursor))
    })
    .flatten()
}
