//! One subscription: its patterns and how events reach it (a sync call or a queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::queue::SubQueue;
use crate::shard::Sharded;
use crate::stats::{SubscriberKind, SubscriberStats};
use crate::{
    Condition, Event, HandlerResult, Overflow, Pattern, PriorityRules, RateLimit, Subscriber,
};

/// Queue settings for one async subscription.
///
/// ```
/// use bus_core::{Overflow, QueueOptions};
///
/// let options = QueueOptions::new(1_000, Overflow::DropOldest)
///     .with_priorities("hook.error*=high,hook.pre_tool=low".parse()?)
///     .with_rate_limit("500/s burst 1000".parse()?);
/// assert_eq!(options.rate_limit.unwrap().burst.get(), 1000);
/// # Ok::<(), bus_core::BusError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Events the queue holds before the overflow policy applies.
    pub capacity: usize,
    /// What happens when the queue is full.
    pub overflow: Overflow,
    /// Priorities by event type (`None`: the bus default; every event `normal` when that is
    /// `None` too). A priority the publisher sets on an event wins over them.
    pub priorities: Option<PriorityRules>,
    /// How fast the consumer is fed (`None`: as fast as it takes events).
    pub rate_limit: Option<RateLimit>,
}

impl QueueOptions {
    /// A queue of `capacity` with `overflow`, no priority rules and no rate limit.
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        QueueOptions {
            capacity,
            overflow,
            priorities: None,
            rate_limit: None,
        }
    }

    /// These options with priority rules.
    pub fn with_priorities(self, priorities: PriorityRules) -> Self {
        QueueOptions {
            priorities: Some(priorities),
            ..self
        }
    }

    /// These options with a rate limit.
    pub fn with_rate_limit(self, rate_limit: RateLimit) -> Self {
        QueueOptions {
            rate_limit: Some(rate_limit),
            ..self
        }
    }
}

/// Counters of a sync handler, one cell per thread slot.
#[derive(Default, Debug)]
pub(crate) struct SyncCounters {
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
}

pub(crate) type SyncFn = dyn Fn(&Event) -> HandlerResult + Send + Sync;

pub(crate) struct SyncHandler {
    pub(crate) call: Box<SyncFn>,
    /// Set for `once` handlers: whoever flips it first is the one call.
    pub(crate) fired: Option<AtomicBool>,
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
    pub(crate) id: u64,
    pub(crate) name: Arc<str>,
    pub(crate) kind: SubscriberKind,
    pub(crate) patterns: Vec<Pattern>,
    /// Checked after the patterns matched (see [`Condition`]); `None` for patterns only.
    pub(crate) condition: Option<Arc<dyn Condition>>,
    pub(crate) delivery: Delivery,
}

impl Subscription {
    /// This subscription's row in [`BusStats`](crate::BusStats), its counters summed.
    pub(crate) fn stats_row(&self) -> SubscriberStats {
        let mut row = SubscriberStats {
            id: self.id,
            name: self.name.to_string(),
            kind: self.kind,
            patterns: self
                .patterns
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            delivered: 0,
            failed: 0,
            dropped: 0,
            queue_len: 0,
            queue_capacity: 0,
            overflow: None,
            handler_duration: None,
            rate_limit: None,
            priorities: None,
        };
        match &self.delivery {
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
                row.rate_limit = queue.gate.stats();
                row.priorities = queue.rules.as_ref().map(ToString::to_string);
            }
        }
        row
    }
}
