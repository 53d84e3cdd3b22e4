//! The state one bus shares among its handles: the subscription registry and the flags and
//! counters every publish reads.
//!
//! Kept apart from the [`EventBus`](crate::EventBus) methods so that routing can read it
//! without depending on the bus's public surface.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::Pattern;
use crate::content::Gates;
use crate::history::History;
use crate::shard::{Padded, Sharded};
use crate::snapshot::Snapshot;
use crate::subscription::{Delivery, QueueOptions, Subscription};

/// Bus-wide counters, one cell per thread slot.
#[derive(Default, Debug)]
pub(crate) struct BusCounters {
    pub(crate) published: AtomicU64,
    pub(crate) filtered: AtomicU64,
    pub(crate) last_event_nanos: AtomicU64,
}

/// What changes only under the lock; every change republishes the [`Snapshot`].
pub(crate) struct Registry {
    pub(crate) next_id: u64,
    pub(crate) subs: Vec<Arc<Subscription>>,
    pub(crate) filters: Vec<Pattern>,
    pub(crate) history: Arc<History>,
    pub(crate) gates: Gates,
    pub(crate) snapshot: Arc<Snapshot>,
    pub(crate) generation: u64,
    pub(crate) workers: HashMap<u64, JoinHandle<()>>,
    /// Failures and drops of subscriptions that are gone, so totals never go backwards.
    pub(crate) retired_failed: u64,
    pub(crate) retired_dropped: u64,
}

/// Flags read on every publish, kept apart from the ever-changing id counter.
#[derive(Default)]
pub(crate) struct Flags {
    pub(crate) enabled: AtomicBool,
    pub(crate) closed: AtomicBool,
    pub(crate) generation: AtomicU64,
}

pub(crate) struct Inner {
    pub(crate) uid: u64,
    pub(crate) flags: Padded<Flags>,
    pub(crate) next_event_id: Padded<AtomicU64>,
    registry: Mutex<Registry>,
    pub(crate) totals: Sharded<BusCounters>,
    pub(crate) resets: AtomicU64,
    pub(crate) defaults: QueueOptions,
    pub(crate) runtime: Option<Handle>,
    pub(crate) id_order: crate::IdOrder,
}

impl Inner {
    /// A bus with no subscriptions; the settings have been validated by the builder.
    pub(crate) fn new(
        history_size: usize,
        enabled: bool,
        filters: Vec<Pattern>,
        gates: Gates,
        defaults: QueueOptions,
        runtime: Option<Handle>,
        id_order: crate::IdOrder,
    ) -> Inner {
        // Process-wide, so that thread-local route caches never mistake one bus for another.
        static NEXT_UID: AtomicU64 = AtomicU64::new(1);
        let history = Arc::new(History::new(history_size, id_order));
        let snapshot = Arc::new(Snapshot::new(
            Vec::new(),
            filters.clone(),
            history.clone(),
            gates.clone(),
        ));
        Inner {
            uid: NEXT_UID.fetch_add(1, Ordering::Relaxed),
            flags: Padded(Flags {
                enabled: AtomicBool::new(enabled),
                ..Flags::default()
            }),
            next_event_id: Padded(AtomicU64::new(0)),
            registry: Mutex::new(Registry {
                next_id: 1,
                subs: Vec::new(),
                filters,
                history,
                gates,
                snapshot,
                generation: 0,
                workers: HashMap::new(),
                retired_failed: 0,
                retired_dropped: 0,
            }),
            totals: Sharded::default(),
            resets: AtomicU64::new(0),
            defaults,
            runtime,
            id_order,
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.flags.generation.load(Ordering::Acquire)
    }

    /// The current snapshot and its generation, read together.
    pub(crate) fn current_snapshot(&self) -> (u64, Arc<Snapshot>) {
        let reg = self.lock();
        (reg.generation, reg.snapshot.clone())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a new snapshot; publishes that start after this returns see it.
    pub(crate) fn republish(&self, reg: &mut Registry) {
        reg.snapshot = Arc::new(Snapshot::new(
            reg.subs.clone(),
            reg.filters.clone(),
            reg.history.clone(),
            reg.gates.clone(),
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
