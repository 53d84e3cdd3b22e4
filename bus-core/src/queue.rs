//! The bounded queue in front of each async consumer: what publishers push, flushes and
//! closing. Its worker's side (taking batches, marking events done) is in [`worker`].

#[cfg(all(test, feature = "loom"))]
mod loom_model;
mod sync;
mod worker;

pub(crate) use worker::run_worker;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

// The wake-up protocol's primitives (loom's, in the model tests); the plain counters above
// stay `std`'s.
use sync::{AtomicBool, AtomicUsize, Condvar, Mutex, Notify};

use crate::gate::RateGate;
use crate::lanes::Lanes;
use crate::shard::Padded;
use crate::stats::DurationRecorder;
use crate::{
    Event, HandlerResult, IntoHandlerResult, Overflow, Priority, PriorityRules, RateLimit,
    Subscriber,
};

/// What a worker calls for each event. Each worker is built for its own target type, so an
/// `on_async` closure's future is awaited where it is, not boxed per event.
pub(crate) trait Target: Send + Sync + 'static {
    /// Starts handling `event`; a panic here counts as the handler panicking.
    fn call(&self, event: Event) -> impl Future<Output = HandlerResult> + Send;
}

/// An async closure, as registered with `on_async`.
pub(crate) struct Closure<F>(pub(crate) F);

impl<F, Fut> Target for Closure<F>
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: IntoHandlerResult,
{
    fn call(&self, event: Event) -> impl Future<Output = HandlerResult> + Send {
        let future = (self.0)(event);
        async move { future.await.into_handler_result() }
    }
}

impl Target for Arc<dyn Subscriber> {
    fn call(&self, event: Event) -> impl Future<Output = HandlerResult> + Send {
        self.handle(event)
    }
}

/// Result of offering an event to a queue.
#[derive(Debug)]
pub(crate) enum Push {
    /// Queued (possibly after evicting the oldest event).
    Queued,
    /// Refused: full under `DropNewest`, closed, or a `Block` that would deadlock.
    Dropped,
    /// Full under `Block`: the caller must wait for room and retry.
    Full(Event),
}

/// The queue's lock held.
type Guard<'a> = sync::SpinGuard<'a, State>;

struct State {
    /// The queue: the normal lane once there are priority lanes.
    items: VecDeque<(u64, Event)>,
    /// The high and low lanes, from the first non-normal event on (see [`crate::lanes`]).
    /// While there are none, pushes append to `items` and batches take from its front; with
    /// them, the worker's batches are numbered by a take sequence of their own.
    lanes: Option<Box<Lanes>>,
    /// Sequence number of the last event pushed.
    pushed: u64,
    /// Sequence numbers of the first and last event of the batch the worker took most
    /// recently. The queue always holds a contiguous run of sequence numbers (pushes append,
    /// evictions and batches take from the front), so a batch is the run `batch_start..=taken`.
    batch_start: u64,
    taken: u64,
    worker_idle: bool,
    closed: bool,
}

pub(crate) struct SubQueue {
    /// Padded, like the worker's per-event progress below: the two sides write them, and
    /// sharing a cache line would bounce it between their cores on every event.
    state: Padded<sync::SpinLock<State>>,
    pub(crate) capacity: usize,
    pub(crate) overflow: Overflow,
    /// The queue's priority rules, resolved per event type by the routes.
    pub(crate) rules: Option<PriorityRules>,
    /// The consumer's rate limit.
    pub(crate) gate: RateGate,
    /// Set by a push above the lowest priority of the batch in flight: the worker puts the
    /// rest of that batch back and takes again, so the new event goes next.
    preempt: AtomicBool,
    /// Set when a shutdown gives up on the worker and counts what it has not finished as
    /// undelivered: the worker handles none of those afterwards (it checks before each one).
    abandoned: AtomicBool,
    /// Blocked publishers are woken every this many events: a power of two, so that the
    /// worker tests it with a mask rather than a division.
    wake_stride: u64,
    work: Notify,
    room_async: Notify,
    /// What `Block` publishers on plain threads wait on, with the mutex it pairs with.
    room_sync: Condvar,
    room_lock: Mutex<()>,
    progress: Notify,
    flush_waiters: AtomicUsize,
    /// Publishers (sync or async) waiting for room in a full `Block` queue.
    waiting_for_room: AtomicUsize,
    /// Sequence number of the last event the worker finished.
    done: Padded<sync::AtomicU64>,
    pub(crate) delivered: Padded<AtomicU64>,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) durations: Padded<DurationRecorder>,
}

