//! The JSON object the dashboard expects for one bus event (see
//! `docs/reference/original-behaviour.md`), plus the bus event id for de-duplication.

use bus_core::Event;
use serde_json::{Map, Value};

/// The value of the payload's `"source"` key.
pub const SOURCE: &str = "event_bus";

/// The fields the claude-mpm monitor reads from the top level of what it receives (its
/// `claude_event` handler copies them into what it broadcasts: `session_id` names the
/// dashboard's stream, `correlation_id` pairs a pre_tool with its post_tool, `cwd` names the
/// project). [`wire_payload`] lifts them out of `data`; each is given with the other spellings
/// hooks use for it, tried in order after its own name.
pub const LIFTED_FIELDS: [(&str, &[&str]); 3] = [
    ("session_id", &["sessionId"]),
    ("cwd", &[]),
    ("correlation_id", &[]),
];

/// Builds the payload emitted for `event`:
/// `{"event", "type", "subtype", "timestamp", "data", "source", "event_id"}`, plus
/// `session_id`, `cwd` and `correlation_id` when `data` has them.
///
/// `type` is the event type up to the first `.`, `subtype` the rest (`"generic"` when there is
/// no `.`); `timestamp` is `data.timestamp` when `data` is an object that has one, else the
/// time the bus accepted the event (RFC 3339, UTC). `data` may be any JSON value. The first six
/// keys are the original's; `event_id` is the bus id, the same on every resend, so a receiver
/// can drop duplicates.
///
/// When `data` is an object with a non-null `session_id` (or, failing that, `sessionId`, the
/// hooks' spelling), `cwd` or `correlation_id`, that value is also put at the top level under
/// the snake-case name (see [`LIFTED_FIELDS`]): the claude-mpm monitor reads them there and
/// nowhere else. `data` itself is relayed unchanged.
///
/// An event republished by `eventbus replay` carries `"replay": true`, so a dashboard can
/// tell it from a new one (its `event_id` is the original's).
pub fn wire_payload(event: &Event, event_name: &str) -> Value {
    let event_type = event.event_type();
    let (kind, subtype) = event_type
        .split_once('.')
        .unwrap_or((event_type, "generic"));
    let timestamp = match event.data() {
        Value::Object(fields) if fields.contains_key("timestamp") => fields["timestamp"].clone(),
        _ => Value::String(humantime::format_rfc3339_micros(event.timestamp()).to_string()),
    };
    let mut payload = Map::with_capacity(7 + LIFTED_FIELDS.len());
    payload.insert("event".into(), event_name.into());
    payload.insert("type".into(), kind.into());
    payload.insert("subtype".into(), subtype.into());
    payload.insert("timestamp".into(), timestamp);
    payload.insert("data".into(), event.data().clone());
    payload.insert("source".into(), SOURCE.into());
    payload.insert("event_id".into(), event.id().into());
    if event.is_replay() {
        payload.insert("replay".into(), true.into());
    }
    if let Value::Object(fields) = event.data() {
        for (name, other_spellings) in LIFTED_FIELDS {
            let found = std::iter::once(&name)
                .chain(other_spellings)
                .find_map(|key| fields.get(*key).filter(|value| !value.is_null()));
            if let Some(value) = found {
                payload.insert(name.into(), value.clone());
            }
        }
    }
    Value::Object(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replays_are_marked_and_new_events_are_not() {
        let event = Event::new(7, "hook.stop", json!({}));
        assert!(wire_payload(&event, "claude_event").get("replay").is_none());
        let p = wire_payload(&event.into_replay(), "claude_event");
        assert_eq!(
            (p["replay"].clone(), p["event_id"].clone()),
            (json!(true), json!(7))
        );
    }

    #[test]
    fn splits_the_type_at_the_first_dot() {
        let p = wire_payload(&Event::new(1, "hook.pre_tool.x", json!({})), "claude_event");
        assert_eq!(p["type"], "hook");
        assert_eq!(p["subtype"], "pre_tool.x");
        let p = wire_payload(&Event::new(2, "startup", json!({})), "claude_event");
        assert_eq!(p["type"], "startup");
        assert_eq!(p["subtype"], "generic");
        let p = wire_payload(&Event::new(3, "hook.", json!({})), "claude_event");
        assert_eq!(p["subtype"], "");
    }

    #[test]
    fn keeps_every_key_of_the_original() {
        let data = json!({"tool_name": "Read", "timestamp": "2025-01-01T00:00:00Z"});
        let p = wire_payload(
            &Event::new(42, "hook.post_tool", data.clone()),
            "claude_event",
        );
        assert_eq!(
            p,
            json!({
                "event": "claude_event", "type": "hook", "subtype": "post_tool",
                "timestamp": "2025-01-01T00:00:00Z", "data": data, "source": "event_bus",
                "event_id": 42
            })
        );
    }

    #[test]
    fn session_cwd_and_correlation_are_also_at_the_top_level() {
        let data = json!({
            "tool_name": "Read", "session_id": "s-1", "cwd": "/work/project",
            "correlation_id": "c-9", "timestamp": "2025-01-01T00:00:00Z"
        });
        let p = wire_payload(
            &Event::new(5, "hook.pre_tool", data.clone()),
            "claude_event",
        );
        assert_eq!(
            p,
            json!({
                "event": "claude_event", "type": "hook", "subtype": "pre_tool",
                "timestamp": "2025-01-01T00:00:00Z", "data": data, "source": "event_bus",
                "event_id": 5, "session_id": "s-1", "cwd": "/work/project",
                "correlation_id": "c-9"
            })
        );
    }

    #[test]
    fn the_hooks_camel_case_session_id_becomes_session_id() {
        let data = json!({"sessionId": "abc-123", "cwd": "/p"});
        let p = wire_payload(
            &Event::new(6, "hook.post_tool", data.clone()),
            "claude_event",
        );
        assert_eq!(p["session_id"], "abc-123");
        assert!(p.get("sessionId").is_none(), "{p}");
        // `data` keeps its own spelling.
        assert_eq!(p["data"], data);
        // The snake-case name wins when both are there; a null one does not count.
        let both = json!({"session_id": "snake", "sessionId": "camel"});
        let p = wire_payload(&Event::new(7, "hook.x", both), "claude_event");
        assert_eq!(p["session_id"], "snake");
        let null_snake = json!({"session_id": null, "sessionId": "camel"});
        let p = wire_payload(&Event::new(8, "hook.x", null_snake), "claude_event");
        assert_eq!(p["session_id"], "camel");
    }

    #[test]
    fn absent_or_null_fields_are_not_invented() {
        let data = json!({"tool_name": "Read", "cwd": null});
        let p = wire_payload(&Event::new(9, "hook.x", data), "claude_event");
        for name in ["session_id", "cwd", "correlation_id"] {
            assert!(p.get(name).is_none(), "{name} in {p}");
        }
        assert_eq!(p.as_object().unwrap().len(), 7);
        // Non-object data has nothing to lift.
        for data in [json!(["session_id"]), json!("cwd"), json!(null)] {
            let p = wire_payload(&Event::new(10, "hook.x", data), "claude_event");
            assert_eq!(p.as_object().unwrap().len(), 7, "{p}");
        }
    }

    #[test]
    fn lifted_values_keep_their_json_type() {
        let data = json!({"session_id": 42, "correlation_id": {"a": 1}});
        let p = wire_payload(&Event::new(11, "hook.x", data), "claude_event");
        assert_eq!(p["session_id"], 42);
        assert_eq!(p["correlation_id"], json!({"a": 1}));
    }

    #[test]
    fn non_object_data_is_relayed_with_the_bus_timestamp() {
        for data in [json!([1, 2]), json!("text"), json!(null), json!(3.5)] {
            let p = wire_payload(&Event::new(7, "hook.x", data.clone()), "claude_event");
            assert_eq!(p["data"], data);
            let ts = p["timestamp"].as_str().unwrap();
            assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
        }
    }
}
