//! Per-thread counter shards, so that publishers on different threads never write the
//! same cache line.
//!
//! Each thread leases a small slot number for its lifetime (returned when it exits, so the
//! number of slots stays bounded by the number of live threads). A [`Sharded`] value keeps
//! one cache-line-aligned cell per slot; a thread writes only its own cell, and readers sum
//! all cells.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Aligns its contents to 128 bytes: two cache lines, because x86 prefetches line pairs.
#[repr(align(128))]
#[derive(Default, Debug)]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

struct SlotLease(usize);

impl Drop for SlotLease {
    fn drop(&mut self) {
        FREE_SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.0);
    }
}

thread_local! {
    static SLOT: SlotLease = SlotLease(
        FREE_SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_else(|| NEXT_SLOT.fetch_add(1, Ordering::Relaxed)),
    );
}

/// This thread's slot. A thread whose thread-locals are being torn down shares slot 0:
/// still correct (the cells are atomic), merely contended.
pub(crate) fn current_slot() -> usize {
    SLOT.try_with(|s| s.0).unwrap_or(0)
}

/// One `T` per thread slot, created on first use by that slot.
#[derive(Debug)]
pub(crate) struct Sharded<T> {
    cells: Mutex<Vec<Option<Arc<Padded<T>>>>>,
}

impl<T> Default for Sharded<T> {
    fn default() -> Self {
        Sharded {
            cells: Mutex::new(Vec::new()),
        }
    }
}

impl<T: Default> Sharded<T> {
    /// The cell of `slot`; callers cache it, so this lock is off the hot path.
    pub(crate) fn cell(&self, slot: usize) -> Arc<Padded<T>> {
        let mut cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        if cells.len() <= slot {
            cells.resize_with(slot + 1, || None);
        }
        cells[slot]
            .get_or_insert_with(|| Arc::new(Padded(T::default())))
            .clone()
    }

    /// Calls `f` on every cell that exists.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        let cells = self.cells.lock().unwrap_or_else(PoisonError::into_inner);
        cells.iter().flatten().for_each(|c| f(c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn threads_get_distinct_live_slots_and_sums_are_exact() {
        let sharded = Arc::new(Sharded::<AtomicU64>::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = sharded.clone();
                std::thread::spawn(move || {
                    let cell = s.cell(current_slot());
                    for _ in 0..1000 {
                        cell.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        let mut total = 0;
        sharded.for_each(|c| total += c.load(Ordering::Relaxed));
        assert_eq!(total, 4000);
    }
}
