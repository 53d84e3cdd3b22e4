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
use crate::{Event, EventBus, EventView, Invalid, Publisher, SubscriptionId, Validator};

/// Why [`EventBus::try_publish`] did not accept an event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The bus is disabled ([`EventBus::set_enabled`]); nothing was counted.
    Disabled,
    /// The filters (their patterns, or the condition they gained with
    /// [`EventBus::set_filter_where`]) do not allow this event; counted in `events_filtered`.
    Filtered,
    /// The bus was shut down.
    ShutDown,
    /// The installed [`Validator`] refused the payload: every broken rule, with its JSON
    /// pointer. Nothing was dispatched or recorded.
    Invalid(Box<Invalid>),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Disabled => "the bus is disabled",
            Refusal::Filtered => "the filters do not allow this event type",
            Refusal::ShutDown => "the bus has been shut down",
            Refusal::Invalid(invalid) => return write!(f, "{invalid}"),
        })
    }
}

/// Events that met a full [`Overflow::Block`](crate::Overflow::Block) queue during an async
/// publish, to be pushed once there is room.
type Waiting = Vec<(Arc<SubQueue>, Event, crate::Priority)>;

impl EventBus {
    /// Publishes `data` (a `serde_json::Value`, or an `Arc<Value>` to share one payload
    /// without copying) as `event_type`.
    ///
    /// Returns false when the bus is disabled or shut down (nothing counted or recorded) or the
    /// filters refuse the event (counted in `events_filtered`); true once accepted. Sync
    /// handlers have run when it returns; async consumers have the event queued (a full
    /// [`Overflow::Block`](crate::Overflow::Block) queue makes this wait for room).
    pub fn publish(&self, event_type: &str, data: impl Into<Arc<Value>>) -> bool {
        self.dispatch::<false>(event_type, data.into(), None)
            .is_ok()
    }

    /// Like [`publish`](Self::publish), but returns the accepted event (its id and timestamp)
    /// or why it was refused.
    pub fn try_publish(
        &self,
        event_type: &str,
        data: impl Into<Arc<Value>>,
    ) -> Result<Event, Refusal> {
        self.dispatch::<true>(event_type, data.into(), None)
            .map(kept)
    }

    /// Like [`publish`](Self::publish), but waits for room in full
    /// [`Overflow::Block`](crate::Overflow::Block) queues without blocking a runtime thread.
    /// Sync handlers run before that wait.
    pub async fn publish_async(&self, event_type: &str, data: impl Into<Arc<Value>>) -> bool {
        let mut waiting = Vec::new();
        let outcome = self.dispatch::<false>(event_type, data.into(), Some(&mut waiting));
        push_waiting(waiting).await;
        outcome.is_ok()
    }

    /// Like [`publish_async`](Self::publish_async), returning the event or the refusal.
    pub async fn try_publish_async(
        &self,
        event_type: &str,
        data: impl Into<Arc<Value>>,
    ) -> Result<Event, Refusal> {
        let mut waiting = Vec::new();
        let outcome = self.dispatch::<true>(event_type, data.into(), Some(&mut waiting));
        push_waiting(waiting).await;
        outcome.map(kept)
    }

    /// Like [`try_publish`](Self::try_publish), with the priority the publisher gives this
    /// event: it wins over every queue's [`PriorityRules`](crate::PriorityRules).
    pub fn publish_with_priority(
        &self,
        event_type: &str,
        data: impl Into<Arc<Value>>,
        priority: crate::Priority,
    ) -> Result<Event, Refusal> {
        let data = data.into();
        self.dispatch_with::<true>(
            event_type,
            |route| {
                self.new_event(route, data)
                    .map(|(event, nanos)| (event.with_priority(priority), nanos))
            },
            None,
        )
        .map(kept)
    }

    /// Publishes an event whose id and timestamp were assigned elsewhere, such as by a durable
    /// event log, and returns it; the bus's own id counter is neither read nor advanced.
    ///
    /// Everything else is as for [`try_publish`](Self::try_publish): the enabled switch, the
    /// filters, the stats, the history, sync handlers, queues and
    /// [`Overflow::Block`](crate::Overflow::Block) waits. Consumers receive this very event,
    /// [`Event::is_replay`] flag included.
    ///
    /// The ids are the caller's responsibility: they should be unique and increase in the
    /// order they are published, since [`recent_events`](Self::recent_events) orders and
    /// trims the history by id. Mixing this with [`publish`](Self::publish) on one bus mixes
    /// two id sequences that the history cannot tell apart.
    pub fn try_publish_event(&self, event: Event) -> Result<Event, Refusal> {
        self.dispatch_given(&event, None)
    }

