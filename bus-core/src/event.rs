//! The event type every consumer receives.

use std::sync::Arc;
use std::time::SystemTime;

use compact_str::CompactString;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

/// One published event, shared by every consumer without copying.
///
/// `Event` is a handle: cloning it bumps a reference count, it never copies the
/// event type or the payload.
#[derive(Clone)]
pub struct Event(Arc<EventInner>);

struct EventInner {
    id: u64,
    /// Inline up to 24 bytes: copying it costs no allocation and, unlike a shared `Arc<str>`,
    /// no reference count that publisher and consumer threads would both write.
    event_type: CompactString,
    data: Arc<Value>,
    timestamp: SystemTime,
}

impl Event {
    /// Builds an event by hand, for tests and for adapters that replay events.
    ///
    /// Events published through an [`EventBus`](crate::EventBus) get their id and
    /// timestamp from the bus; this constructor takes the timestamp from the clock.
    pub fn new(id: u64, event_type: &str, data: impl Into<Arc<Value>>) -> Self {
        Self::from_parts(id, event_type.into(), data.into(), SystemTime::now())
    }

    pub(crate) fn from_parts(
        id: u64,
        event_type: CompactString,
        data: Arc<Value>,
        timestamp: SystemTime,
    ) -> Self {
        Event(Arc::new(EventInner {
            id,
            event_type,
            data,
            timestamp,
        }))
    }

    /// Turns this event into a new one in place when nothing else holds it, saving an
    /// allocation; otherwise returns the parts untouched.
    pub(crate) fn try_reuse(
        &mut self,
        id: u64,
        event_type: &CompactString,
        data: Arc<Value>,
        timestamp: SystemTime,
    ) -> Result<(), Arc<Value>> {
        match Arc::get_mut(&mut self.0) {
            Some(inner) => {
                inner.id = id;
                if inner.event_type != *event_type {
                    inner.event_type.clone_from(event_type);
                }
                inner.data = data;
                inner.timestamp = timestamp;
                Ok(())
            }
            None => Err(data),
        }
    }

    /// The bus-assigned id: unique per bus, increasing in the order events are accepted.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The event type the producer published, such as `hook.pre_tool`.
    pub fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// The payload.
    pub fn data(&self) -> &Value {
        &self.0.data
    }

    /// The payload as the shared handle it is stored in, to pass it on without copying.
    pub fn shared_data(&self) -> &Arc<Value> {
        &self.0.data
    }

    /// When the bus accepted the event.
    pub fn timestamp(&self) -> SystemTime {
        self.0.timestamp
    }
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id())
            .field("event_type", &self.event_type())
            .field("timestamp", &self.timestamp())
            .field("data", self.data())
            .finish()
    }
}

/// Serializes as `{"id", "type", "timestamp" (RFC 3339, UTC), "data"}`, the shape of the
/// original's history entries plus the id.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Event", 4)?;
        s.serialize_field("id", &self.id())?;
        s.serialize_field("type", self.event_type())?;
        s.serialize_field("timestamp", &crate::time::rfc3339(self.timestamp()))?;
        s.serialize_field("data", self.data())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clones_share_the_payload() {
        let e = Event::new(7, "hook.pre_tool", json!({"a": 1}));
        let c = e.clone();
        assert!(Arc::ptr_eq(e.shared_data(), c.shared_data()));
        assert_eq!(c.id(), 7);
        assert_eq!(c.event_type(), "hook.pre_tool");
    }

    #[test]
    fn serializes_with_type_and_rfc3339_timestamp() {
        let e = Event::new(1, "a.b", json!([1, 2]));
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["id"], 1);
        assert_eq!(v["type"], "a.b");
        assert_eq!(v["data"], json!([1, 2]));
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    }
}
