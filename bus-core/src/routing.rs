//! From an event type to the handlers it reaches, without scanning every pattern per publish.
//!
//! Subscriptions and filters live in an immutable [`Snapshot`], replaced on every change and
//! tagged with a generation number. Each publishing thread keeps, per bus, the snapshot it
//! last saw and a bounded map from event type to its resolved [`Route`]. A publish costs one
//! atomic load (is my snapshot current?) and one hash lookup; nothing on that path is shared
//! with other publishing threads.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, Weak};

use rustc_hash::FxHashMap;

use crate::history::{History, Ring};
use crate::ids::IdBlock;
use crate::queue::SubQueue;
use crate::registry::{BusCounters, Inner};
use crate::shard::{Padded, SHARED_SLOT, SlotLease};
use crate::snapshot::Snapshot;
use crate::subscription::{Delivery, Subscription, SyncCounters};
use crate::{Condition, Validator};

/// Buses whose routes a thread keeps at once.
const BUSES_PER_THREAD: usize = 4;
/// Event types whose routes a thread keeps per bus; past this the map starts over, so a
/// stream of distinct event types cannot grow memory.
const ROUTES_PER_BUS: usize = 1024;

/// A sync handler together with this thread's counter cell for it.
pub(crate) struct SyncTarget {
    pub(crate) sub: Arc<Subscription>,
    pub(crate) counters: Arc<Padded<SyncCounters>>,
    pub(crate) condition: Option<Arc<dyn Condition>>,
}

/// A queued consumer, this event type's priority there, and its condition, if it has one.
pub(crate) struct QueuedTarget {
    pub(crate) queue: Arc<SubQueue>,
    pub(crate) priority: crate::Priority,
    pub(crate) condition: Option<Arc<dyn Condition>>,
}

/// What publishing one event type on one thread does.
pub(crate) struct Route {
    pub(crate) event_type: compact_str::CompactString,
    /// True when the counter cells belong to this thread alone (see [`crate::shard::bump`]).
    pub(crate) exclusive: bool,
    pub(crate) allowed: bool,
    pub(crate) history: Arc<History>,
    /// This thread's ring in `history`.
    pub(crate) ring: Arc<Padded<Ring>>,
    pub(crate) totals: Arc<Padded<BusCounters>>,
    /// The queues it reaches, each with this event type's priority there.
    pub(crate) queued: Box<[QueuedTarget]>,
    pub(crate) sync: Box<[SyncTarget]>,
    /// The payload check, when one is installed.
    pub(crate) validator: Option<Arc<dyn Validator>>,
    /// The allow-list's condition, when one is set and the patterns allowed this type.
    pub(crate) filter_where: Option<Arc<dyn Condition>>,
    /// This thread's block of ids on this bus, shared by its routes (per-thread ids only).
    pub(crate) ids: Rc<IdBlock>,
}

impl Route {
    fn build(
        snapshot: &Snapshot,
        event_type: &str,
        slot: usize,
        totals: Arc<Padded<BusCounters>>,
        ids: Rc<IdBlock>,
    ) -> Route {
        let exclusive = slot != SHARED_SLOT;
        let allowed = snapshot.allows(event_type);
        let mut queued = Vec::new();
        let mut sync = Vec::new();
        if allowed {
            for i in snapshot.matching(event_type) {
                let sub = &snapshot.subs[i];
                match &sub.delivery {
                    Delivery::Sync(handler) => sync.push(SyncTarget {
                        sub: sub.clone(),
                        counters: handler.counters.cell(slot),
                        condition: sub.condition.clone(),
                    }),
                    Delivery::Queued { queue, .. } => queued.push(QueuedTarget {
                        queue: queue.clone(),
                        priority: queue.type_priority(event_type),
                        condition: sub.condition.clone(),
                    }),
                }
            }
        }
        Route {
            event_type: event_type.into(),
            exclusive,
            allowed,
            history: snapshot.history.clone(),
            ring: snapshot.history.ring(slot),
            totals,
            queued: queued.into(),
            sync: sync.into(),
            validator: snapshot.gates.validator.clone(),
            filter_where: snapshot.gates.filter_where.clone().filter(|_| allowed),
            ids,
        }
    }
}

/// One thread's cached view of one bus.
struct LocalBus {
    uid: u64,
    owner: Weak<Inner>,
    generation: u64,
    snapshot: Arc<Snapshot>,
    totals: Arc<Padded<BusCounters>>,
    ids: Rc<IdBlock>,
    routes: FxHashMap<Box<str>, Rc<Route>>,
    /// The route used last: a producer usually publishes runs of one event type, and a
    /// string compare is cheaper than hashing.
    last: Option<Rc<Route>>,
}

