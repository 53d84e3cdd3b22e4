//! The [`EventBus`]: publishing, subscribing, filters, history and stats.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::history::History;
use crate::queue::{AsyncFn, Push, SubQueue, Target, run_worker};
use crate::routing::{BusCounters, Route, Snapshot, SyncCounters, SyncTarget};
use crate::shard::{Padded, Sharded, bump};
use crate::stats::{BusStats, SubscriberKind, SubscriberStats};
use crate::{
    BusError, Event, HandlerResult, IntoHandlerResult, Overflow, Pattern, Publisher, Subscriber,
};

/// Identifies a subscription, for [`EventBus::unsubscribe`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SubscriptionId(u64);

impl SubscriptionId {
    /// The numeric id, as shown in stats rows.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl std::fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

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

/// Queue settings for one async subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Events the queue holds before the overflow policy applies.
    pub capacity: usize,
    /// What happens when the queue is full.
    pub overflow: Overflow,
}

/// What [`EventBus::shutdown`] could not deliver.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShutdownReport {
    /// True when every queue drained and every subscriber finished within the timeout.
    pub complete: bool,
    /// Events that stayed undelivered, over all subscribers.
    pub undelivered: u64,
    /// One row per queued subscriber that left events undelivered.
    pub subscribers: Vec<Undelivered>,
}

/// Undelivered events of one subscriber at shutdown.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Undelivered {
    /// The subscriber's name.
    pub name: String,
    /// Events still in its bus queue when the time ran out.
    pub queued: u64,
    /// Events the subscriber itself still held (its [`Subscriber::on_shutdown`] count).
    pub held: u64,
}

/// A queued subscription's name, queue and (for `subscribe`) the subscriber itself.
type QueuedSub = (Arc<str>, Arc<SubQueue>, Option<Arc<dyn Subscriber>>);

pub(crate) type SyncFn = dyn Fn(&Event) -> HandlerResult + Send + Sync;

pub(crate) struct SyncHandler {
    call: Box<SyncFn>,
    /// Set for `once` handlers: whoever flips it first is the one call.
    fired: Option<AtomicBool>,
    pub(crate) counters: Sharded<SyncCounters>,
}

pub(crate) enum Delivery {
    Sync(SyncHandler),
    Queued {
        queue: Arc<SubQueue>,
        subscriber: Option<Arc<dyn Subscriber>>,
    },
}

pub(crate) struct Subscription {
    id: u64,
    name: Arc<str>,
    kind: SubscriberKind,
    pub(crate) patterns: Vec<Pattern>,
    pub(crate) delivery: Delivery,
}

struct Registry {
    next_id: u64,
    subs: Vec<Arc<Subscription>>,
    filters: Vec<Pattern>,
    history: Arc<History>,
    snapshot: Arc<Snapshot>,
    generation: u64,
    workers: HashMap<u64, JoinHandle<()>>,
    /// Failures and drops of subscriptions that are gone, so totals never go backwards.
    retired_failed: u64,
    retired_dropped: u64,
}

/// Flags read on every publish, kept apart from the ever-changing id counter.
#[derive(Default)]
struct Flags {
    enabled: AtomicBool,
    closed: AtomicBool,
    generation: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) uid: u64,
    flags: Padded<Flags>,
    next_event_id: Padded<AtomicU64>,
    registry: Mutex<Registry>,
    pub(crate) totals: Sharded<BusCounters>,
    resets: AtomicU64,
    defaults: QueueOptions,
    runtime: Option<Handle>,
}

impl Inner {
    pub(crate) fn generation(&self) -> u64 {
        self.flags.generation.load(Ordering::Acquire)
    }

