//! `POST /events` bodies: parsing and validating a whole batch, then publishing it.
//!
//! The whole body is validated before anything is published: a batch with one bad event is
//! refused whole (400, naming the event), so a client never has to work out which half of
//! its batch landed.

use std::sync::Arc;

use bus_core::{Event, EventBus, Refusal};
use bus_store::{Admission, DurableBus, EventLog, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use bus_config::DebugSwitch;

/// How the body of `POST /events` is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// One JSON event object, or a JSON array of them.
    Json,
    /// Newline-delimited JSON: one event object per line, blank lines ignored.
    Ndjson,
}

impl BodyFormat {
    /// The format a `Content-Type` header names: NDJSON for `application/x-ndjson` (also
    /// `application/ndjson`, `application/jsonl`, `application/jsonlines`), JSON otherwise.
    pub fn from_content_type(content_type: Option<&str>) -> Self {
        let essence = content_type
            .and_then(|c| c.split(';').next())
            .map(|c| c.trim().to_ascii_lowercase());
        match essence.as_deref() {
            Some(
                "application/x-ndjson"
                | "application/ndjson"
                | "application/jsonl"
                | "application/x-jsonlines"
                | "application/jsonlines",
            ) => BodyFormat::Ndjson,
            _ => BodyFormat::Json,
        }
    }
}

/// One event as a client sends it: `{"type": "hook.pre_tool", "data": {...}}`, optionally
/// with `"priority": "high"` (or `normal`, `low`), which wins over the consumers' rules.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncomingEvent {
    /// The event type; must be non-empty, without wildcards or surrounding whitespace.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The payload; `null` when left out.
    #[serde(default)]
    pub data: Value,
    /// The publisher's priority for this event; `None` leaves it to each consumer's rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<bus_core::Priority>,
}

/// Longest event type accepted, in bytes.
pub const MAX_TYPE_LEN: usize = 1024;

impl IncomingEvent {
    /// Checks the event type; the message says what is wrong with it.
    pub fn check(&self) -> Result<(), String> {
        let t = &self.event_type;
        if t.is_empty() {
            return Err(
                "\"type\" is empty; expected an event type such as \"hook.pre_tool\"".into(),
            );
        }
        if t.trim() != t {
            return Err(format!("\"type\" {t:?} starts or ends with whitespace"));
        }
        if t.contains(['*', '?']) {
            return Err(format!(
                "\"type\" {t:?} contains a wildcard (* or ?): that is a pattern, not an event type"
            ));
        }
        if t.chars().any(char::is_control) {
            return Err(format!("\"type\" {t:?} contains control characters"));
        }
        if t.len() > MAX_TYPE_LEN {
            return Err(format!(
                "\"type\" is {} bytes long; at most {MAX_TYPE_LEN} are accepted",
                t.len()
            ));
        }
        Ok(())
    }
}

/// Parses and validates a whole body; the error says what is wrong and where.
pub fn parse_body(body: &[u8], format: BodyFormat) -> Result<Vec<IncomingEvent>, String> {
    match format {
        BodyFormat::Ndjson => parse_ndjson(body),
        BodyFormat::Json => parse_json(body),
    }
}

fn parse_ndjson(body: &[u8]) -> Result<Vec<IncomingEvent>, String> {
    // One slot per line: a guess from the body's length would reserve millions of slots for
    // one huge event. Blank lines make this a slight over-count, never a large one.
    let lines = body.iter().filter(|b| **b == b'\n').count() + 1;
    let mut events = Vec::with_capacity(lines);
    for (index, line) in body.split(|b| *b == b'\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let event: IncomingEvent = serde_json::from_slice(line).map_err(|e| {
            format!(
                "line {line_no}, column {}: {}",
                e.column(),
                strip_position(&e.to_string())
            )
        })?;
        event.check().map_err(|e| format!("line {line_no}: {e}"))?;
        if crate::bignum::may_hold_huge_integer(&event.data)
            && let Some(pointer) = crate::bignum::find_huge_integer(line)
        {
            return Err(format!(
                "line {line_no}: {}",
                crate::bignum::refusal(&pointer)
            ));
        }
        events.push(event);
    }
    Ok(events)
}