impl SubQueue {
    #[cfg(test)]
    pub(crate) fn new(capacity: usize, overflow: Overflow) -> Self {
        Self::with_options(capacity, overflow, None, None)
    }

    pub(crate) fn with_options(
        capacity: usize,
        overflow: Overflow,
        rules: Option<PriorityRules>,
        rate_limit: Option<RateLimit>,
    ) -> Self {
        SubQueue {
            state: Padded(sync::SpinLock::new(State {
                items: VecDeque::with_capacity(capacity.min(1024)),
                lanes: None,
                pushed: 0,
                batch_start: 0,
                taken: 0,
                worker_idle: false,
                closed: false,
            })),
            capacity,
            overflow,
            rules: rules.filter(|r| !r.is_empty()),
            gate: RateGate::new(rate_limit),
            preempt: AtomicBool::new(false),
            abandoned: AtomicBool::new(false),
            wake_stride: power_of_two_at_most((capacity as u64 / 8).max(1)),
            work: Notify::new(),
            room_async: Notify::new(),
            room_sync: Condvar::new(),
            room_lock: Mutex::new(()),
            progress: Notify::new(),
            flush_waiters: AtomicUsize::new(0),
            waiting_for_room: AtomicUsize::new(0),
            done: Padded(sync::AtomicU64::new(0)),
            delivered: Padded(AtomicU64::new(0)),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            durations: Padded(DurationRecorder::default()),
        }
    }

