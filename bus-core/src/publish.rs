//! Publishing: accepting an event, recording it, and handing it to every consumer it reaches.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use serde_json::Value;

use crate::queue::{Push, SubQueue};
use crate::routing::{Route, SyncTarget};
use crate::shard::bump;
use crate::subscription::Delivery;
use crate::{Event, EventBus, Publisher, SubscriptionId};

/// Why [`EventBus::try_publish`] did not accept an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The bus is disabled ([`EventBus::set_enabled`]); nothing was counted.
    Disabled,
    /// The filters do not allow this event type; counted in `events_filtered`.
    Filtered,
    /// The bus was shut down.
    ShutDown,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Disabled => "the bus is disabled",
            Refusal::Filtered => "the filters do not allow this event type",
            Refusal::ShutDown => "the bus has been shut down",
        })
    }
}

impl EventBus {
    /// Publishes `data` (a `serde_json::Value`, or an `Arc<Value>` to share one payload
    /// without copying) as `event_type`.
    ///
    /// Returns false when the bus is disabled or shut down (nothing counted or recorded) or the
    /// filters refuse the event (counted in `events_filtered`); true once accepted. Sync
    /// handlers have run when it returns; async consumers have the event queued (a full
    /// [`Overflow::Block`](crate::Overflow::Block) queue makes this wait for room).
    pub fn publish(&self, event_type: &str, data: impl Into<Arc<Value>>) -> bool {
        self.dispatch(event_type, data.into(), None).is_ok()
    }

    /// Like [`publish`](Self::publish), but returns the accepted event (its id and timestamp)
    /// or why it was refused.
    pub fn try_publish(
        &self,
        event_type: &str,
        data: impl Into<Arc<Value>>,
    ) -> Result<Event, Refusal> {
        self.dispatch(event_type, data.into(), None)
    }

    /// Like [`publish`](Self::publish), but waits for room in full [`Overflow::Block`](crate::Overflow::Block) queues
    /// without blocking a runtime thread. Sync handlers run before that wait.
    pub async fn publish_async(&self, event_type: &str, data: impl Into<Arc<Value>>) -> bool {
        self.try_publish_async(event_type, data).await.is_ok()
    }

    /// Like [`publish_async`](Self::publish_async), returning the event or the refusal.
    pub async fn try_publish_async(
        &self,
        event_type: &str,
        data: impl Into<Arc<Value>>,
    ) -> Result<Event, Refusal> {
        let mut waiting = Vec::new();
        let outcome = self.dispatch(event_type, data.into(), Some(&mut waiting));
        for (queue, event) in waiting {
            queue.push_async(event).await;
        }
        outcome
    }

    fn dispatch(
        &self,
        event_type: &str,
        data: Arc<Value>,
        mut waiting: Option<&mut Vec<(Arc<SubQueue>, Event)>>,
    ) -> Result<Event, Refusal> {
        let flags = &self.inner.flags;
        if !flags.enabled.load(Ordering::Relaxed) {
            return Err(Refusal::Disabled);
        }
        if flags.closed.load(Ordering::Relaxed) {
            return Err(Refusal::ShutDown);
        }
        let route = crate::routing::route(&self.inner, event_type);
        if !route.allowed {
            bump(&route.totals.filtered, route.exclusive);
            return Err(Refusal::Filtered);
        }
        let event = self.new_event(&route, data);
        for queue in route.queued.iter() {
            match &mut waiting {
                None => {
                    queue.push_blocking(event.clone());
                }
                Some(waiting) => {
                    if let Push::Full(event) = queue.try_push(event.clone()) {
                        waiting.push((queue.clone(), event));
                    }
                }
            }
        }
        for target in route.sync.iter() {
            self.call_sync(target, &event, route.exclusive);
        }
        bump(&route.totals.published, route.exclusive);
        let nanos = crate::time::unix_nanos(event.timestamp());
        route
            .totals
            .last_event_nanos
            .store(nanos, Ordering::Relaxed);
        Ok(event)
    }

    fn new_event(&self, route: &Route, data: Arc<Value>) -> Event {
        let id = self.inner.next_event_id.fetch_add(1, Ordering::Relaxed) + 1;
        route
            .history
            .record_new(&route.ring, id, &route.event_type, data, SystemTime::now())
    }

    fn call_sync(&self, target: &SyncTarget, event: &Event, exclusive: bool) {
        let Delivery::Sync(handler) = &target.sub.delivery else {
            return;
        };
        if let Some(fired) = &handler.fired {
            if fired.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        let outcome = catch_unwind(AssertUnwindSafe(|| (handler.call)(event)));
        let name = &target.sub.name;
        match outcome {
            Ok(Ok(())) => bump(&target.counters.delivered, exclusive),
            Ok(Err(error)) => {
                bump(&target.counters.failed, exclusive);
                tracing::warn!(subscriber = %name, event_id = event.id(), %error, "event handler failed");
            }
            Err(panic) => {
                bump(&target.counters.failed, exclusive);
                tracing::error!(subscriber = %name, event_id = event.id(), panic = %crate::panic_message(&panic), "event handler panicked");
            }
        }
        if handler.fired.is_some() {
            self.unsubscribe(SubscriptionId(target.sub.id));
        }
    }
}

impl Publisher for EventBus {
    fn publish_shared(&self, event_type: &str, data: Arc<Value>) -> bool {
        self.dispatch(event_type, data, None).is_ok()
    }
}
