//! The bounded history of recent events.

use std::sync::{Mutex, PoisonError};

use crate::Event;
use crate::shard::Padded;

/// A ring of the last `capacity` accepted events.
///
/// An event lands in slot `id % capacity`. Ids are unique and increasing, so the newest
/// `capacity` events always occupy distinct slots, and publishers on different threads
/// write different (padded) slots instead of contending for one lock.
pub(crate) struct History {
    slots: Box<[Padded<Mutex<Option<Event>>>]>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        History {
            slots: (0..capacity).map(|_| Padded(Mutex::new(None))).collect(),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn record(&self, event: &Event) {
        if self.slots.is_empty() {
            return;
        }
        let slot = &self.slots[(event.id() % self.slots.len() as u64) as usize];
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        // A slower publisher holding an older id must not overwrite a newer event.
        if guard.as_ref().is_none_or(|old| old.id() < event.id()) {
            let evicted = guard.replace(event.clone());
            drop(guard);
            drop(evicted);
        }
    }

    /// All recorded events, oldest first.
    pub(crate) fn events(&self) -> Vec<Event> {
        let mut events: Vec<Event> = self
            .slots
            .iter()
            .filter_map(|s| s.lock().unwrap_or_else(PoisonError::into_inner).clone())
            .collect();
        events.sort_unstable_by_key(Event::id);
        events
    }

    pub(crate) fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.lock().unwrap_or_else(PoisonError::into_inner).is_some())
            .count()
    }

    pub(crate) fn clear(&self) {
        for s in self.slots.iter() {
            let old = s.lock().unwrap_or_else(PoisonError::into_inner).take();
            drop(old);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_the_newest_capacity_events_in_order() {
        let h = History::new(3);
        for id in 1..=5 {
            h.record(&Event::new(id, "t", json!(id)));
        }
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids, vec![3, 4, 5]);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn an_older_event_never_replaces_a_newer_one() {
        let h = History::new(2);
        h.record(&Event::new(4, "t", json!(null)));
        h.record(&Event::new(2, "t", json!(null)));
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids, vec![4]);
    }

    #[test]
    fn zero_capacity_records_nothing() {
        let h = History::new(0);
        h.record(&Event::new(1, "t", json!(null)));
        assert!(h.events().is_empty());
    }
}