    fn lock(&self) -> Guard<'_> {
        sync::lock(&self.state)
    }

    /// Wakes `Block` publishers waiting on a plain thread. Taking their mutex first orders
    /// this after a waiter's last look at the queue: it is either waiting, or will see why.
    pub(super) fn wake_sync_waiters(&self) {
        drop(
            self.room_lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.room_sync.notify_all();
    }

    fn key(&self) -> usize {
        self as *const Self as usize
    }

    /// Events of the batch in flight that the worker has not finished.
    fn unfinished(&self, st: &State) -> u64 {
        let finished_through = self
            .done
            .load(Ordering::SeqCst)
            .max(st.batch_start.saturating_sub(1));
        st.taken.saturating_sub(finished_through)
    }

    /// Events accepted and not yet handled: queued, or taken by the worker and unfinished.
    /// This is what the capacity bounds.
    fn occupancy(&self, st: &State) -> usize {
        queued(st) + self.unfinished(st) as usize
    }

    /// The priority an event of `event_type` has in this queue when its publisher gave none.
    pub(crate) fn type_priority(&self, event_type: &str) -> Priority {
        self.rules
            .as_ref()
            .map_or(Priority::Normal, |r| r.priority_of_type(event_type))
    }

    /// True when the queue has room. The worker's progress counter is read only when the
    /// queue might be full: it is written once per event on another core.
    fn has_room(&self, st: &State) -> bool {
        let whole_batch = (st.taken + 1).saturating_sub(st.batch_start.max(1)) as usize;
        queued(st) + whole_batch < self.capacity || self.occupancy(st) < self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        let st = self.lock();
        self.occupancy(&st)
    }

    /// Offers an event without waiting; `type_priority` is its type's priority in this queue
    /// (see [`type_priority`](Self::type_priority)), which the event's own may override.
    pub(crate) fn try_push(&self, event: Event, type_priority: Priority) -> Push {
        let priority = event.priority().unwrap_or(type_priority);
        let mut st = self.lock();
        if priority != Priority::Normal || st.lanes.is_some() {
            return self.try_push_prioritized(st, event, priority);
        }
        if st.closed {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Push::Dropped;
        }
        if !self.has_room(&st) {
            match self.overflow {
                Overflow::DropNewest => {
                    drop(st);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return Push::Dropped;
                }
                Overflow::DropOldest => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    // Events already in the handler's hands cannot be taken back: with
                    // nothing queued, the newest is the one that gives way.
                    let Some(evicted) = st.items.pop_front() else {
                        return Push::Dropped;
                    };
                    self.enqueue(st, event);
                    drop(evicted);
                    return Push::Queued;
                }
                Overflow::Block => {
                    drop(st);
                    return self.refuse_full(event);
                }
            }
        }
        self.enqueue(st, event);
        Push::Queued
    }

    /// [`try_push`](Self::try_push) once the queue has (or is about to have) priority lanes.
    fn try_push_prioritized(&self, mut st: Guard<'_>, event: Event, priority: Priority) -> Push {
        if st.closed {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Push::Dropped;
        }
        if st.lanes.is_none() {
            st.lanes = Some(Box::new(Lanes::new(st.batch_start, st.taken)));
        }
        if !self.has_room(&st) {
            if self.overflow == Overflow::Block {
                drop(st);
                return self.refuse_full(event);
            }
            self.dropped.fetch_add(1, Ordering::Relaxed);
            let State { items, lanes, .. } = &mut *st;
            let lanes = lanes.as_mut().expect("created above");
            if !lanes.evict_for(items, priority, self.overflow) {
                return Push::Dropped;
            }
        }
        st.pushed += 1;
        let seq = st.pushed;
        let worker_busy = !st.worker_idle;
        let State { items, lanes, .. } = &mut *st;
        let lanes = lanes.as_mut().expect("created above");
        lanes.push(items, seq, event, priority);
        if worker_busy && lanes.floor.is_some_and(|floor| priority > floor) {
            self.preempt.store(true, Ordering::Relaxed);
        }
        let wake = std::mem::take(&mut st.worker_idle);
        drop(st);
        if wake {
            self.work.notify_one();
        }
        Push::Queued
    }

    /// A full `Block` queue: the caller waits and retries, unless it is this queue's own
    /// worker, which would wait for itself.
    fn refuse_full(&self, event: Event) -> Push {
        if sync::runs_in_worker_of(self.key()) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "a handler published into its own full queue; dropped the event instead of deadlocking"
            );
            return Push::Dropped;
        }
        Push::Full(event)
    }

    fn enqueue(&self, mut st: Guard<'_>, event: Event) {
        st.pushed += 1;
        let seq = st.pushed;
        st.items.push_back((seq, event));
        let wake = std::mem::take(&mut st.worker_idle);
        drop(st);
        if wake {
            self.work.notify_one();
        }
    }

    /// Offers an event, blocking the thread while a `Block` queue is full.
    pub(crate) fn push_blocking(&self, mut event: Event, type_priority: Priority) -> Push {
        loop {
            match self.try_push(event, type_priority) {
                Push::Full(back) => event = back,
                done => return done,
            }
            let wait = || {
                let mut room = self
                    .room_lock
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                announce(&self.waiting_for_room);
                while {
                    let st = self.lock();
                    !st.closed && self.occupancy(&st) >= self.capacity
                } {
                    room = self
                        .room_sync
                        .wait(room)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                self.waiting_for_room.fetch_sub(1, Ordering::SeqCst);
            };
            match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                // Let the runtime move its other tasks (this queue's worker, maybe) elsewhere.
                Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait),
                _ => wait(),
            }
        }
    }

    /// Offers an event, waiting asynchronously while a `Block` queue is full.
    pub(crate) async fn push_async(&self, mut event: Event, type_priority: Priority) -> Push {
        announce(&self.waiting_for_room);
        let _leave = Leave(&self.waiting_for_room);
        loop {
            let room = self.room_async.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push(event, type_priority) {
                Push::Full(back) => event = back,
                done => return done,
            }
            room.await;
        }
    }

    fn wake_flushers(&self) {
        // Orders the worker's progress before the check, as `finished` does.
        sync::fence(Ordering::SeqCst);
        if self.flush_waiters.load(Ordering::SeqCst) > 0 {
            self.progress.notify_waiters();
        }
    }

    /// The sequence number of the newest queued event, the target of a flush.
    pub(crate) fn flush_target(&self) -> u64 {
        self.lock().pushed
    }

    /// True when every event up to `target` has been handled, evicted or abandoned.
    pub(crate) fn flushed_through(&self, target: u64) -> bool {
        let st = self.lock();
        if let Some(lanes) = &st.lanes {
            // Batches are numbered by take order here: what matters is the batch in flight's
            // events pushed at or before `target`, which the worker finishes in batch order.
            return lanes.none_queued_through(&st.items, target)
                && (st.worker_idle
                    || lanes
                        .batch_done_needed(st.batch_start, target)
                        .is_none_or(|need| self.done.load(Ordering::SeqCst) >= need));
        }
        let none_queued = st.items.front().is_none_or(|(seq, _)| *seq > target);
        // An idle worker has finished every batch. Otherwise events of the batch in flight
        // finish in order, and events of `target` or older that are not in it were evicted.
        none_queued && (st.worker_idle || self.done.load(Ordering::SeqCst) >= target.min(st.taken))
    }

    /// Waits until every event queued before the call has been handled.
    pub(crate) async fn flush(&self) {
        let target = self.flush_target();
        announce(&self.flush_waiters);
        let _leave = Leave(&self.flush_waiters);
        loop {
            let progressed = self.progress.notified();
            tokio::pin!(progressed);
            progressed.as_mut().enable();
            if self.flushed_through(target) {
                return;
            }
            progressed.await;
        }
    }

    /// Stops accepting events; the worker handles what is queued, then exits.
    pub(crate) fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        drop(st);
        self.work.notify_one();
        self.wake_sync_waiters();
        self.room_async.notify_waiters();
    }

    /// Empties the queue of a worker that is being stopped, returning how many events were
    /// abandoned: those still queued plus those of its batch it had not finished.
    pub(crate) fn abandon(&self) -> u64 {
        let mut st = self.lock();
        st.closed = true;
        self.abandoned.store(true, Ordering::Release);
        let queued = std::mem::take(&mut st.items);
        let lanes = st.lanes.as_mut().map(|l| l.drain());
        let unfinished = self.unfinished(&st);
        // Counted as undelivered here; nothing is left for a flush to wait for.
        st.worker_idle = true;
        drop(st);
        self.wake_flushers();
        let in_lanes = lanes
            .as_ref()
            .map_or(0, |(low, high)| low.len() + high.len());
        queued.len() as u64 + in_lanes as u64 + unfinished
    }

    pub(crate) fn reset_counters(&self) {
        self.delivered.store(0, Ordering::Relaxed);
        self.failed.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        // The rate limit's own counts are left: exported as counters, they must not go back.
        self.durations.reset();
    }
}