    /// The current snapshot and its generation, read together.
    pub(crate) fn current_snapshot(&self) -> (u64, Arc<Snapshot>) {
        let reg = self.lock();
        (reg.generation, reg.snapshot.clone())
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a new snapshot; publishes that start after this returns see it.
    fn republish(&self, reg: &mut Registry) {
        reg.snapshot = Arc::new(Snapshot::new(
            reg.subs.clone(),
            reg.filters.clone(),
            reg.history.clone(),
        ));
        reg.generation += 1;
        self.flags
            .generation
            .store(reg.generation, Ordering::SeqCst);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Workers hold their queues, not the bus: closing lets them drain and exit.
        for sub in &self.lock().subs {
            if let Delivery::Queued { queue, .. } = &sub.delivery {
                queue.close();
            }
        }
    }
}

/// Builds an [`EventBus`] with non-default settings.
#[derive(Clone, Debug)]
pub struct EventBusBuilder {
    history_size: usize,
    enabled: bool,
    filters: Vec<String>,
    queue: QueueOptions,
    runtime: Option<Handle>,
}

impl Default for EventBusBuilder {
    fn default() -> Self {
        EventBusBuilder {
            history_size: 100,
            enabled: true,
            filters: Vec::new(),
            queue: QueueOptions {
                capacity: 10_000,
                overflow: Overflow::DropNewest,
            },
            runtime: None,
        }
    }
}

impl EventBusBuilder {
    /// How many recent events to keep (default 100; 0 turns history off).
    pub fn history_size(mut self, n: usize) -> Self {
        self.history_size = n;
        self
    }

    /// Whether the bus starts enabled (default true).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Allow-list of event-type patterns (default empty: allow all).
    pub fn filters<I, S>(mut self, patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.filters = patterns.into_iter().map(Into::into).collect();
        self
    }

    /// Default queue capacity of async subscribers (default 10,000).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue.capacity = n;
        self
    }

    /// Default overflow policy of async subscribers (default [`Overflow::DropNewest`]).
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.queue.overflow = overflow;
        self
    }

    /// Runs async subscribers' workers on this runtime instead of finding one.
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// Builds the bus; fails on a bad filter pattern or a zero queue capacity.
    pub fn build(self) -> Result<EventBus, BusError> {
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        if self.queue.capacity == 0 {
            return Err(BusError::ZeroCapacity {
                name: "the bus default".into(),
            });
        }
        let filters = self
            .filters
            .iter()
            .map(|p| Pattern::new(p))
            .collect::<Result<Vec<_>, _>>()?;
        let history = Arc::new(History::new(self.history_size));
        let snapshot = Arc::new(Snapshot::new(Vec::new(), filters.clone(), history.clone()));
        let inner = Inner {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            flags: Padded(Flags {
                enabled: AtomicBool::new(self.enabled),
                ..Flags::default()
            }),
            next_event_id: Padded(AtomicU64::new(0)),
            registry: Mutex::new(Registry {
                next_id: 1,
                subs: Vec::new(),
                filters,
                history,
                snapshot,
                generation: 0,
                workers: HashMap::new(),
                retired_failed: 0,
                retired_dropped: 0,
            }),
            totals: Sharded::default(),
            resets: AtomicU64::new(0),
            defaults: self.queue,
            runtime: self.runtime,
        };
        Ok(EventBus {
            inner: Arc::new(inner),
        })
    }
}

/// An in-process publish/subscribe event bus.
///
/// Cheap to clone (clones share one bus); every method takes `&self` and may be called from
/// any thread, from inside any tokio runtime, and from inside a handler.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

/// A handle that does not keep the bus alive; for handlers that publish back into their own
/// bus without forming a reference cycle.
#[derive(Clone)]
pub struct WeakEventBus(Weak<Inner>);

impl WeakEventBus {
    /// The bus, if it still exists.
    pub fn upgrade(&self) -> Option<EventBus> {
        self.0.upgrade().map(|inner| EventBus { inner })
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("uid", &self.inner.uid)
            .finish_non_exhaustive()
    }
}

impl EventBus {
    /// A bus with the defaults: enabled, history of 100, no filters.
    pub fn new() -> Self {
        EventBusBuilder::default()
            .build()
            .expect("the default settings are valid")
    }

    /// Starts a builder.
    pub fn builder() -> EventBusBuilder {
        EventBusBuilder::default()
    }