    /// Like [`try_publish_event`](Self::try_publish_event), but waits for room in full
    /// [`Overflow::Block`](crate::Overflow::Block) queues without blocking a runtime thread,
    /// as [`try_publish_async`](Self::try_publish_async) does.
    pub async fn try_publish_event_async(&self, event: Event) -> Result<Event, Refusal> {
        let mut waiting = Vec::new();
        let outcome = self.dispatch_given(&event, Some(&mut waiting));
        push_waiting(waiting).await;
        outcome
    }

    /// [`try_publish_event`](Self::try_publish_event) for each event in turn, say a stretch
    /// of a durable log being replayed; one outcome per event, in order.
    pub fn try_publish_events<I>(&self, events: I) -> Vec<Result<Event, Refusal>>
    where
        I: IntoIterator<Item = Event>,
    {
        events
            .into_iter()
            .map(|event| self.try_publish_event(event))
            .collect()
    }

    /// The counter path: the instance of [`dispatch_with`](Self::dispatch_with) that
    /// `publish` and friends share, exactly as before given events existed.
    fn dispatch<const KEEP: bool>(
        &self,
        event_type: &str,
        data: Arc<Value>,
        waiting: Option<&mut Waiting>,
    ) -> Result<Option<Event>, Refusal> {
        self.dispatch_with::<KEEP>(event_type, |route| self.new_event(route, data), waiting)
    }

    fn dispatch_given(
        &self,
        event: &Event,
        waiting: Option<&mut Waiting>,
    ) -> Result<Event, Refusal> {
        // Given events were checked before their log stored them, and a replay is not
        // re-judged by schemas loaded since: no validation here.
        self.dispatch_with::<true>(
            event.event_type(),
            |route| {
                if let Some(condition) = &route.filter_where
                    && !condition.matches(EventView::from(event))
                {
                    return Err(Refusal::Filtered);
                }
                route.history.record(&route.ring, event);
                Ok((event.clone(), crate::time::unix_nanos(event.timestamp())))
            },
            waiting,
        )
        .map(kept)
    }

    /// Whether an event of `event_type` would be accepted now (bus enabled, not shut down,
    /// allowed by the filters), without publishing anything. A filtered type is counted in
    /// `events_filtered` as publishing would count it, so a caller that stores events before
    /// it publishes them (the daemon's durable log) keeps the stats exact: it calls this,
    /// stores what is admitted, then publishes with
    /// [`try_publish_event`](Self::try_publish_event).
    pub fn admit(&self, event_type: &str) -> Result<(), Refusal> {
        self.admit_route(event_type).map(drop)
    }

    /// Like [`admit`](Self::admit), and also asks the allow-list's condition (with `id` 0:
    /// no id is assigned yet; it runs again at dispatch with the real one). The
    /// [`Validator`] is not asked: a host that stores events before publishing them checks
    /// whole batches with [`validate`](Self::validate) first, as the daemon does.
    pub fn admit_event(&self, event_type: &str, data: &Value) -> Result<(), Refusal> {
        let route = self.admit_route(event_type)?;
        if let Some(condition) = &route.filter_where {
            let view = EventView {
                event_type,
                id: 0,
                timestamp: SystemTime::now(),
                data,
            };
            if !condition.matches(view) {
                bump(&route.totals.filtered, route.exclusive);
                return Err(Refusal::Filtered);
            }
        }
        Ok(())
    }

    /// Checks `data` against the installed [`Validator`] alone (no counting of its own, no
    /// publishing): for a caller that refuses a whole batch when one of its events is invalid.
    pub fn validate(&self, event_type: &str, data: &Value) -> Result<(), Invalid> {
        match self.validator() {
            Some(validator) => validator.validate(event_type, data),
            None => Ok(()),
        }
    }

