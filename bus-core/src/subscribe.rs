//! Attaching and removing consumers: sync handlers, async handlers and [`Subscriber`]s.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::queue::{Closure, SubQueue, Target, run_worker};
use crate::shard::Sharded;
use crate::stats::SubscriberKind;
use crate::subscription::{Delivery, QueueOptions, Subscription, SyncFn, SyncHandler};
use crate::{BusError, Condition, Event, EventBus, IntoHandlerResult, Pattern, Subscriber};

/// Identifies a subscription, for [`EventBus::unsubscribe`].
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SubscriptionId(pub(crate) u64);

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

impl EventBus {
    /// Runs `handler` on the publishing thread for every event matching `pattern`, in
    /// subscription order, before `publish` returns. It may return `()` or a `Result`.
    pub fn on<F, R>(&self, pattern: &str, handler: F) -> Result<SubscriptionId, BusError>
    where
        F: Fn(&Event) -> R + Send + Sync + 'static,
        R: IntoHandlerResult,
    {
        let call = Box::new(move |e: &Event| handler(e).into_handler_result());
        self.add_sync(pattern, None, call, false)
    }

    /// Like [`on`](Self::on), but only for matching events that `condition` accepts too: a
    /// content condition (say a compiled CEL expression from `bus-cel`), checked only for
    /// events whose type matched `pattern`.
    pub fn on_where<F, R>(
        &self,
        pattern: &str,
        condition: Arc<dyn Condition>,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        F: Fn(&Event) -> R + Send + Sync + 'static,
        R: IntoHandlerResult,
    {
        let call = Box::new(move |e: &Event| handler(e).into_handler_result());
        self.add_sync(pattern, Some(condition), call, false)
    }

    /// Like [`on_async`](Self::on_async), but only for matching events that `condition`
    /// accepts too (checked on the publishing side, so refused events never take queue room).
    pub fn on_async_where<F, Fut>(
        &self,
        pattern: &str,
        condition: Arc<dyn Condition>,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHandlerResult,
    {
        self.add_async(
            pattern,
            self.inner.defaults.clone(),
            Some(condition),
            handler,
        )
    }

    /// Like [`on`](Self::on), under a name of your choosing (shown in [`stats`](Self::stats))
    /// and for every event matching any of `patterns`: for work that must see every event
    /// exactly, such as counting, and is cheap enough to run on the publishing thread.
    pub fn on_named<F, R>(
        &self,
        name: &str,
        patterns: &[String],
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        F: Fn(&Event) -> R + Send + Sync + 'static,
        R: IntoHandlerResult,
    {
        let patterns = patterns
            .iter()
            .map(|p| Pattern::new(p))
            .collect::<Result<Vec<_>, _>>()?;
        if patterns.is_empty() {
            return Err(BusError::NoPatterns { name: name.into() });
        }
        let delivery = Delivery::Sync(SyncHandler {
            call: Box::new(move |e: &Event| handler(e).into_handler_result()),
            fired: None,
            counters: Sharded::default(),
        });
        self.register(
            Some(name.to_owned()),
            "sync",
            SubscriberKind::Sync,
            patterns,
            None,
            delivery,
            NO_WORKER,
        )
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
        self.add_sync(pattern, None, call, true)
    }

    fn add_sync(
        &self,
        pattern: &str,
        condition: Option<Arc<dyn Condition>>,
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
        self.register(None, prefix, kind, patterns, condition, delivery, NO_WORKER)
    }

    /// Runs the async `handler` for every event matching `pattern`, on its own worker task
    /// fed by a bounded queue with the bus's default capacity and overflow policy.
    pub fn on_async<F, Fut>(&self, pattern: &str, handler: F) -> Result<SubscriptionId, BusError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHandlerResult,
    {
        self.on_async_with(pattern, self.inner.defaults.clone(), handler)
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
        self.add_async(pattern, options, None, handler)
    }

    fn add_async<F, Fut>(
        &self,
        pattern: &str,
        options: QueueOptions,
        condition: Option<Arc<dyn Condition>>,
        handler: F,
    ) -> Result<SubscriptionId, BusError>
    where
        F: Fn(Event) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoHandlerResult,
    {
        let patterns = vec![Pattern::new(pattern)?];
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
            condition,
            delivery,
            Some(Closure(handler)),
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
        let defaults = &self.inner.defaults;
        let options = QueueOptions {
            capacity: subscriber.queue_capacity().unwrap_or(defaults.capacity),
            overflow: subscriber.overflow().unwrap_or(defaults.overflow),
            priorities: subscriber
                .priorities()
                .or_else(|| defaults.priorities.clone()),
            rate_limit: subscriber.rate_limit().or(defaults.rate_limit),
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
            subscriber.condition(),
            delivery,
            Some(subscriber),
        )
    }

    fn new_queue(&self, name: &str, options: QueueOptions) -> Result<Arc<SubQueue>, BusError> {
        if options.capacity == 0 {
            return Err(BusError::ZeroCapacity { name: name.into() });
        }
        let priorities = options
            .priorities
            .or_else(|| self.inner.defaults.priorities.clone());
        Ok(Arc::new(SubQueue::with_options(
            options.capacity,
            options.overflow,
            priorities,
            options.rate_limit,
        )))
    }

    // Private, with one caller per subscription kind; each names every part.
    #[allow(clippy::too_many_arguments)]
    fn register<T: Target>(
        &self,
        name: Option<String>,
        prefix: &str,
        kind: SubscriberKind,
        patterns: Vec<Pattern>,
        condition: Option<Arc<dyn Condition>>,
        delivery: Delivery,
        target: Option<T>,
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
            condition,
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
        let row = sub.stats_row();
        reg.retired_failed += row.failed;
        reg.retired_dropped += row.dropped;
        reg.workers.remove(&id.0);
        if let Delivery::Queued { queue, .. } = &sub.delivery {
            queue.close();
        }
        self.inner.republish(&mut reg);
        true
    }
}

/// The `target` of a subscription without a worker (a sync handler), typed so `register`
/// knows which worker it would have built.
const NO_WORKER: Option<Arc<dyn Subscriber>> = None;