    /// The process-wide shared bus, built with the defaults on first use.
    pub fn global() -> &'static EventBus {
        static GLOBAL: OnceLock<EventBus> = OnceLock::new();
        GLOBAL.get_or_init(EventBus::new)
    }

    /// A handle that does not keep the bus alive.
    pub fn downgrade(&self) -> WeakEventBus {
        WeakEventBus(Arc::downgrade(&self.inner))
    }

    // ----- publishing -------------------------------------------------------------------

    /// Publishes `data` (a `serde_json::Value`, or an `Arc<Value>` to share one payload
    /// without copying) as `event_type`.
    ///
    /// Returns false when the bus is disabled or shut down (nothing counted or recorded) or the
    /// filters refuse the event (counted in `events_filtered`); true once accepted. Sync
    /// handlers have run when it returns; async consumers have the event queued (a full
    /// [`Overflow::Block`] queue makes this wait for room).
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

    /// Like [`publish`](Self::publish), but waits for room in full [`Overflow::Block`] queues
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

    // ----- subscribing ------------------------------------------------------------------

    /// Runs `handler` on the publishing thread for every event matching `pattern`, in
    /// subscription order, before `publish` returns. It may return `()` or a `Result`.
    pub fn on<F, R>(&self, pattern: &str, handler: F) -> Result<SubscriptionId, BusError>
    where
        F: Fn(&Event) -> R + Send + Sync + 'static,
        R: IntoHandlerResult,
    {
        let call = Box::new(move |e: &Event| handler(e).into_handler_result());
        self.add_sync(pattern, call, false)
    }

    /// Runs `handler` for the first matching event only, exactly once even when several
    /// threads publish matching events at the same time; then the subscription removes itself.
    pub fn once<F, R>(&self, pattern: &str, handler: F) -> Result<SubscriptionId, BusError>
    where
        F: FnOnce(&Event) -> R + Send + 'static,
        R: IntoHandlerResult,
    {
        let slot = Mutex::new(Some(handler));
        let call = Box::new(move |e: &Event| {
            let handler = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            handler.map_or(Ok(()), |h| h(e).into_handler_result())
        });
        self.add_sync(pattern, call, true)
    }

    fn add_sync(
        &self,
        pattern: &str,
        call: Box<SyncFn>,
        once: bool,
    ) -> Result<SubscriptionId, BusError> {
        let patterns = vec![Pattern::new(pattern)?];
        let (kind, prefix) = if once {
            (SubscriberKind::Once, "once")
        } else {
            (SubscriberKind::Sync, "sync")
        };
        let delivery = Delivery::Sync(SyncHandler {
            call,
            fired: once.then(|| AtomicBool::new(false)),
            counters: Sharded::default(),
        });
        self.register(None, prefix, kind, patterns, delivery, None)
    }

    /// Runs the async `handler` for every event matching `pattern`, on its own worker task
    /// fed by a bounded queue with the bus's default capacity and overflow policy.
    pub fn on_async<F, Fut>(&self, pattern: &str, handler: F) -> Result<SubscriptionId, BusError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHandlerResult,
    {
        self.on_async_with(pattern, self.inner.defaults, handler)
    }

    /// Like [`on_async`](Self::on_async) with explicit queue settings.
    pub fn on_async_with<F, Fut>(
        &self,
        pattern: &str,
        options: QueueOptions,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHandlerResult,
    {
        let patterns = vec![Pattern::new(pattern)?];
        let call: Arc<AsyncFn> = Arc::new(move |e: Event| {
            let fut = handler(e);
            Box::pin(async move { fut.await.into_handler_result() })
        });
        let queue = self.new_queue("async", options)?;
        let delivery = Delivery::Queued {
            queue,
            subscriber: None,
        };
        self.register(
            None,
            "async",
            SubscriberKind::Async,
            patterns,
            delivery,
            Some(Target::Closure(call)),
        )
    }

    /// Attaches a [`Subscriber`] with its own queue and worker task.
    pub fn subscribe(&self, subscriber: Arc<dyn Subscriber>) -> Result<SubscriptionId, BusError> {
        let name = subscriber.name().to_owned();
        let patterns = subscriber
            .patterns()
            .iter()
            .map(|p| Pattern::new(p))
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err(BusError::NoPatterns { name });
        }
        let options = QueueOptions {
            capacity: subscriber
                .queue_capacity()
                .unwrap_or(self.inner.defaults.capacity),
            overflow: subscriber
                .overflow()
                .unwrap_or(self.inner.defaults.overflow),
        };
        let queue = self.new_queue(&name, options)?;
        let delivery = Delivery::Queued {
            queue,
            subscriber: Some(subscriber.clone()),
        };
        self.register(
            Some(name),
            "subscriber",
            SubscriberKind::Subscriber,
            patterns,
            delivery,
            Some(Target::Subscriber(subscriber)),
        )
    }

    fn new_queue(&self, name: &str, options: QueueOptions) -> Result<Arc<SubQueue>, BusError> {
        if options.capacity == 0 {
            return Err(BusError::ZeroCapacity { name: name.into() });
        }
        Ok(Arc::new(SubQueue::new(options.capacity, options.overflow)))
    }

    fn register(
        &self,
        name: Option<String>,
        prefix: &str,
        kind: SubscriberKind,
        patterns: Vec<Pattern>,
        delivery: Delivery,
        target: Option<Target>,
    ) -> Result<SubscriptionId, BusError> {
        let mut reg = self.inner.lock();
        if self.inner.flags.closed.load(Ordering::Relaxed) {
            return Err(BusError::ShutDown);
        }
        let id = reg.next_id;
        reg.next_id += 1;
        let name: Arc<str> = name.unwrap_or_else(|| format!("{prefix}#{id}")).into();
        if let (Some(target), Delivery::Queued { queue, .. }) = (target, &delivery) {
            let handle = crate::runtime::worker_handle(self.inner.runtime.as_ref());
            let worker = handle.spawn(run_worker(queue.clone(), target, name.clone()));
            reg.workers.insert(id, worker);
        }
        reg.subs.push(Arc::new(Subscription {
            id,
            name,
            kind,
            patterns,
            delivery,
        }));
        self.inner.republish(&mut reg);
        Ok(SubscriptionId(id))
    }

    /// Removes a subscription of any kind (wildcards included). An async subscription's worker
    /// handles what is already queued, then stops. False if `id` is not subscribed.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut reg = self.inner.lock();
        let Some(pos) = reg.subs.iter().position(|s| s.id == id.0) else {
            return false;
        };
        let sub = reg.subs.remove(pos);
        let row = row_of(&sub);
        reg.retired_failed += row.failed;
        reg.retired_dropped += row.dropped;
        reg.workers.remove(&id.0);
        if let Delivery::Queued { queue, .. } = &sub.delivery {
            queue.close();
        }
        self.inner.republish(&mut reg);
        true
    }

    // ----- filters and switches ---------------------------------------------------------

    /// Adds a pattern to the allow-list; once any is set, only matching events are accepted.
    pub fn add_filter(&self, pattern: &str) -> Result<(), BusError> {
        let pattern = Pattern::new(pattern)?;
        let mut reg = self.inner.lock();
        if !reg.filters.contains(&pattern) {
            reg.filters.push(pattern);
            self.inner.republish(&mut reg);
        }
        Ok(())
    }

    /// Removes a pattern from the allow-list; false if it was not there.
    pub fn remove_filter(&self, pattern: &str) -> bool {
        let mut reg = self.inner.lock();
        let before = reg.filters.len();
        reg.filters.retain(|p| p.as_str() != pattern);
        let removed = reg.filters.len() != before;
        if removed {
            self.inner.republish(&mut reg);
        }
        removed
    }

    /// Empties the allow-list: every event is accepted again.
    pub fn clear_filters(&self) {
        let mut reg = self.inner.lock();
        reg.filters.clear();
        self.inner.republish(&mut reg);
    }

    /// Replaces the allow-list in one step; on a bad pattern nothing changes.
    pub fn set_filters<I, S>(&self, patterns: I) -> Result<(), BusError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = patterns
            .into_iter()
            .map(|p| Pattern::new(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut reg = self.inner.lock();
        reg.filters = filters;
        self.inner.republish(&mut reg);
        Ok(())
    }

    /// The allow-list, as written.
    pub fn filters(&self) -> Vec<String> {
        self.inner
            .lock()
            .filters
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect()
    }

    /// Turns the bus on or off; while off, `publish` returns false and records nothing.
    pub fn set_enabled(&self, enabled: bool) {
        self.inner.flags.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether the bus accepts events.
    pub fn is_enabled(&self) -> bool {
        self.inner.flags.enabled.load(Ordering::SeqCst)
    }

    // ----- history ----------------------------------------------------------------------

    /// Up to `limit` of the most recent accepted events, oldest first (0 gives none).
    pub fn recent_events(&self, limit: usize) -> Vec<Event> {
        let history = self.inner.lock().history.clone();
        let mut events = history.events();
        let skip = events.len().saturating_sub(limit);
        events.drain(..skip);
        events
    }

    /// Forgets the recorded events.
    pub fn clear_history(&self) {
        let history = self.inner.lock().history.clone();
        history.clear();
    }

    /// Changes how many events the history keeps (0 turns it off), keeping the newest ones.
    pub fn set_history_size(&self, n: usize) {
        let fresh = Arc::new(History::new(n));
        let old = {
            let mut reg = self.inner.lock();
            if reg.history.capacity() == n {
                return;
            }
            let old = std::mem::replace(&mut reg.history, fresh.clone());
            self.inner.republish(&mut reg);
            old
        };
        let kept = old.events();
        let ring = fresh.ring(crate::shard::SHARED_SLOT);
        for event in &kept[kept.len().saturating_sub(n)..] {
            fresh.record(&ring, event);
        }
    }

    // ----- stats ------------------------------------------------------------------------

    /// A snapshot of the counters, with one row per subscription.
    pub fn stats(&self) -> BusStats {
        let (subs, filter_count, history, retired_failed, retired_dropped) = {
            let reg = self.inner.lock();
            (
                reg.subs.clone(),
                reg.filters.len(),
                reg.history.clone(),
                reg.retired_failed,
                reg.retired_dropped,
            )
        };
        let (mut published, mut filtered, mut last) = (0, 0, 0);
        self.inner.totals.for_each(|c| {
            published += c.published.load(Ordering::Relaxed);
            filtered += c.filtered.load(Ordering::Relaxed);
            last = last.max(c.last_event_nanos.load(Ordering::Relaxed));
        });
        let subscribers: Vec<SubscriberStats> = subs.iter().map(|s| row_of(s)).collect();
        BusStats {
            events_published: published,
            events_filtered: filtered,
            events_failed: retired_failed + subscribers.iter().map(|r| r.failed).sum::<u64>(),
            last_event_time: crate::time::from_unix_nanos(last).map(crate::time::rfc3339),
            enabled: self.is_enabled(),
            filters_active: filter_count > 0,
            filter_count,
            history_size: history.len(),
            history_capacity: history.capacity(),
            events_dropped: retired_dropped + subscribers.iter().map(|r| r.dropped).sum::<u64>(),
            stats_resets: self.inner.resets.load(Ordering::Relaxed),
            subscribers,
        }
    }

    /// Zeroes every counter (`stats_resets` counts the resets).
    pub fn reset_stats(&self) {
        let mut reg = self.inner.lock();
        reg.retired_failed = 0;
        reg.retired_dropped = 0;
        self.inner.totals.for_each(|c| {
            c.published.store(0, Ordering::Relaxed);
            c.filtered.store(0, Ordering::Relaxed);
            c.last_event_nanos.store(0, Ordering::Relaxed);
        });
        for sub in &reg.subs {
            match &sub.delivery {
                Delivery::Sync(h) => h.counters.for_each(|c| {
                    c.delivered.store(0, Ordering::Relaxed);
                    c.failed.store(0, Ordering::Relaxed);
                }),
                Delivery::Queued { queue, .. } => queue.reset_counters(),
            }
        }
        self.inner.resets.fetch_add(1, Ordering::Relaxed);
    }

    // ----- draining ---------------------------------------------------------------------

    fn queues(&self) -> Vec<QueuedSub> {
        self.inner
            .lock()
            .subs
            .iter()
            .filter_map(|s| match &s.delivery {
                Delivery::Queued { queue, subscriber } => {
                    Some((s.name.clone(), queue.clone(), subscriber.clone()))
                }
                Delivery::Sync(_) => None,
            })
            .collect()
    }

    /// Waits until every event queued before the call has been handled by its consumer.
    pub async fn flush(&self) {
        for (_, queue, _) in self.queues() {
            queue.flush().await;
        }
    }

    /// [`flush`](Self::flush) for code without a runtime; true if done within `timeout`.
    ///
    /// Fails with [`BusError::BlockingInAsync`] when called from async code.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<bool, BusError> {
        if Handle::try_current().is_ok() {
            return Err(BusError::BlockingInAsync("flush_blocking"));
        }
        Ok(crate::runtime::owned()
            .block_on(async { tokio::time::timeout(timeout, self.flush()).await.is_ok() }))
    }

    /// Stops accepting events and subscriptions, lets every consumer drain its queue and then
    /// finish its own work ([`Subscriber::on_shutdown`]) within `timeout`, and reports what
    /// stayed undelivered. Workers still busy at the deadline are stopped.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + timeout;
        let workers: Vec<(u64, JoinHandle<()>)> = {
            let mut reg = self.inner.lock();
            self.inner.flags.closed.store(true, Ordering::SeqCst);
            reg.workers.drain().collect()
        };
        let queues = self.queues();
        queues.iter().for_each(|(_, q, _)| q.close());
        let mut aborts = Vec::new();
        for (_, worker) in workers {
            aborts.push(worker.abort_handle());
            let _ = tokio::time::timeout_at(deadline, worker).await;
        }
        let mut report = ShutdownReport {
            complete: true,
            ..ShutdownReport::default()
        };
        let mut held_futures = Vec::new();
        for (name, queue, subscriber) in &queues {
            let queued = queue.abandon();
            let name = name.to_string();
            let subscriber = subscriber.clone();
            held_futures.push(async move {
                let held = match subscriber {
                    Some(s) => {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        match tokio::time::timeout_at(deadline, s.on_shutdown(left)).await {
                            Ok(held) => (held, true),
                            Err(_) => (0, false),
                        }
                    }
                    None => (0, true),
                };
                (name, queued, held)
            });
        }
        for (name, queued, (held, finished)) in futures_util::future::join_all(held_futures).await {
            report.complete &= finished && queued == 0 && held == 0;
            if queued + held > 0 {
                report.undelivered += queued + held;
                report.subscribers.push(Undelivered { name, queued, held });
            }
        }
        aborts.iter().for_each(|a| a.abort());
        report
    }
}

