//! Model tests of the queue's wake-up protocol: loom runs the queue's own code (its lock,
//! atomics, fences, condition variable and notifiers swapped for loom's, see [`super::sync`])
//! through every interleaving of a publisher and the worker, within a preemption bound.
//!
//! A lost wake-up leaves both sides waiting, which loom reports as a deadlock; an early
//! flush shows as a count short of what was pushed. Run with
//! `cargo test -p bus-core --features loom --lib -- queue::loom_model::` (`cargo xtask ci` does).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use loom::future::block_on;
use loom::sync::Mutex;

use super::{Closure, Push, SubQueue, run_worker};
use crate::{Event, Overflow, Priority};

fn event(id: u64) -> Event {
    Event::new(id, "t", serde_json::Value::Null)
}

/// Explores every interleaving with up to `preemptions` forced switches between threads.
fn model(preemptions: usize, test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(preemptions);
    builder.max_branches = 100_000;
    builder.check(test);
}

/// The ids the handler got, in the order it got them.
type Seen = Arc<Mutex<Vec<u64>>>;

/// The real worker loop on its own loom thread, with a handler that records each id under a
/// loom mutex: a point where loom may switch threads while an event is in the handler's
/// hands, taken from the queue but not finished.
fn spawn_worker(queue: &Arc<SubQueue>) -> (loom::thread::JoinHandle<()>, Seen) {
    let seen = Seen::default();
    let queue = queue.clone();
    let record = seen.clone();
    let worker = loom::thread::spawn(move || {
        let handler = move |event: Event| {
            record.lock().unwrap().push(event.id());
            async {}
        };
        block_on(run_worker(queue, Closure(handler), Arc::from("model")));
    });
    (worker, seen)
}

/// How many events the handler got.
fn count(seen: &Seen) -> u64 {
    seen.lock().unwrap().len() as u64
}

/// Waits for the flush, then checks it was exact: every event pushed before it handled.
fn flush_and_check(queue: &SubQueue, seen: &Seen, pushed: u64) {
    block_on(queue.flush());
    assert_eq!(
        count(seen),
        pushed,
        "the flush returned before the worker handled every event"
    );
}

/// A publisher pushes `events` events with `push` (each must be queued) into a `Block` queue
/// of `capacity` while the real worker runs; a flush must then find every one handled, and a
/// close must stop the worker.
fn push_then_flush(
    preemptions: usize,
    capacity: usize,
    events: u64,
    push: fn(&SubQueue, Event) -> Push,
) {
    model(preemptions, move || {
        let queue = Arc::new(SubQueue::new(capacity, Overflow::Block));
        let (worker, seen) = spawn_worker(&queue);
        for id in 1..=events {
            assert!(matches!(push(&queue, event(id)), Push::Queued));
        }
        flush_and_check(&queue, &seen, events);
        queue.close();
        worker.join().unwrap();
    });
}

#[test]
fn pushes_wake_an_idle_worker_and_a_flush_waits_for_every_event() {
    push_then_flush(3, 4, 2, |queue, event| {
        queue.try_push(event, Priority::Normal)
    });
}

#[test]
fn a_publisher_blocked_on_a_thread_is_woken_when_room_frees() {
    push_then_flush(2, 1, 3, |queue, event| {
        queue.push_blocking(event, Priority::Normal)
    });
}

#[test]
fn a_publisher_blocked_in_a_task_is_woken_when_room_frees() {
    push_then_flush(2, 1, 3, |queue, event| {
        block_on(queue.push_async(event, Priority::Normal))
    });
}

#[test]
fn closing_releases_a_blocked_publisher_and_stops_the_worker() {
    model(3, || {
        let queue = Arc::new(SubQueue::new(1, Overflow::Block));
        assert!(matches!(
            queue.try_push(event(1), Priority::Normal),
            Push::Queued
        ));
        let blocked = {
            let queue = queue.clone();
            loom::thread::spawn(move || queue.push_blocking(event(2), Priority::Normal))
        };
        let (worker, seen) = spawn_worker(&queue);
        queue.close();
        // Event 2 either found room before the close or was refused by it; never stuck.
        let second = blocked.join().unwrap();
        worker.join().unwrap();
        let handled = count(&seen);
        match second {
            Push::Queued => assert_eq!(handled, 2, "a queued event is handled before exit"),
            Push::Dropped => {
                assert_eq!(handled, 1);
                assert_eq!(queue.dropped.load(Ordering::Relaxed), 1);
            }
            Push::Full(_) => panic!("push_blocking never returns Full"),
        }
    });
}

/// Pushes three events into a queue of one without waiting while the worker runs: every
/// event is either handled or counted as dropped, never both and never neither.
fn drops_are_exact(overflow: Overflow) {
    model(3, move || {
        let queue = Arc::new(SubQueue::new(1, overflow));
        let (worker, seen) = spawn_worker(&queue);
        for id in 1..=3 {
            let _ = queue.try_push(event(id), Priority::Normal);
        }
        block_on(queue.flush());
        queue.close();
        worker.join().unwrap();
        assert_eq!(count(&seen) + queue.dropped.load(Ordering::Relaxed), 3);
    });
}

#[test]
fn drop_newest_counts_exactly_what_it_refuses() {
    drops_are_exact(Overflow::DropNewest);
}

#[test]
fn drop_oldest_counts_exactly_what_it_evicts() {
    drops_are_exact(Overflow::DropOldest);
}

#[test]
fn a_high_event_arriving_mid_batch_is_handled_once_and_so_is_the_rest() {
    model(3, || {
        let queue = Arc::new(SubQueue::new(4, Overflow::Block));
        let (worker, seen) = spawn_worker(&queue);
        for id in 1..=2 {
            assert!(matches!(
                queue.try_push(event(id), Priority::Low),
                Push::Queued
            ));
        }
        // May land while the worker holds the low ones: it puts back the rest of its batch.
        assert!(matches!(
            queue.try_push(event(3), Priority::High),
            Push::Queued
        ));
        block_on(queue.flush());
        let mut handled = seen.lock().unwrap().clone();
        queue.close();
        worker.join().unwrap();
        let in_order = handled.clone();
        handled.sort_unstable();
        assert_eq!(
            handled,
            [1, 2, 3],
            "each once, before the flush returned: {in_order:?}"
        );
        let low: Vec<u64> = in_order.iter().copied().filter(|id| *id != 3).collect();
        assert_eq!(low, [1, 2], "the low ones in their order: {in_order:?}");
    });
}
