//! The event type every consumer receives.

use std::sync::Arc;
use std::time::SystemTime;

use compact_str::CompactString;
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;

use crate::Priority;

/// One published event, shared by every consumer without copying.
///
/// `Event` is a handle: cloning it bumps a reference count, it never copies the
/// event type or the payload.
#[derive(Clone)]
pub struct Event(
    // `triomphe`'s count has no weak half: asking "am I the only holder?" before recycling an
    // event is a plain load, where `std`'s `Arc::get_mut` needs a compare-and-swap.
    triomphe::Arc<EventInner>,
);

// `repr(C)` with the id first: it shares the reference count's cache line, the one line a
// queue's worker touches before its handler runs (it reads the id, then hands the event over).
#[repr(C)]
struct EventInner {
    id: u64,
    /// Inline up to 24 bytes: copying it costs no allocation and, unlike a shared `Arc<str>`,
    /// no reference count that publisher and consumer threads would both write.
    event_type: CompactString,
    data: Arc<Value>,
    timestamp: SystemTime,
    /// A stored event published again, as opposed to a live one.
    replay: bool,
    /// The priority its publisher gave it, which wins over a queue's rules.
    priority: Option<Priority>,
}

impl Event {
    /// Builds an event by hand, for tests and for adapters that replay events.
    ///
    /// Events published through an [`EventBus`](crate::EventBus) get their id and
    /// timestamp from the bus; this constructor takes the timestamp from the clock.
    pub fn new(id: u64, event_type: &str, data: impl Into<Arc<Value>>) -> Self {
        Self::from_parts(id, event_type, data, SystemTime::now())
    }

    /// Builds a live (not replayed) event whose id and timestamp were assigned elsewhere,
    /// such as by a durable event log, for [`EventBus::try_publish_event`](crate::EventBus::try_publish_event).
    pub fn from_parts(
        id: u64,
        event_type: &str,
        data: impl Into<Arc<Value>>,
        timestamp: SystemTime,
    ) -> Self {
        Self::from_raw(id, event_type.into(), data.into(), timestamp)
    }

    pub(crate) fn from_raw(
        id: u64,
        event_type: CompactString,
        data: Arc<Value>,
        timestamp: SystemTime,
    ) -> Self {
        Event(triomphe::Arc::new(EventInner {
            id,
            event_type,
            data,
            timestamp,
            replay: false,
            priority: None,
        }))
    }

    /// This event marked as a replay: a stored event published again (after a restart, or
    /// to a consumer catching up), so that consumers can tell it from a live one.
    ///
    /// Done in place when nothing else holds the event; otherwise the marked event is a new
    /// handle sharing the payload, and the other holders still see the unmarked one.
    pub fn into_replay(mut self) -> Self {
        match triomphe::Arc::get_mut(&mut self.0) {
            Some(inner) => inner.replay = true,
            None => {
                let inner = &self.0;
                self = Event(triomphe::Arc::new(EventInner {
                    id: inner.id,
                    event_type: inner.event_type.clone(),
                    data: inner.data.clone(),
                    timestamp: inner.timestamp,
                    replay: true,
                    priority: inner.priority,
                }));
            }
        }
        self
    }

    /// True for an event marked with [`into_replay`](Self::into_replay); false for every
    /// event the bus creates itself.
    pub fn is_replay(&self) -> bool {
        self.0.replay
    }

