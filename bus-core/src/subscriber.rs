//! The traits consumers and producers depend on.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use crate::Event;

/// The error a handler reports; any error type converts into it with `?` or `.into()`.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a handler returns: `Ok(())` when the event was handled.
pub type HandlerResult = Result<(), HandlerError>;

/// Lets handlers return `()` or any `Result<(), E>`; an `Err` counts as a failure.
pub trait IntoHandlerResult {
    /// Converts the handler's return value.
    fn into_handler_result(self) -> HandlerResult;
}

impl IntoHandlerResult for () {
    fn into_handler_result(self) -> HandlerResult {
        Ok(())
    }
}

impl<E: Into<HandlerError>> IntoHandlerResult for Result<(), E> {
    fn into_handler_result(self) -> HandlerResult {
        self.map_err(Into::into)
    }
}

/// What happens when a consumer's queue is full.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// Refuse the new event (counted as dropped); what is queued stays. The default.
    #[default]
    DropNewest,
    /// Evict the oldest queued event (counted as dropped) to make room.
    DropOldest,
    /// Make the publisher wait for room. From async code use
    /// [`EventBus::publish_async`](crate::EventBus::publish_async) so the wait does not block a
    /// runtime thread.
    Block,
}

/// A consumer with its own bounded queue and worker task.
///
/// The bus calls [`handle`](Subscriber::handle) for every matching event, one at a time and
/// in publish order. A slow or stuck subscriber delays only itself.
#[async_trait]
pub trait Subscriber: Send + Sync + 'static {
    /// A short name for logs and stats, such as `"socketio-relay"`.
    fn name(&self) -> &str;

    /// The event-type patterns this subscriber receives (exact names or globs).
    fn patterns(&self) -> Vec<String>;

    /// Handles one event. An `Err` or a panic is counted as a failure and logged; the
    /// worker goes on with the next event.
    async fn handle(&self, event: Event) -> HandlerResult;

    /// A content condition checked after the patterns matched, on the publishing side
    /// (see [`Condition`](crate::Condition)); `None` (the default) takes every matching event.
    fn condition(&self) -> Option<Arc<dyn crate::Condition>> {
        None
    }

    /// Queue capacity for this subscriber; `None` takes the bus default.
    fn queue_capacity(&self) -> Option<usize> {
        None
    }

    /// Overflow policy for this subscriber; `None` takes the bus default.
    fn overflow(&self) -> Option<Overflow> {
        None
    }

    /// Priority rules for this subscriber's queue; `None` takes the bus default.
    fn priorities(&self) -> Option<crate::PriorityRules> {
        None
    }

    /// A rate limit for this subscriber; `None` takes the bus default (by default none).
    /// [`EventBus::set_rate_limit`](crate::EventBus::set_rate_limit) changes it later.
    fn rate_limit(&self) -> Option<crate::RateLimit> {
        None
    }

    /// Called once by [`EventBus::shutdown`](crate::EventBus::shutdown) after this subscriber's
    /// queue has been drained (or the time ran out). A subscriber that holds events of its own
    /// (a relay's send buffer, say) delivers what it can within `timeout` and returns how many
    /// events it still held undelivered.
    async fn on_shutdown(&self, timeout: Duration) -> u64 {
        let _ = timeout;
        0
    }
}

/// Something events can be published to. Producers that depend on this trait alone can be
/// handed an [`EventBus`](crate::EventBus) or a test double.
pub trait Publisher: Send + Sync {
    /// Publishes a shared payload; see [`EventBus::publish`](crate::EventBus::publish).
    fn publish_shared(&self, event_type: &str, data: Arc<Value>) -> bool;

    /// Publishes `data` (a `Value` or an `Arc<Value>`) as `event_type`; true once accepted.
    fn publish(&self, event_type: &str, data: impl Into<Arc<Value>>) -> bool
    where
        Self: Sized,
    {
        self.publish_shared(event_type, data.into())
    }
}
