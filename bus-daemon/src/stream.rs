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
//! stream reads the log at its own pace. While the log's server is away (Redis restarting) a
//! stream waits for it, with keep-alives, and goes on from its position once it is back.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bus_store::{EventLog, LogId, ReadQuery, StoreError, StoredEvent};
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

use crate::http::{ApiError, AppState};
use crate::read::{EventJson, check_after, parse_pattern};

/// Events read from the log per wake-up; they leave as one chunk of the body, which is what
/// lets one client read a backlog at hundreds of thousands of events per second (a body frame
/// per event costs a write each).
const BATCH: usize = 2000;
/// How often a keep-alive comment is sent on an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often a stream reads again while the log's server is away.
const LOG_RETRY: Duration = Duration::from_millis(250);
/// The keep-alive: an SSE comment line, which `EventSource` ignores.
const KEEP_ALIVE_COMMENT: &[u8] = b":\n\n";

/// How many streams are open now: `GET /stats` shows it as `"sse": {"open": N}`.
#[derive(Clone, Debug, Default)]
pub(crate) struct OpenStreams(Arc<AtomicUsize>);

impl OpenStreams {
    /// Streams open now.
    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    fn enter(&self) -> OpenStream {
        self.0.fetch_add(1, Ordering::Relaxed);
        OpenStream(self.0.clone())
    }
}

/// One open stream, counted until the client goes (axum drops the stream then).
struct OpenStream(Arc<AtomicUsize>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where one stream is, and what wakes it.
struct Cursor {
    _open: OpenStream,
    log: Arc<dyn EventLog>,
    after: Option<LogId>,
    pattern: Option<String>,
    condition: Option<Arc<bus_cel::CelCondition>>,
    appends: watch::Receiver<Option<LogId>>,
    closing: watch::Receiver<bool>,
    done: bool,
    /// The last read found the log unavailable (its server away).
    waiting_for_log: bool,
    /// Reads retried since the stream last sent something.
    idle_retries: u32,
}

impl Cursor {
    /// The next chunk of the body: the SSE text of what the log has after the position, a
    /// keep-alive comment after an idle [`KEEP_ALIVE`], or a final `event: error`. `None`
    /// ends the stream (daemon closing, the log dropped, or after that final error).
    async fn next_chunk(&mut self) -> Option<Bytes> {
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
                // A server that went away (Redis restarting): the stream waits for it, so a
                // client resumes from its position with nothing lost, and keeps the
                // connection alive meanwhile.
                Err(e @ StoreError::Unavailable { .. }) => {
                    if !self.waiting_for_log {
                        self.waiting_for_log = true;
                        tracing::debug!(error = %e, "an event stream waits for the event log");
                    }
                    tokio::select! {
                        _ = self.closing.wait_for(|closing| *closing) => return None,
                        () = tokio::time::sleep(LOG_RETRY) => {}
                    }
                    self.idle_retries += 1;
                    if self.idle_retries * LOG_RETRY >= KEEP_ALIVE {
                        self.idle_retries = 0;
                        return Some(Bytes::from_static(KEEP_ALIVE_COMMENT));
                    }
                    continue;
                }
                Err(e) => {
                    return Some(self.final_error(&format!("the event log cannot be read: {e}")));
                }
            };
            self.waiting_for_log = false;
            self.idle_retries = 0;
            if page.missed > 0 {
                let message = format!(
                    "this stream fell behind the retention: {} events after id {} were trimmed before it read them; reconnect without Last-Event-ID, or read the oldest stored ones with GET /events",
                    page.missed,
                    self.after.map_or("0".to_owned(), |a| self.log.format_id(a)),
                );
                return Some(self.final_error(&message));
            }
            // A page can come back empty while the scan went on (a rare pattern): move on.
            let scanned_to = page.next.or(page.events.last().map(|e| e.id));
            let matching: Vec<_> = page
                .events
                .iter()
                .filter(|e| crate::rules::stored_matches(self.condition.as_deref(), e.borrowed()))
                .collect();
            if !page.events.is_empty() && matching.is_empty() {
                self.after = scanned_to;
                continue;
            }
            if !page.events.is_empty() {
                self.after = scanned_to;
                let size: usize = matching.iter().map(|e| e.data.as_str().len() + 160).sum();
                let mut text = String::with_capacity(size);
                let mut writer = EventJson::new();
                for event in matching {
                    sse_text(&mut writer, self.log.as_ref(), event, &mut text);
                }
                return Some(Bytes::from(text));
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
                _ = tokio::time::sleep(KEEP_ALIVE) => {
                    return Some(Bytes::from_static(KEEP_ALIVE_COMMENT));
                }
            }
        }
    }

    fn final_error(&mut self, message: &str) -> Bytes {
        self.done = true;
        let mut text = String::from("event: error\n");
        data_lines(message, &mut text);
        Bytes::from(text)
    }
}

/// One event as SSE: `id:`, `event:`, `data:` (the event's JSON) and the blank line.
fn sse_text(writer: &mut EventJson, log: &dyn EventLog, event: &StoredEvent, out: &mut String) {
    out.push_str("id: ");
    log.write_id(event.id, out);
    out.push_str("\nevent: ");
    out.push_str(&event.event_type);
    out.push_str("\ndata: ");
    let start = out.len();
    writer.write(log, event.borrowed(), out);
    // Compact JSON has no raw line breaks; should one ever appear, each line gets its own
    // `data:` field so the client's parser reassembles the text unchanged.
    if out[start..].contains('\n') {
        let json = out.split_off(start);
        out.truncate(start - "data: ".len());
        data_lines(&json, out);
    } else {
        out.push_str("\n\n");
    }
}

/// `text` as `data:` lines, then the blank line that ends the event.
fn data_lines(text: &str, out: &mut String) {
    for line in text.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
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
        _open: state.streams.enter(),
        condition,
        appends: log.subscribe_appends(),
        log,
        after,
        pattern,
        closing: state.closing.clone(),
        done: false,
        waiting_for_log: false,
        idle_retries: 0,
    };
    let mut response = Body::from_stream(chunks(cursor)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise hold events back to fill their buffers.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn chunks(cursor: Cursor) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
    stream::unfold(cursor, |mut cursor| async move {
        let chunk = cursor.next_chunk().await?;
        Some((Ok(chunk), cursor))
    })
}