    fn admit_route(&self, event_type: &str) -> Result<std::rc::Rc<Route>, Refusal> {
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
        Ok(route)
    }

    /// Generic over how the accepted event is made, so the counter path pays nothing (not
    /// even a branch) for the given-event path. `make` refuses an invalid payload or one
    /// the allow-list's condition does not match (counted here as filtered); it returns the
    /// event and its timestamp in Unix nanoseconds.
    ///
    /// With `KEEP` false the caller does not want the event back, so where no sync handler
    /// follows, the last queue gets the event itself rather than a clone: two reference-count
    /// writes fewer per publish. With `KEEP` true the result always holds the event.
    fn dispatch_with<const KEEP: bool>(
        &self,
        event_type: &str,
        make: impl FnOnce(&Route) -> Result<(Event, u64), Refusal>,
        mut waiting: Option<&mut Waiting>,
    ) -> Result<Option<Event>, Refusal> {
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
        let (event, nanos) = match make(&route) {
            Ok(made) => made,
            Err(refusal) => {
                if refusal == Refusal::Filtered {
                    bump(&route.totals.filtered, route.exclusive);
                }
                return Err(refusal);
            }
        };
        let give_last = !KEEP && route.sync.is_empty();
        let last = route.queued.len().wrapping_sub(1);
        let mut event = Some(event);
        for (i, target) in route.queued.iter().enumerate() {
            let Some(current) = &event else { break };
            if let Some(condition) = &target.condition
                && !condition.matches(EventView::from(current))
            {
                continue;
            }
            let handed = if give_last && i == last {
                event.take()
            } else {
                event.clone()
            };
            let Some(handed) = handed else { break };
            let (queue, priority) = (&target.queue, &target.priority);
            match &mut waiting {
                None => {
                    queue.push_blocking(handed, *priority);
                }
                Some(waiting) => {
                    if let Push::Full(handed) = queue.try_push(handed, *priority) {
                        waiting.push((queue.clone(), handed, *priority));
                    }
                }
            }
        }
        if let Some(event) = &event {
            for target in route.sync.iter() {
                if let Some(condition) = &target.condition
                    && !condition.matches(EventView::from(event))
                {
                    continue;
                }
                self.call_sync(target, event, route.exclusive);
            }
        }
        bump(&route.totals.published, route.exclusive);
        route
            .totals
            .last_event_nanos
            .store(nanos, Ordering::Relaxed);
        Ok(event)
    }

    // Inlined into the publish path: see `History::record_new`.
    #[inline]
    fn new_event(&self, route: &Route, data: Arc<Value>) -> Result<(Event, u64), Refusal> {
        if let Some(validator) = &route.validator {
            validator
                .validate(&route.event_type, &data)
                .map_err(|invalid| Refusal::Invalid(Box::new(invalid)))?;
        }
        let counter = &self.inner.next_event_id;
        let id = match self.inner.id_order {
            crate::IdOrder::Accepted => counter.fetch_add(1, Ordering::Relaxed) + 1,
            crate::IdOrder::PerThread => route.ids.take(counter),
        };
        let (nanos, now) = crate::clock::now();
        if let Some(condition) = &route.filter_where {
            let view = EventView {
                event_type: &route.event_type,
                id,
                timestamp: now,
                data: &data,
            };
            if !condition.matches(view) {
                return Err(Refusal::Filtered);
            }
        }
        let event = route.history.record_new(
            &route.ring,
            id,
            &route.event_type,
            data,
            now,
            !route.queued.is_empty(),
        );
        Ok((event, nanos))
    }

    fn validator(&self) -> Option<Arc<dyn Validator>> {
        self.inner.lock().gates.validator.clone()
    }

    // Inlined into the publish path: see `History::record_new`.
    #[inline]
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

async fn push_waiting(waiting: Waiting) {
    for (queue, event, priority) in waiting {
        queue.push_async(event, priority).await;
    }
}

impl Publisher for EventBus {
    fn publish_shared(&self, event_type: &str, data: Arc<Value>) -> bool {
        self.dispatch::<false>(event_type, data, None).is_ok()
    }
}

/// The event of a dispatch asked to keep it.
fn kept(event: Option<Event>) -> Event {
    event.expect("a dispatch with KEEP set always returns its event")
}