    /// This event with the priority its publisher gives it, which wins over the priority rules
    /// of every queue it reaches (see [`PriorityRules`](crate::PriorityRules)). Publish it with
    /// [`EventBus::try_publish_event`](crate::EventBus::try_publish_event) or
    /// [`EventBus::publish_with_priority`](crate::EventBus::publish_with_priority).
    ///
    /// Done in place when nothing else holds the event; otherwise the result is a new handle
    /// sharing the payload.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        match triomphe::Arc::get_mut(&mut self.0) {
            Some(inner) => inner.priority = Some(priority),
            None => {
                let inner = &self.0;
                self = Event(triomphe::Arc::new(EventInner {
                    id: inner.id,
                    event_type: inner.event_type.clone(),
                    data: inner.data.clone(),
                    timestamp: inner.timestamp,
                    replay: inner.replay,
                    priority: Some(priority),
                }));
            }
        }
        self
    }

    /// The priority the publisher gave this event, if any; `None` leaves it to each queue's
    /// rules (`normal` where none match).
    pub fn priority(&self) -> Option<Priority> {
        self.0.priority
    }

    /// Turns this event into a new one in place when nothing else holds it, saving an
    /// allocation; otherwise returns the parts untouched.
    // Inlined into the publish path: see `History::record_new`.
    #[inline]
    pub(crate) fn try_reuse(
        &mut self,
        id: u64,
        event_type: &CompactString,
        data: Arc<Value>,
        timestamp: SystemTime,
    ) -> Result<(), Arc<Value>> {
        match triomphe::Arc::get_mut(&mut self.0) {
            Some(inner) => {
                inner.id = id;
                if event_type.is_heap_allocated() {
                    if inner.event_type != *event_type {
                        inner.event_type.clone_from(event_type);
                    }
                } else {
                    // An inline string's clone is a copy of its 24 bytes: cheaper than
                    // comparing first (a `memcmp` call).
                    inner.event_type = event_type.clone();
                }
                inner.data = data;
                inner.timestamp = timestamp;
                // A recycled replay becomes a live event like any other.
                inner.replay = false;
                inner.priority = None;
                Ok(())
            }
            None => Err(data),
        }
    }

    /// Starts bringing the event's reference count and id into this core's cache, ahead of a
    /// clone, drop or recycling that will write it.
    pub(crate) fn prefetch(&self) {
        crate::prefetch::line(triomphe::Arc::heap_ptr(&self.0));
    }

    /// The id: assigned by the bus (unique per bus, increasing in the order events are
    /// accepted; per publishing thread only, under [`IdOrder::PerThread`](crate::IdOrder::PerThread)),
    /// or by whoever built the event with [`from_parts`](Self::from_parts).
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

    /// When the bus accepted the event, or the time given to [`from_parts`](Self::from_parts).
    ///
    /// The bus reads it from the CPU's time-stamp counter, anchored to the system clock at
    /// most 50 ms earlier: nanosecond resolution, within microseconds of `SystemTime::now()`
    /// (a system clock step shows within 50 ms). Order events by id, not by timestamp.
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
            .field("replay", &self.is_replay())
            .field("priority", &self.priority())
            .finish()
    }
}

/// Serializes as `{"id", "type", "timestamp" (RFC 3339, UTC), "data"}`, the shape of the
/// original's history entries plus the id, and `"replay": true` after those for a replayed
/// event only, so that live events keep exactly the shape consumers already parse.
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Event", 4 + usize::from(self.is_replay()))?;
        s.serialize_field("id", &self.id())?;
        s.serialize_field("type", self.event_type())?;
        s.serialize_field("timestamp", &crate::time::rfc3339(self.timestamp()))?;
        s.serialize_field("data", self.data())?;
        if self.is_replay() {
            s.serialize_field("replay", &true)?;
        } else {
            s.skip_field("replay")?;
        }
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
        assert!(v.get("replay").is_none(), "{v}");
    }

    #[test]
    fn replay_flag_shows_in_serialization_and_debug() {
        let e = Event::new(1, "a.b", json!(null)).into_replay();
        assert!(e.is_replay());
        assert_eq!(serde_json::to_value(&e).unwrap()["replay"], true);
        assert!(format!("{e:?}").contains("replay: true"));
        assert!(format!("{:?}", Event::new(2, "a.b", json!(null))).contains("replay: false"));
    }

    #[test]
    fn into_replay_leaves_other_holders_untouched() {
        let live = Event::new(3, "a.b", json!({"k": 1}));
        let replay = live.clone().into_replay();
        assert!(!live.is_replay() && replay.is_replay());
        assert!(Arc::ptr_eq(live.shared_data(), replay.shared_data()));
        assert_eq!(
            (replay.id(), replay.timestamp()),
            (live.id(), live.timestamp())
        );
    }

    #[test]
    fn a_recycled_replay_is_live_again() {
        let mut e = Event::new(4, "a.b", json!(1)).into_replay();
        let t = SystemTime::now();
        assert!(e.try_reuse(5, &"c.d".into(), Arc::new(json!(2)), t).is_ok());
        assert!(!e.is_replay());
        assert_eq!((e.id(), e.event_type(), e.timestamp()), (5, "c.d", t));
    }
}
