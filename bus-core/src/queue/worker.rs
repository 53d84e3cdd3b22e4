//! The worker task of a queue: takes batches of events, runs the handler on each in order,
//! and marks them done so that blocked publishers and flushes move on.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;

use super::{State, SubQueue, Target, queued, sync};
use crate::Event;
use crate::shard::bump;

/// Events a worker takes from its queue under one lock.
pub(super) const BATCH: usize = 256;

/// How many events ahead of the one being handled the worker asks the CPU to fetch.
const PREFETCH_AHEAD: usize = 4;

impl SubQueue {
    /// Waits for events; false once the queue is closed and empty.
    async fn next_batch(&self, out: &mut VecDeque<(u64, Event)>) -> bool {
        loop {
            {
                let mut st = self.lock();
                if st.lanes.is_some() && queued(&st) > 0 {
                    self.preempt.store(false, Ordering::Relaxed);
                    let first = st.taken + 1;
                    let State { items, lanes, .. } = &mut *st;
                    let lanes = lanes.as_mut().expect("checked");
                    lanes.take_batch(items, out, BATCH, first);
                    st.batch_start = first;
                    st.taken = first + out.len() as u64 - 1;
                    return true;
                }
                if !st.items.is_empty() {
                    // `out` is empty: trading buffers holds the lock for a moment, where
                    // moving the events out holds it while their cache lines come over from
                    // the publishers' core (publishers then wait, and yield their thread).
                    if st.items.len() <= BATCH {
                        std::mem::swap(&mut st.items, out);
                    } else {
                        out.extend(st.items.drain(..BATCH));
                    }
                    st.batch_start = out.front().expect("not empty").0;
                    st.taken = out.back().expect("not empty").0;
                    return true;
                }
                if st.closed {
                    return false;
                }
                st.worker_idle = true;
            }
            // A push between the unlock and this await leaves a permit: no lost wakeup.
            self.work.notified().await;
        }
    }

    /// Marks event `seq` handled, which makes room for one more. Blocked publishers are woken
    /// every `wake_stride` events and at the end of each batch, not per event: a wake is a
    /// system call, dearer than handling a small event.
    fn finished(&self, seq: u64, end_of_batch: bool) {
        self.done.store(seq, Ordering::Release);
        if !end_of_batch && seq & (self.wake_stride - 1) != 0 {
            return;
        }
        // Pairs with the publishers' increment-then-check: one of the two sees the other.
        sync::fence(Ordering::SeqCst);
        if self.waiting_for_room.load(Ordering::SeqCst) > 0 {
            self.wake_sync_waiters();
            self.room_async.notify_waiters();
        }
    }

    /// True (once) when a higher-priority event arrived for the batch in flight.
    fn take_preempt(&self) -> bool {
        self.preempt.load(Ordering::Relaxed) && self.preempt.swap(false, Ordering::Relaxed)
    }

    /// Gives the unhandled rest of the batch in flight back to its lanes; the first of `rest`
    /// has take sequence number `from_seq`.
    fn put_back(&self, from_seq: u64, rest: Vec<Event>) {
        let mut st = self.lock();
        let from = (from_seq - st.batch_start) as usize;
        let State { items, lanes, .. } = &mut *st;
        if let Some(lanes) = lanes.as_mut() {
            lanes.put_back(items, from, rest);
            st.taken = from_seq - 1;
        }
    }
}

/// The worker loop: handles events one at a time, in queue order, until the queue closes.
pub(crate) async fn run_worker<T: Target>(queue: Arc<SubQueue>, target: T, name: Arc<str>) {
    let key = queue.key();
    sync::as_worker_of(key, work(queue, target, name)).await;
}

