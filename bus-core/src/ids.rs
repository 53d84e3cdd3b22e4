//! How a bus numbers the events it creates: one bus-wide counter, or blocks of it per thread.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a bus numbers the events it creates ([`EventBusBuilder::id_order`](crate::EventBusBuilder::id_order)).
///
/// Events published with given ids ([`EventBus::try_publish_event`](crate::EventBus::try_publish_event),
/// as the daemon does with ids from its durable log) keep those ids under either order.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum IdOrder {
    /// One bus-wide counter: ids increase in the order events are accepted, across every
    /// publishing thread, and [`recent_events`](crate::EventBus::recent_events) orders by
    /// id. Every publish writes that counter, so publishers on several cores take turns
    /// owning its cache line: two threads publish no faster together than one alone.
    #[default]
    Accepted,
    /// Each publishing thread draws blocks of [`ID_BLOCK`] ids from the bus-wide counter and
    /// numbers its events from its block. Ids stay unique per bus and increase in each
    /// thread's own publishing order (a single publishing thread still gets 1, 2, 3, ...),
    /// but events of different threads are not numbered in the order they were accepted:
    /// thread A's next event may carry a lower id than an event thread B published before
    /// it. [`recent_events`](crate::EventBus::recent_events) then orders by timestamp, and
    /// the history keeps up to its size per publishing thread before merging (memory: the
    /// history size times the number of threads that publish). In exchange, publishers on
    /// different threads share no memory per publish and scale with cores.
    ///
    /// The blocks belong to threads, not tasks: an async task that a multi-threaded runtime
    /// moves to another thread between two publishes numbers its next event from that
    /// thread's block, which may lie below its last id. Its events still reach every queue
    /// in the order it published them, but their ids do not increase in that order. That is
    /// why this is not the default (with it, `relay-socketio`'s tests of in-order delivery
    /// by id, which publish from a tokio task, fail).
    PerThread,
}

/// Ids a thread reserves at once under [`IdOrder::PerThread`]: one write of the bus-wide
/// counter per this many publishes.
pub const ID_BLOCK: u64 = 256;

/// One thread's current block of ids on one bus: ids `next + 1 ..= end` are its to hand out.
#[derive(Default)]
pub(crate) struct IdBlock {
    next: Cell<u64>,
    end: Cell<u64>,
}

impl IdBlock {
    /// The next id of this block, reserving a new block from `counter` when it is used up.
    /// A block dropped half used (its thread's cache was rebuilt) only leaves a gap: every
    /// later block lies above it, so ids stay unique and increasing per thread.
    pub(crate) fn take(&self, counter: &AtomicU64) -> u64 {
        let mut next = self.next.get();
        if next == self.end.get() {
            next = counter.fetch_add(ID_BLOCK, Ordering::Relaxed);
            self.end.set(next + ID_BLOCK);
        }
        next += 1;
        self.next.set(next);
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_hands_out_consecutive_ids_and_the_next_block_lies_above_every_other() {
        let counter = AtomicU64::new(0);
        let (a, b) = (IdBlock::default(), IdBlock::default());
        assert_eq!(a.take(&counter), 1);
        assert_eq!(b.take(&counter), ID_BLOCK + 1);
        let rest: Vec<u64> = (1..ID_BLOCK).map(|_| a.take(&counter)).collect();
        assert_eq!(rest, (2..=ID_BLOCK).collect::<Vec<_>>());
        assert_eq!(a.take(&counter), 2 * ID_BLOCK + 1, "a's second block");
    }
}