/// The largest power of two not above `n` (at least 1).
fn power_of_two_at_most(n: u64) -> u64 {
    1 << (63 - n.max(1).leading_zeros())
}

/// Events waiting in every lane.
fn queued(st: &State) -> usize {
    st.items.len() + st.lanes.as_ref().map_or(0, |l| l.len())
}

/// Counts one more waiter before it looks at the queue. With the worker's fence after its
/// progress (in `finished` and `wake_flushers`), a fence on each side makes one of the two
/// see the other: the waiter sees the progress, or the worker sees the waiter and wakes it.
/// Without this one the pairing rests on the count's `SeqCst` read-modify-write taking part
/// in the single total order, which loom does not model (it reads `SeqCst` accesses as
/// acquire/release, and `loom_model` then reports the lost wake-up); with it, loom can check
/// the protocol. Waiting is the slow path: the fence costs nothing that matters.
fn announce(waiters: &AtomicUsize) {
    waiters.fetch_add(1, Ordering::SeqCst);
    sync::fence(Ordering::SeqCst);
}

/// Decrements a waiter count when a wait ends, however it ends (a dropped future included).
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: u64) -> Event {
        Event::new(id, "t", json!(id))
    }

    impl SubQueue {
        fn try_push_n(&self, event: Event) -> Push {
            self.try_push(event, Priority::Normal)
        }
    }

    #[test]
    fn wake_strides_are_powers_of_two() {
        let strides: Vec<u64> = [0, 1, 2, 3, 1250, 1024, u64::MAX]
            .into_iter()
            .map(power_of_two_at_most)
            .collect();
        assert_eq!(strides, [1, 1, 2, 2, 1024, 1024, 1 << 63]);
    }

    #[test]
    fn drop_newest_keeps_what_is_queued() {
        let q = SubQueue::new(2, Overflow::DropNewest);
        assert!(matches!(q.try_push_n(ev(1)), Push::Queued));
        assert!(matches!(q.try_push_n(ev(2)), Push::Queued));
        assert!(matches!(q.try_push_n(ev(3)), Push::Dropped));
        assert_eq!(q.dropped.load(Ordering::Relaxed), 1);
        let ids: Vec<u64> = q.lock().items.iter().map(|(_, e)| e.id()).collect();
        assert_eq!(ids, vec![1, 2]);
    }

    #[test]
    fn drop_oldest_evicts_the_front() {
        let q = SubQueue::new(2, Overflow::DropOldest);
        for i in 1..=4 {
            assert!(matches!(q.try_push_n(ev(i)), Push::Queued));
        }
        assert_eq!(q.dropped.load(Ordering::Relaxed), 2);
        let ids: Vec<u64> = q.lock().items.iter().map(|(_, e)| e.id()).collect();
        assert_eq!(ids, vec![3, 4]);
    }

    #[test]
    fn block_reports_full_and_closed_queues_drop() {
        let q = SubQueue::new(1, Overflow::Block);
        assert!(matches!(q.try_push_n(ev(1)), Push::Queued));
        assert!(matches!(q.try_push_n(ev(2)), Push::Full(_)));
        q.close();
        assert!(matches!(q.try_push_n(ev(3)), Push::Dropped));
    }
}