fn parse_json(body: &[u8]) -> Result<Vec<IncomingEvent>, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Err("the body is empty; expected an event {\"type\": ..., \"data\": ...}, a JSON array of them, or NDJSON with Content-Type: application/x-ndjson".into()),
        Some(b'[') => {
            let items: Vec<Value> = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
            if items.iter().any(crate::bignum::may_hold_huge_integer)
                && let Some(pointer) = crate::bignum::find_huge_integer(body)
            {
                let (index, rest) = pointer[1..].split_once('/').unwrap_or((&pointer[1..], ""));
                return Err(format!("event [{index}]: {}", crate::bignum::refusal(&format!("/{rest}"))));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let event: IncomingEvent = serde_json::from_value(item)
                        .map_err(|e| format!("event [{i}]: {e}"))?;
                    event.check().map_err(|e| format!("event [{i}]: {e}"))?;
                    Ok(event)
                })
                .collect()
        }
        Some(b'{') => {
            let event: IncomingEvent = serde_json::from_slice(body).map_err(|e| json_error(&e))?;
            event.check()?;
            if crate::bignum::may_hold_huge_integer(&event.data)
                && let Some(pointer) = crate::bignum::find_huge_integer(body)
            {
                return Err(crate::bignum::refusal(&pointer));
            }
            Ok(vec![event])
        }
        Some(_) => Err("expected an event object {\"type\": ..., \"data\": ...} or a JSON array of them (for NDJSON, send Content-Type: application/x-ndjson)".into()),
    }
}

fn json_error(e: &serde_json::Error) -> String {
    let message = strip_position(&e.to_string()).to_owned();
    let hint = if message.starts_with("trailing characters") {
        " (more than one JSON value: for one event per line send Content-Type: application/x-ndjson, or put the events in a JSON array)"
    } else {
        ""
    };
    format!("line {}, column {}: {message}{hint}", e.line(), e.column())
}

/// serde_json appends " at line L column C"; the caller reports the position its own way.
fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// What happened to a published batch: the answer of `POST /events`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReply {
    /// Events the bus accepted.
    pub accepted: usize,
    /// Events the bus's filters refused.
    pub filtered: usize,
    /// Events refused because the bus is disabled or shutting down.
    pub refused: usize,
    /// The log ids of the accepted events, in body order: opaque text (decimal with the
    /// embedded store), accepted back by `GET /events?after=` and SSE `Last-Event-ID`.
    pub ids: Vec<String>,
}

/// Stores batches in the event log, then publishes them to the bus with the log's ids
/// (through a [`DurableBus`]), and reports the id of every accepted event.
///
/// While debug output is on, it also logs every accepted event (target `eventbus::debug`).
#[derive(Clone, Debug)]
pub struct Ingest {
    durable: DurableBus,
    debug: DebugSwitch,
}

impl Ingest {
    /// The ingest of `bus` through `log`; `debug` turns the per-event debug log on and off
    /// at runtime. With `may_block` (consumer queues that block when full), publishing waits
    /// for room asynchronously instead of blocking a runtime thread.
    pub fn new(
        bus: &EventBus,
        log: Arc<dyn EventLog>,
        debug: DebugSwitch,
        may_block: bool,
    ) -> Self {
        Ingest {
            durable: DurableBus::new(bus, log).wait_for_room(may_block),
            debug,
        }
    }

    /// For a log other daemons append to as well (Redis): publishing only appends, and the
    /// feed started with [`feed`](Self::feed) dispatches every event of the log to the bus, in
    /// log order (see [`DurableBus::shared`]).
    pub fn shared(mut self) -> Self {
        self.durable = self.durable.shared();
        self
    }

    /// Starts the feed of a [shared](Self::shared) log, under the cursor `name`.
    pub async fn feed(&self, name: &str) -> Result<bus_store::LogFeed, StoreError> {
        self.durable.feed(name).await
    }

    /// The bus events are published to.
    pub fn bus(&self) -> &EventBus {
        self.durable.bus()
    }

