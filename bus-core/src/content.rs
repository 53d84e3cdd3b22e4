//! Hooks that decide on an event's content, for crates that bring the heavy machinery
//! (JSON Schema, CEL) while bus-core stays light: a [`Validator`] checks a payload before it
//! is dispatched, a [`Condition`] chooses events by content beyond their type.

use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Event;

/// Checks events before the bus dispatches them: installed with
/// [`EventBusBuilder::validator`](crate::EventBusBuilder::validator) or
/// [`EventBus::set_validator`](crate::EventBus::set_validator).
///
/// A validator that only warns (accepts, counts and logs) returns `Ok`; one that rejects
/// returns the [`Invalid`] reasons, and `publish` refuses the event with
/// [`Refusal::Invalid`](crate::Refusal::Invalid).
pub trait Validator: Send + Sync + 'static {
    /// `Ok` when `data` may be published as `event_type`.
    fn validate(&self, event_type: &str, data: &Value) -> Result<(), Invalid>;
}

/// Why a [`Validator`] refused an event: every rule it broke.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Invalid {
    /// The event type checked.
    pub event_type: String,
    /// Each broken rule, in the order the validator found them (at least one).
    pub violations: Vec<Violation>,
}

/// One broken rule: where in the payload, and what.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Violation {
    /// A JSON pointer into the event's `data` (`""` for the payload itself).
    pub pointer: String,
    /// The rule that failed, such as `42 is not of type "string"`.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(data)"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {}", self.message)
    }
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} does not match its schema: ", self.event_type)?;
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

/// What a [`Condition`] sees of an event: its type, id, timestamp and payload.
///
/// The bus-wide condition ([`EventBus::set_filter_where`](crate::EventBus::set_filter_where))
/// is checked by [`EventBus::admit_event`](crate::EventBus::admit_event) before a durable log
/// has assigned an id: `id` is 0 there, and the condition runs again with the real id when
/// the event is dispatched.
#[derive(Clone, Copy, Debug)]
pub struct EventView<'a> {
    /// The event type.
    pub event_type: &'a str,
    /// The event id.
    pub id: u64,
    /// When the event was accepted.
    pub timestamp: SystemTime,
    /// The payload.
    pub data: &'a Value,
}

impl<'a> From<&'a Event> for EventView<'a> {
    fn from(event: &'a Event) -> Self {
        EventView {
            event_type: event.event_type(),
            id: event.id(),
            timestamp: event.timestamp(),
            data: event.data(),
        }
    }
}

/// A condition on an event's content, compiled once elsewhere (the `bus-cel` crate compiles
/// CEL), checked only for events whose type already matched the subscription's patterns.
///
/// `matches` must not panic; a condition that cannot be evaluated for one event (a missing
/// field) answers false and counts that itself.
pub trait Condition: Send + Sync + 'static {
    /// True when the event should be delivered.
    fn matches(&self, event: EventView<'_>) -> bool;

    /// The condition as written, for logs and stats.
    fn source(&self) -> &str;
}

impl std::fmt::Debug for dyn Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Condition({:?})", self.source())
    }
}

impl std::fmt::Debug for dyn Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator")
    }
}

/// The content hooks a snapshot carries, replaced together with it.
#[derive(Clone, Default)]
pub(crate) struct Gates {
    pub(crate) validator: Option<Arc<dyn Validator>>,
    pub(crate) filter_where: Option<Arc<dyn Condition>>,
}