/// A thread's caches, and the slot lease whose counter cells they write: both go together,
/// so the slot cannot pass to another thread while this one still writes its cells.
struct LocalState {
    lease: SlotLease,
    buses: Vec<LocalBus>,
}

thread_local! {
    static LOCAL: RefCell<LocalState> = RefCell::new(LocalState {
        lease: SlotLease::acquire(),
        buses: Vec::new(),
    });
}

/// Things evicted from a thread's cache are dropped only after the cache is released: their
/// destructors may run user code (a handler's captures), which may publish.
type Garbage = Vec<Box<dyn std::any::Any>>;

/// The route of `event_type` on `bus` for the calling thread.
// Inlined into the publish path: see `History::record_new`.
#[inline]
pub(crate) fn route(bus: &Arc<Inner>, event_type: &str) -> Rc<Route> {
    let hit = LOCAL.try_with(|cell| {
        let local = cell.try_borrow().ok()?;
        // The bus used last sits first.
        let cached = local.buses.first()?;
        if cached.uid != bus.uid || cached.generation != bus.generation() {
            return None;
        }
        let last = cached.last.as_ref()?;
        crate::text::same_text(&last.event_type, event_type).then(|| last.clone())
    });
    match hit {
        Ok(Some(route)) => route,
        _ => route_slow(bus, event_type),
    }
}

fn route_slow(bus: &Arc<Inner>, event_type: &str) -> Rc<Route> {
    let mut garbage: Garbage = Vec::new();
    let cached = LOCAL.try_with(|cell| {
        let mut local = cell.try_borrow_mut().ok()?;
        let LocalState { lease, buses } = &mut *local;
        Some(cached_route(
            buses,
            lease.slot(),
            bus,
            event_type,
            &mut garbage,
        ))
    });
    drop(garbage);
    match cached {
        Ok(Some(route)) => route,
        // Thread-locals torn down, or re-entered from a destructor: resolve without caching,
        // counting in the shared cell.
        _ => {
            let (_, snapshot) = bus.current_snapshot();
            let totals = bus.totals.cell(SHARED_SLOT);
            // A block of its own, used for at most this one event: a gap, never a repeat.
            let ids = Rc::new(IdBlock::default());
            Rc::new(Route::build(
                &snapshot,
                event_type,
                SHARED_SLOT,
                totals,
                ids,
            ))
        }
    }
}

fn cached_route(
    buses: &mut Vec<LocalBus>,
    slot: usize,
    bus: &Arc<Inner>,
    event_type: &str,
    garbage: &mut Garbage,
) -> Rc<Route> {
    let generation = bus.generation();
    match buses.iter().position(|b| b.uid == bus.uid) {
        Some(pos) => buses.swap(0, pos),
        None => {
            let before = buses.len();
            buses.retain(|b| b.owner.strong_count() > 0);
            if buses.len() == before && buses.len() >= BUSES_PER_THREAD {
                garbage.push(Box::new(buses.pop()));
            }
            let (generation, snapshot) = bus.current_snapshot();
            buses.push(LocalBus {
                uid: bus.uid,
                owner: Arc::downgrade(bus),
                generation,
                snapshot,
                totals: bus.totals.cell(slot),
                ids: Rc::default(),
                routes: FxHashMap::default(),
                last: None,
            });
            let newest = buses.len() - 1;
            buses.swap(0, newest);
        }
    }
    let local = &mut buses[0];
    if local.generation != generation {
        let (generation, snapshot) = bus.current_snapshot();
        local.generation = generation;
        garbage.push(Box::new(std::mem::replace(&mut local.snapshot, snapshot)));
        garbage.push(Box::new(std::mem::take(&mut local.routes)));
        garbage.push(Box::new(local.last.take()));
    }
    let route = match local.routes.get(event_type) {
        Some(route) => route.clone(),
        None => {
            if local.routes.len() >= ROUTES_PER_BUS {
                garbage.push(Box::new(std::mem::take(&mut local.routes)));
            }
            let route = Rc::new(Route::build(
                &local.snapshot,
                event_type,
                slot,
                local.totals.clone(),
                local.ids.clone(),
            ));
            local.routes.insert(event_type.into(), route.clone());
            route
        }
    };
    local.last = Some(route.clone());
    route
}
