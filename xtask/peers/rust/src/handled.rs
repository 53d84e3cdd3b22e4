//! The count of handled events, and a wait for it to reach a target without spinning.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// Handled events over every receiver; the sender sleeps until a target is reached.
#[derive(Default)]
pub(crate) struct Handled {
    count: AtomicU64,
    /// The count the sender waits for (0: nobody waits).
    target: AtomicU64,
    lock: Mutex<()>,
    reached: Condvar,
}

impl Handled {
    /// One more event handled; wakes the sender if this one reaches its target.
    pub(crate) fn hit(&self) {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        // Pairs with `wait_for`'s store-then-load: one of the two sees the other.
        if n == self.target.load(Ordering::SeqCst) {
            drop(self.lock.lock().unwrap_or_else(PoisonError::into_inner));
            self.reached.notify_all();
        }
    }

    /// Events handled so far.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }

    /// Blocks until `target` events have been handled.
    pub(crate) fn wait_for(&self, target: u64) {
        let mut guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.target.store(target, Ordering::SeqCst);
        while self.count.load(Ordering::SeqCst) < target {
            guard = self
                .reached
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}
