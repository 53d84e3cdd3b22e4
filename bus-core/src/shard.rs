//! Per-thread counter shards, so that publishers on different threads never write the
//! same cache line.
//!
//! Each publishing thread leases a small slot number (returned when the thread exits, so the
//! number of slots stays bounded by the number of live threads). A [`Sharded`] value keeps
//! one cache-line-aligned cell per slot; a thread writes only its own cell, and readers sum
//! all cells. Writers bump their cells with plain stores; a concurrent `reset_stats` may
//! therefore lose its zeroing of a cell being bumped at that instant, never a count.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
/// Slot 0 is never leased: it is the shared cell for code running without thread-locals.
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(1);

/// The cell every thread may write, always with atomic read-modify-write operations.
pub(crate) const SHARED_SLOT: usize = 0;

/// A slot number owned by one thread while the lease lives; its cells have a single writer.
#[derive(Debug)]
pub(crate) struct SlotLease(usize);

impl SlotLease {
    pub(crate) fn acquire() -> Self {
        let reused = FREE_SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        SlotLease(reused.unwrap_or_else(|| NEXT_SLOT.fetch_add(1, Ordering::Relaxed)))
    }

    pub(crate) fn slot(&self) -> usize {
        self.0
    }
}

impl Drop for SlotLease {
    fn drop(&mut self) {
        FREE_SLOTS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(self.0);
    }
}

/// Adds one to a counter cell. The owner of an exclusive cell needs no atomic
/// read-modify-write (the dearest part of a publish); a shared cell does.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, exclusive: bool) {
    if exclusive {
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(1),
            Ordering::Relaxed,
        );
    } else {
        counter.fetch_add(1, Ordering::Relaxed);
    }
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

    #[test]
    fn threads_get_distinct_live_slots_and_sums_are_exact() {
        let sharded = Arc::new(Sharded::<AtomicU64>::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let s = sharded.clone();
                std::thread::spawn(move || {
                    let lease = SlotLease::acquire();
                    let cell = s.cell(lease.slot());
                    for _ in 0..1000 {
                        bump(&cell, true);
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