async fn work<T: Target>(queue: Arc<SubQueue>, target: T, name: Arc<str>) {
    let _exit = WorkerExit(queue.clone());
    let mut batch = VecDeque::with_capacity(BATCH);
    // The rate limit already let the next event through (it was put back for a higher one).
    let mut prepaid = false;
    while queue.next_batch(&mut batch).await {
        // Events were written on the publishers' cores: fetch a few ahead of the handler.
        for (_, event) in batch.iter().take(PREFETCH_AHEAD) {
            event.prefetch();
        }
        // One clock reading per event: the end of one handler call starts the next one's
        // time (the few bookkeeping steps between them count towards it).
        let mut started = crate::clock::start();
        while let Some((seq, event)) = batch.pop_front() {
            // A shutdown counted this one and the rest as undelivered: they stay so.
            if queue.abandoned.load(Ordering::Acquire) {
                return;
            }
            if let Some((_, later)) = batch.get(PREFETCH_AHEAD - 1) {
                later.prefetch();
            }
            if queue.gate.is_active() && !std::mem::take(&mut prepaid) {
                let admitted = queue.gate.admit(&event).await;
                started = crate::clock::start();
                if !admitted {
                    queue.dropped.fetch_add(1, Ordering::Relaxed);
                    drop(event);
                    queue.finished(seq, batch.is_empty());
                    continue;
                }
                // A higher-priority event that came while this one waited goes first.
                if queue.take_preempt() {
                    prepaid = true;
                    let rest = std::iter::once(event).chain(batch.drain(..).map(|(_, e)| e));
                    queue.put_back(seq, rest.collect());
                    break;
                }
            }
            let id = event.id();
            // A closure may panic before it returns its future (say, unwrapping the payload
            // ahead of its `async` block): that counts as the handler panicking, too.
            let call = std::panic::catch_unwind(AssertUnwindSafe(|| target.call(event)));
            let outcome = match call {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            let ended = crate::clock::start();
            queue
                .durations
                .record_nanos(crate::clock::nanos_between(started, ended));
            started = ended;
            // This worker is the only writer of these counters.
            match outcome {
                Ok(Ok(())) => bump(&queue.delivered, true),
                Ok(Err(error)) => {
                    bump(&queue.failed, true);
                    tracing::warn!(subscriber = %name, event_id = id, %error, "event handler failed");
                }
                Err(panic) => {
                    bump(&queue.failed, true);
                    tracing::error!(subscriber = %name, event_id = id, panic = %crate::panic_message(&panic), "event handler panicked");
                }
            }
            let preempted = !batch.is_empty() && queue.take_preempt();
            queue.finished(seq, batch.is_empty() || preempted);
            if preempted {
                queue.put_back(seq + 1, batch.drain(..).map(|(_, e)| e).collect());
                break;
            }
        }
        queue.wake_flushers();
    }
}

/// Runs when a worker stops, however it stops (drained after a close, aborted at shutdown,
/// or its runtime shut down): the queue takes no more events and nobody waits on it, so a
/// `Block` publisher or a `flush` can never hang on a worker that is gone.
struct WorkerExit(Arc<SubQueue>);

impl Drop for WorkerExit {
    fn drop(&mut self) {
        let queue = &self.0;
        let mut st = queue.lock();
        st.closed = true;
        st.worker_idle = true;
        let orphans = std::mem::take(&mut st.items);
        let lane_orphans = st.lanes.as_mut().map(|l| l.drain());
        drop(st);
        let in_lanes = lane_orphans
            .as_ref()
            .map_or(0, |(low, high)| low.len() + high.len());
        queue
            .dropped
            .fetch_add((orphans.len() + in_lanes) as u64, Ordering::Relaxed);
        drop((orphans, lane_orphans));
        queue.wake_sync_waiters();
        queue.room_async.notify_waiters();
        queue.wake_flushers();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Overflow, Priority};

    fn ids(batch: &VecDeque<(u64, Event)>) -> Vec<u64> {
        batch.iter().map(|(_, e)| e.id()).collect()
    }

    #[tokio::test]
    async fn batches_take_the_oldest_in_order_whether_moved_or_traded_whole() {
        let q = SubQueue::new(1000, Overflow::Block);
        for id in 1..=300 {
            let event = Event::new(id, "t", serde_json::json!(id));
            assert!(matches!(
                q.try_push(event, Priority::Normal),
                crate::queue::Push::Queued
            ));
        }
        let mut batch = VecDeque::new();
        // More than a batch queued: the oldest BATCH are moved out, the rest stay.
        assert!(q.next_batch(&mut batch).await);
        assert_eq!(ids(&batch), (1..=BATCH as u64).collect::<Vec<_>>());
        {
            let st = q.lock();
            assert_eq!((st.batch_start, st.taken), (1, BATCH as u64));
            assert_eq!(st.items.len(), 300 - BATCH);
        }
        assert_eq!(q.len(), 300, "taken and unfinished events still count");
        for (seq, _) in batch.drain(..) {
            q.finished(seq, false);
        }
        assert_eq!(q.len(), 300 - BATCH);
        // What is left fits in one batch: the queue's buffer is traded for the empty one.
        assert!(q.next_batch(&mut batch).await);
        assert_eq!(ids(&batch), (BATCH as u64 + 1..=300).collect::<Vec<_>>());
        {
            let st = q.lock();
            assert_eq!((st.batch_start, st.taken), (BATCH as u64 + 1, 300));
            assert!(st.items.is_empty());
        }
        for (seq, _) in batch.drain(..) {
            q.finished(seq, false);
        }
        assert_eq!(q.len(), 0);
        assert!(q.flushed_through(300));
        // Pushes after a trade land in the traded-in buffer, in order.
        let event = Event::new(301, "t", serde_json::json!(301));
        assert!(matches!(
            q.try_push(event, Priority::Normal),
            crate::queue::Push::Queued
        ));
        assert!(q.next_batch(&mut batch).await);
        assert_eq!(ids(&batch), [301]);
    }
}