fn row_of(sub: &Subscription) -> SubscriberStats {
    let mut row = SubscriberStats {
        id: sub.id,
        name: sub.name.to_string(),
        kind: sub.kind,
        patterns: sub.patterns.iter().map(|p| p.as_str().to_owned()).collect(),
        delivered: 0,
        failed: 0,
        dropped: 0,
        queue_len: 0,
        queue_capacity: 0,
        overflow: None,
        handler_duration: None,
    };
    match &sub.delivery {
        Delivery::Sync(h) => h.counters.for_each(|c| {
            row.delivered += c.delivered.load(Ordering::Relaxed);
            row.failed += c.failed.load(Ordering::Relaxed);
        }),
        Delivery::Queued { queue, .. } => {
            row.delivered = queue.delivered.load(Ordering::Relaxed);
            row.failed = queue.failed.load(Ordering::Relaxed);
            row.dropped = queue.dropped.load(Ordering::Relaxed);
            row.queue_len = queue.len();
            row.queue_capacity = queue.capacity;
            row.overflow = Some(queue.overflow);
            row.handler_duration = Some(queue.durations.snapshot());
        }
    }
    row
}

impl Publisher for EventBus {
    fn publish_shared(&self, event_type: &str, data: Arc<Value>) -> bool {
        self.dispatch(event_type, data, None).is_ok()
    }
}
