//! One subscription: its patterns and how events reach it (a sync call or a queue).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::queue::SubQueue;
use crate::shard::Sharded;
use crate::stats::{SubscriberKind, SubscriberStats};
use crate::{Condition, Event, HandlerResult, Overflow, Pattern, Subscriber};

/// Queue settings for one async subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueOptions {
    /// Events the queue holds before the overflow policy applies.
    pub capacity: usize,
    /// What happens when the queue is full.
    pub overflow: Overflow,
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
            }
        }
        row
    }
}