    /// The event log events are stored in.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        self.durable.log()
    }

    /// Publishes an event that is already in the log (a replay) to the live consumers,
    /// without storing it again.
    pub async fn republish(&self, event: Event) -> Result<Event, Refusal> {
        self.durable.redispatch(event).await
    }

    /// Stores every event the bus admits (enabled, allowed by the filters) in one append,
    /// waits for the commit, then publishes them in order with the log's ids and timestamps.
    ///
    /// Nothing is published unless it was committed first: a store error (disk full, say)
    /// fails the whole batch and publishes nothing of it. A committed event counts as
    /// accepted even if the bus refused it at dispatch (its filters changed meanwhile): it
    /// is in the log.
    pub async fn ingest(&self, events: Vec<IncomingEvent>) -> Result<IngestReply, StoreError> {
        let batch = events
            .into_iter()
            .map(|e| (e.event_type, e.data, e.priority))
            .collect();
        let outcome = self.durable.publish_batch_with_priorities(batch).await?;
        let mut reply = IngestReply {
            ids: Vec::with_capacity(outcome.len()),
            ..IngestReply::default()
        };
        let debug = self.debug.is_on();
        for admission in outcome {
            match admission {
                Admission::Stored { id, event } => {
                    reply.accepted += 1;
                    reply.ids.push(self.log().format_id(id));
                    if debug && let Some(event) = event {
                        tracing::info!(target: "eventbus::debug", id = event.id(), event_type = event.event_type(), data = %event.data(), "event accepted");
                    }
                }
                Admission::Refused(Refusal::Filtered) => reply.filtered += 1,
                // Disabled or shut down (payloads are validated before the batch gets here).
                Admission::Refused(_) => reply.refused += 1,
            }
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn content_types() {
        assert_eq!(
            BodyFormat::from_content_type(Some("application/x-ndjson")),
            BodyFormat::Ndjson
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("Application/X-NDJSON; charset=utf-8")),
            BodyFormat::Ndjson
        );
        assert_eq!(
            BodyFormat::from_content_type(Some("application/json")),
            BodyFormat::Json
        );
        assert_eq!(BodyFormat::from_content_type(None), BodyFormat::Json);
    }

    #[test]
    fn ndjson_reserves_by_lines_not_by_bytes() {
        let huge = format!(
            "{{\"type\":\"a.big\",\"data\":\"{}\"}}\n",
            "x".repeat(1 << 20)
        );
        let events = parse_body(huge.as_bytes(), BodyFormat::Ndjson).unwrap();
        assert_eq!(events.len(), 1);
        assert!(events.capacity() <= 2, "{} slots", events.capacity());
    }

    #[test]
    fn one_object_or_an_array() {
        let one = parse_body(br#"{"type":"a.b","data":{"x":1}}"#, BodyFormat::Json).unwrap();
        assert_eq!(one[0].event_type, "a.b");
        assert_eq!(one[0].data, json!({"x": 1}));
        let many =
            parse_body(br#"[{"type":"a"},{"type":"b","data":2}]"#, BodyFormat::Json).unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].data, Value::Null);
    }

    #[test]
    fn ndjson_errors_name_the_line() {
        let body = b"{\"type\":\"a\"}\n\n{\"type\":\"b\"}\r\n{\"data\":1}\n";
        let err = parse_body(body, BodyFormat::Ndjson).unwrap_err();
        assert!(err.starts_with("line 4"), "{err}");
        assert!(err.contains("missing field `type`"), "{err}");
        let err =
            parse_body(b"{\"type\":\"a\"}\n{\"type\": nope}", BodyFormat::Ndjson).unwrap_err();
        assert!(err.starts_with("line 2, column"), "{err}");
        let ok = parse_body(
            b"{\"type\":\"a\"}\n\n{\"type\":\"b\"}\r\n",
            BodyFormat::Ndjson,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[test]
    fn bad_types_are_refused_with_the_reason() {
        for (body, needle) in [
            (r#"{"type":""}"#, "empty"),
            (r#"{"type":" a"}"#, "whitespace"),
            (r#"{"type":"hook.*"}"#, "wildcard"),
            (r#"{"type":5}"#, "invalid type"),
            (r#"{"type":"a","payload":1}"#, "unknown field `payload`"),
            (r#"[{"type":"a"},{"type":""}]"#, "event [1]"),
            ("5", "expected an event object"),
            ("", "body is empty"),
            ("{\"type\":", "line 1, column"),
        ] {
            let err = parse_body(body.as_bytes(), BodyFormat::Json).unwrap_err();
            assert!(err.contains(needle), "{body}: {err}");
        }
    }

    #[tokio::test]
    async fn ingest_stores_then_publishes_with_the_logs_ids() {
        let bus = EventBus::builder().filters(["keep.*"]).build().unwrap();
        let log: Arc<dyn EventLog> = Arc::new(bus_store::MemoryLog::default());
        let p = Ingest::new(&bus, log.clone(), DebugSwitch::default(), false);
        let events = parse_body(
            b"{\"type\":\"keep.a\",\"data\":1}\n{\"type\":\"drop\"}\n{\"type\":\"keep.b\"}",
            BodyFormat::Ndjson,
        )
        .unwrap();
        let reply = p.ingest(events.clone()).await.unwrap();
        assert_eq!((reply.accepted, reply.filtered, reply.refused), (2, 1, 0));
        assert_eq!(bus.stats().events_filtered, 1, "counted once");
        let recent = bus.recent_events(10);
        let bus_ids: Vec<String> = recent.iter().map(|e| e.id().to_string()).collect();
        assert_eq!(reply.ids, bus_ids, "the bus carries the log's ids");
        let page = log.read(bus_store::ReadQuery::default()).await.unwrap();
        let stored: Vec<String> = page.events.iter().map(|e| log.format_id(e.id)).collect();
        assert_eq!(reply.ids, stored);
        assert_eq!(page.events[0].data.as_str(), "1");
        bus.set_enabled(false);
        let reply = p.ingest(events).await.unwrap();
        assert_eq!((reply.accepted, reply.filtered, reply.refused), (0, 0, 3));
        assert_eq!(log.stats().stored, 2, "nothing refused is stored");
    }
}
