//! The bounded history of recent events.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use compact_str::CompactString;
use serde_json::Value;

use crate::Event;
use crate::shard::{Padded, Sharded};

/// One thread slot's ring of its newest events, oldest first.
pub(crate) type Ring = Mutex<VecDeque<Event>>;

/// The last `capacity` accepted events.
///
/// Each publishing thread records into a ring of its own (one per thread slot), so
/// publishers on different cores never write the same memory; readers merge the rings by
/// event id and keep the newest `capacity`. Memory stays bounded whatever the number of
/// threads: a ring drops what fell out of the bus-wide window (ids up to the newest minus
/// `capacity`) when it records, and every `sweep_every` events (the power of two at or above
/// `capacity`, at least 64) the other rings are pruned too, so all rings together hold at
/// most about three times `capacity` events.
pub(crate) struct History {
    capacity: usize,
    sweep_every: u64,
    rings: Sharded<Ring>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        History {
            capacity,
            // A power of two, so the hot path tests it with a mask rather than a division.
            sweep_every: (capacity as u64).max(64).next_power_of_two(),
            rings: Sharded::default(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The ring a thread slot records into; callers cache it.
    pub(crate) fn ring(&self, slot: usize) -> Arc<Padded<Ring>> {
        self.rings.cell(slot)
    }

    /// Creates the event `id` and records it in `ring`. The event it evicts is recycled as
    /// the new one when no consumer still holds it, so a steady stream allocates nothing here.
    pub(crate) fn record_new(
        &self,
        ring: &Ring,
        id: u64,
        event_type: &CompactString,
        data: Arc<Value>,
        timestamp: SystemTime,
    ) -> Event {
        if self.capacity == 0 {
            return Event::from_raw(id, event_type.clone(), data, timestamp);
        }
        let cutoff = id.saturating_sub(self.capacity as u64);
        let mut guard = ring.lock().unwrap_or_else(PoisonError::into_inner);
        let evicted = if guard.len() >= self.capacity || out_of_window(&guard, cutoff) {
            guard.pop_front()
        } else {
            None
        };
        let mut stale = Vec::new();
        while out_of_window(&guard, cutoff) {
            stale.extend(guard.pop_front());
        }
        let event = match evicted {
            Some(mut oldest) => match oldest.try_reuse(id, event_type, data, timestamp) {
                Ok(()) => oldest,
                Err(data) => Event::from_raw(id, event_type.clone(), data, timestamp),
            },
            None => Event::from_raw(id, event_type.clone(), data, timestamp),
        };
        guard.push_back(event.clone());
        drop(guard);
        drop(stale);
        if id & (self.sweep_every - 1) == 0 {
            self.prune(cutoff);
        }
        event
    }

    /// Drops, from every ring, the events that fell out of the window ending at `cutoff`.
    fn prune(&self, cutoff: u64) {
        self.rings.for_each(|ring| {
            let mut ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
            while out_of_window(&ring, cutoff) {
                ring.pop_front();
            }
        });
    }

    /// Records an existing event: when the history is resized, and for events whose ids were
    /// assigned outside the bus. Those ids may have gaps, so the id window of
    /// [`record_new`](Self::record_new) would drop events that belong in the history; each ring
    /// is bounded by `capacity` instead, and [`events`](Self::events) still keeps the newest.
    pub(crate) fn record(&self, ring: &Ring, event: &Event) {
        if self.capacity == 0 {
            return;
        }
        let mut ring = ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(event.clone());
    }

    /// The newest `capacity` events, oldest first.
    pub(crate) fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        self.rings.for_each(|ring| {
            events.extend(
                ring.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .iter()
                    .cloned(),
            );
        });
        events.sort_unstable_by_key(Event::id);
        let excess = events.len().saturating_sub(self.capacity);
        events.drain(..excess);
        events
    }

    pub(crate) fn len(&self) -> usize {
        let mut len = 0;
        self.rings
            .for_each(|ring| len += ring.lock().unwrap_or_else(PoisonError::into_inner).len());
        len.min(self.capacity)
    }

    pub(crate) fn clear(&self) {
        let mut dropped = Vec::new();
        self.rings.for_each(|ring| {
            dropped.push(std::mem::take(
                &mut *ring.lock().unwrap_or_else(PoisonError::into_inner),
            ));
        });
        drop(dropped);
    }
}

/// True when the ring's oldest event is older than the window ending at `cutoff`.
fn out_of_window(ring: &VecDeque<Event>, cutoff: u64) -> bool {
    ring.front().is_some_and(|e| e.id() <= cutoff)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(h: &History, ring: &Ring, id: u64) -> Event {
        h.record_new(
            ring,
            id,
            &"t".into(),
            Arc::new(json!(id)),
            SystemTime::now(),
        )
    }

    #[test]
    fn keeps_the_newest_capacity_events_in_order_across_rings() {
        let h = History::new(3);
        let (a, b) = (h.ring(1), h.ring(2));
        for id in 1..=5 {
            record(&h, if id % 2 == 0 { &a } else { &b }, id);
        }
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn recycled_events_carry_their_new_identity_and_held_ones_are_not_touched() {
        let h = History::new(1);
        let ring = h.ring(1);
        let first = h.record_new(&ring, 1, &"a".into(), Arc::new(json!(1)), SystemTime::now());
        let second = h.record_new(&ring, 2, &"b".into(), Arc::new(json!(2)), SystemTime::now());
        assert_eq!(
            (first.id(), first.event_type(), first.data()),
            (1, "a", &json!(1))
        );
        assert_eq!((second.id(), second.event_type()), (2, "b"));
        drop((first, second));
        let third = h.record_new(&ring, 3, &"c".into(), Arc::new(json!(3)), SystemTime::now());
        assert_eq!(
            (third.id(), third.event_type(), third.data()),
            (3, "c", &json!(3))
        );
        assert_eq!(h.events().iter().map(Event::id).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn many_rings_together_hold_about_capacity_events() {
        let h = History::new(10);
        let data = Arc::new(json!("shared"));
        // 8 threads' rings, each fed 10 events in turn: without pruning, 80 would be held.
        for id in 1..=80u64 {
            let ring = h.ring(1 + (id % 8) as usize);
            h.record_new(&ring, id, &"t".into(), data.clone(), SystemTime::now());
        }
        let held = Arc::strong_count(&data) - 1;
        assert!(held <= 2 * 10 + 8, "{held} events held for a history of 10");
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids, (71..=80).collect::<Vec<_>>());
    }

    #[test]
    fn zero_capacity_records_nothing() {
        let h = History::new(0);
        record(&h, &h.ring(1), 1);
        assert!(h.events().is_empty());
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn clear_empties_every_ring() {
        let h = History::new(4);
        record(&h, &h.ring(1), 1);
        record(&h, &h.ring(2), 2);
        h.clear();
        assert!(h.events().is_empty());
    }
}
