//! The JSON object the dashboard expects for one bus event (see
//! `docs/reference/original-behaviour.md`), plus the bus event id for de-duplication.

use bus_core::Event;
use serde_json::{Map, Value};

/// The value of the payload's `"source"` key.
pub const SOURCE: &str = "event_bus";

/// Builds the payload emitted for `event`:
/// `{"event", "type", "subtype", "timestamp", "data", "source", "event_id"}`.
///
/// `type` is the event type up to the first `.`, `subtype` the rest (`"generic"` when there is
/// no `.`); `timestamp` is `data.timestamp` when `data` is an object that has one, else the
/// time the bus accepted the event (RFC 3339, UTC). `data` may be any JSON value. The first six
/// keys are the original's; `event_id` is the bus id, the same on every resend, so a receiver
/// can drop duplicates.
pub fn wire_payload(event: &Event, event_name: &str) -> Value {
    let event_type = event.event_type();
    let (kind, subtype) = event_type
        .split_once('.')
        .unwrap_or((event_type, "generic"));
    let timestamp = match event.data() {
        Value::Object(fields) if fields.contains_key("timestamp") => fields["timestamp"].clone(),
        _ => Value::String(humantime::format_rfc3339_micros(event.timestamp()).to_string()),
    };
    let mut payload = Map::with_capacity(7);
    payload.insert("event".into(), event_name.into());
    payload.insert("type".into(), kind.into());
    payload.insert("subtype".into(), subtype.into());
    payload.insert("timestamp".into(), timestamp);
    payload.insert("data".into(), event.data().clone());
    payload.insert("source".into(), SOURCE.into());
    payload.insert("event_id".into(), event.id().into());
    Value::Object(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn non_object_data_is_relayed_with_the_bus_timestamp() {
        for data in [json!([1, 2]), json!("text"), json!(null), json!(3.5)] {
            let p = wire_payload(&Event::new(7, "hook.x", data.clone()), "claude_event");
            assert_eq!(p["data"], data);
            let ts = p["timestamp"].as_str().unwrap();
            assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
        }
    }
}
