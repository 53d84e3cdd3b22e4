//! The bounded history of recent events: by count, and optionally by bytes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use compact_str::CompactString;
use serde_json::Value;

use crate::Event;
use crate::shard::{Padded, Sharded};

/// One recorded event, its id, and the bytes it is counted as (0 when no byte budget is set).
pub(crate) struct Held {
    /// A copy of the event's, so that finding the ring's out-of-window events reads the ring
    /// alone: the event's own memory was last written by whichever consumer dropped it.
    id: u64,
    event: Event,
    bytes: usize,
}

/// One thread slot's ring of its newest events, oldest first.
///
/// A spin lock, because the ring's own thread takes it on every publish and others only to
/// read or prune it: its release is a plain store where a `std` mutex's is an atomic swap,
/// the dearer half of an uncontended lock. A waiter yields its time slice between tries.
pub(crate) type Ring = spin::mutex::SpinMutex<VecDeque<Held>, spin::relax::Yield>;

/// The last `capacity` accepted events, and at most `max_bytes` of them when that is set.
///
/// Each publishing thread records into a ring of its own (one per thread slot), so
/// publishers on different cores never write the same memory; readers merge the rings by
/// event id and keep the newest `capacity`. Memory stays bounded whatever the number of
/// threads: a ring drops what fell out of the bus-wide window (ids up to the newest minus
/// `capacity`) when it records, and every `sweep_every` events (the power of two at or above
/// `capacity`, at least 64) the other rings are pruned too, so all rings together hold at
/// most about three times `capacity` events.
///
/// With a byte budget, each event counts as the size of its JSON text (estimated from the
/// value, type included); recording past the budget drops the recording ring's oldest events
/// first, then other rings' oldest, until the total fits again. An event larger than the
/// whole budget is not kept. Without a budget no size is computed: the hot path pays nothing.
///
/// Under [`IdOrder::PerThread`](crate::IdOrder::PerThread) ids say nothing about the order
/// of events from different threads, so there is no bus-wide window: each ring keeps its
/// newest `capacity` events, and readers merge the rings by timestamp.
pub(crate) struct History {
    capacity: usize,
    /// Ids increase in acceptance order across threads: the window and merge go by id.
    by_id: bool,
    sweep_every: u64,
    rings: Sharded<Ring>,
    /// 0: no byte budget.
    max_bytes: AtomicUsize,
    /// What the rings hold together, counted only while a budget is set.
    bytes: AtomicUsize,
}

impl History {
    pub(crate) fn new(capacity: usize, order: crate::IdOrder) -> Self {
        History {
            capacity,
            by_id: order == crate::IdOrder::Accepted,
            // A power of two, so the hot path tests it with a mask rather than a division.
            sweep_every: (capacity as u64).max(64).next_power_of_two(),
            rings: Sharded::default(),
            max_bytes: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The byte budget (0: none).
    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// Sets the byte budget (0: none), trimming at once to fit. Events recorded before a
    /// budget was set count as 0 bytes.
    pub(crate) fn set_max_bytes(&self, max: usize) {
        self.max_bytes.store(max, Ordering::Relaxed);
        if max > 0 {
            self.trim_to_budget(max);
        }
    }

    /// The bytes the history holds now (0 without a budget).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The ring a thread slot records into; callers cache it.
    pub(crate) fn ring(&self, slot: usize) -> Arc<Padded<Ring>> {
        self.rings.cell(slot)
    }

    fn weigh(&self, event_type: &str, data: &Value) -> usize {
        if self.max_bytes() == 0 {
            0
        } else {
            event_type.len() + json_size(data)
        }
    }

    fn forget(&self, held: &Held) {
        if held.bytes > 0 {
            self.bytes.fetch_sub(held.bytes, Ordering::Relaxed);
        }
    }

    /// Creates the event `id` and records it in `ring`. The event it evicts is recycled as
    /// the new one when no consumer still holds it, so a steady stream allocates nothing here.
    /// `consumers_elsewhere`: queued consumers, on other threads, get this type's events; the
    /// next one to recycle is then fetched ahead, since one of them probably wrote it last.
    // Inlined into the publish path, as are the steps below it (`push`, `Event::try_reuse`,
    // the clock, the route lookup): their calls' register saves and restores were a fifth of
    // a sync publish's instructions (616 per publish, 485 inlined; `publish_loop` under
    // callgrind, built without LTO across crates, as a library user's program is by default).
    #[inline]
    pub(crate) fn record_new(
        &self,
        ring: &Ring,
        id: u64,
        event_type: &CompactString,
        data: Arc<Value>,
        timestamp: SystemTime,
        consumers_elsewhere: bool,
    ) -> Event {
        if self.capacity == 0 {
            return Event::from_raw(id, event_type.clone(), data, timestamp);
        }
        let bytes = self.weigh(event_type, &data);
        // Cutoff 0 is no window at all: ids start at 1.
        let cutoff = if self.by_id {
            id.saturating_sub(self.capacity as u64)
        } else {
            0
        };
        let mut guard = ring.lock();
        let evicted = if guard.len() >= self.capacity || out_of_window(&guard, cutoff) {
            guard.pop_front()
        } else {
            None
        };
        let mut stale = Vec::new();
        while out_of_window(&guard, cutoff) {
            stale.extend(guard.pop_front());
        }
        for held in evicted.iter().chain(&stale) {
            self.forget(held);
        }
        let event = match evicted {
            Some(Held {
                event: mut oldest, ..
            }) => match oldest.try_reuse(id, event_type, data, timestamp) {
                Ok(()) => oldest,
                Err(data) => Event::from_raw(id, event_type.clone(), data, timestamp),
            },
            None => Event::from_raw(id, event_type.clone(), data, timestamp),
        };
        let over = self.push(&mut guard, &event, bytes, &mut stale);
        // Publishes recycle the oldest events, whose counts a consumer on another core
        // probably wrote last: start fetching the one three publishes from now (one publish
        // ahead is too late for the line to arrive: 10 of 16 paired rounds faster at three).
        if consumers_elsewhere
            && guard.len() >= self.capacity
            && let Some(next) = guard.get(2)
        {
            next.event.prefetch();
        }
        drop(guard);
        drop(stale);
        if over {
            self.trim_to_budget(self.max_bytes());
        }
        if self.by_id && id & (self.sweep_every - 1) == 0 {
            self.prune(cutoff);
        }
        event
    }

    /// Appends `event` to `ring`, then drops the ring's oldest events (into `dropped`, to be
    /// freed outside the lock) while over the byte budget; true if still over it afterwards
    /// (the excess sits in other rings).
    // Inlined into the publish path: see `History::record_new`.
    #[inline]
    fn push(
        &self,
        ring: &mut VecDeque<Held>,
        event: &Event,
        bytes: usize,
        dropped: &mut Vec<Held>,
    ) -> bool {
        let max = self.max_bytes();
        if max > 0 && bytes > max {
            // Keeping it would mean dropping everything else, and still not fit.
            return false;
        }
        ring.push_back(Held {
            id: event.id(),
            event: event.clone(),
            bytes,
        });
        if max == 0 || bytes == 0 {
            return false;
        }
        let mut total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        while total > max {
            let Some(oldest) = ring.pop_front() else {
                return true;
            };
            total = self.bytes.fetch_sub(oldest.bytes, Ordering::Relaxed) - oldest.bytes;
            dropped.push(oldest);
        }
        false
    }

    /// Drops the oldest events of each ring in turn until the history fits in `max` bytes.
    fn trim_to_budget(&self, max: usize) {
        let mut dropped = Vec::new();
        self.rings.for_each(|ring| {
            let mut ring = ring.lock();
            while self.bytes() > max {
                let Some(oldest) = ring.pop_front() else {
                    break;
                };
                self.forget(&oldest);
                dropped.push(oldest);
            }
        });
        drop(dropped);
    }

    /// Drops, from every ring, the events that fell out of the window ending at `cutoff`.
    fn prune(&self, cutoff: u64) {
        self.rings.for_each(|ring| {
            let mut ring = ring.lock();
            while out_of_window(&ring, cutoff) {
                if let Some(held) = ring.pop_front() {
                    self.forget(&held);
                }
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
        let bytes = self.weigh(event.event_type(), event.data());
        let mut dropped = Vec::new();
        let mut guard = ring.lock();
        if guard.len() >= self.capacity {
            dropped.extend(guard.pop_front());
        }
        for held in &dropped {
            self.forget(held);
        }
        let over = self.push(&mut guard, event, bytes, &mut dropped);
        drop(guard);
        drop(dropped);
        if over {
            self.trim_to_budget(self.max_bytes());
        }
    }

    /// The newest `capacity` events, oldest first.
    pub(crate) fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        self.rings.for_each(|ring| {
            events.extend(ring.lock().iter().map(|held| held.event.clone()));
        });
        if self.by_id {
            events.sort_unstable_by_key(Event::id);
        } else {
            events.sort_unstable_by_key(|event| (event.timestamp(), event.id()));
        }
        let excess = events.len().saturating_sub(self.capacity);
        events.drain(..excess);
        events
    }

    pub(crate) fn len(&self) -> usize {
        let mut len = 0;
        self.rings.for_each(|ring| len += ring.lock().len());
        len.min(self.capacity)
    }

    pub(crate) fn clear(&self) {
        let mut dropped = Vec::new();
        self.rings.for_each(|ring| {
            let taken = std::mem::take(&mut *ring.lock());
            for held in &taken {
                self.forget(held);
            }
            dropped.push(taken);
        });
        drop(dropped);
    }
}

/// True when the ring's oldest event is older than the window ending at `cutoff`.
fn out_of_window(ring: &VecDeque<Held>, cutoff: u64) -> bool {
    ring.front().is_some_and(|held| held.id <= cutoff)
}

/// The length of `value`'s compact JSON text, estimated without writing it (numbers count
/// as 8 bytes, strings without their escapes).
pub(crate) fn json_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        // Brackets, and a comma between items.
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(json_size).sum::<usize>()
        }
        Value::Object(fields) => {
            2 + fields.len().saturating_sub(1)
                + fields
                    .iter()
                    .map(|(k, v)| k.len() + 3 + json_size(v))
                    .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::IdOrder;
    use serde_json::json;

    fn record(h: &History, ring: &Ring, id: u64) -> Event {
        record_as(h, ring, id, "t")
    }

    /// Records event `id` of `event_type`, its payload the id, as a publish without queued
    /// consumers does.
    fn record_as(h: &History, ring: &Ring, id: u64, event_type: &str) -> Event {
        h.record_new(
            ring,
            id,
            &event_type.into(),
            Arc::new(json!(id)),
            SystemTime::now(),
            false,
        )
    }

    #[test]
    fn keeps_the_newest_capacity_events_in_order_across_rings() {
        let h = History::new(3, IdOrder::Accepted);
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
        let h = History::new(1, IdOrder::Accepted);
        let ring = h.ring(1);
        let first = record_as(&h, &ring, 1, "a");
        let second = record_as(&h, &ring, 2, "b");
        assert_eq!(
            (first.id(), first.event_type(), first.data()),
            (1, "a", &json!(1))
        );
        assert_eq!((second.id(), second.event_type()), (2, "b"));
        drop((first, second));
        let third = record_as(&h, &ring, 3, "c");
        assert_eq!(
            (third.id(), third.event_type(), third.data()),
            (3, "c", &json!(3))
        );
        assert_eq!(h.events().iter().map(Event::id).collect::<Vec<_>>(), [3]);
    }

    #[test]
    fn many_rings_together_hold_about_capacity_events() {
        let h = History::new(10, IdOrder::Accepted);
        let data = Arc::new(json!("shared"));
        // 8 threads' rings, each fed 10 events in turn: without pruning, 80 would be held.
        for id in 1..=80u64 {
            let ring = h.ring(1 + (id % 8) as usize);
            h.record_new(
                &ring,
                id,
                &"t".into(),
                data.clone(),
                SystemTime::now(),
                false,
            );
        }
        let held = Arc::strong_count(&data) - 1;
        assert!(held <= 2 * 10 + 8, "{held} events held for a history of 10");
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids, (71..=80).collect::<Vec<_>>());
    }

    #[test]
    fn per_thread_ids_keep_each_rings_newest_and_merge_by_time() {
        let h = History::new(3, IdOrder::PerThread);
        let (a, b) = (h.ring(1), h.ring(2));
        let start = SystemTime::now();
        // Thread a numbers from 1, thread b from 257 (its own block), interleaved in time.
        let mut published = Vec::new();
        for step in 0..8u64 {
            let (ring, id) = if step % 2 == 0 {
                (&a, 1 + step / 2)
            } else {
                (&b, 257 + step / 2)
            };
            let at = start + std::time::Duration::from_micros(step);
            h.record_new(ring, id, &"t".into(), Arc::new(json!(id)), at, false);
            published.push(id);
        }
        // By id, b's 257.. would push every one of a's events out of the window.
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(
            ids,
            published[5..],
            "the newest three by time, oldest first"
        );
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn zero_capacity_records_nothing() {
        let h = History::new(0, IdOrder::Accepted);
        record(&h, &h.ring(1), 1);
        assert!(h.events().is_empty());
        assert_eq!(h.len(), 0);
    }

    #[test]
    fn clear_empties_every_ring() {
        let h = History::new(4, IdOrder::Accepted);
        record(&h, &h.ring(1), 1);
        record(&h, &h.ring(2), 2);
        h.clear();
        assert!(h.events().is_empty());
    }

    fn big(n: usize) -> Arc<Value> {
        Arc::new(json!("x".repeat(n)))
    }

    #[test]
    fn a_byte_budget_keeps_the_newest_events_that_fit() {
        let h = History::new(100, IdOrder::Accepted);
        h.set_max_bytes(10_000);
        let ring = h.ring(1);
        for id in 1..=10u64 {
            // 1 + 3000 + 2 bytes each: three fit in 10,000.
            h.record_new(&ring, id, &"t".into(), big(3000), SystemTime::now(), false);
            assert!(h.bytes() <= 10_000, "{} bytes after {id}", h.bytes());
        }
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids, [8, 9, 10]);
        assert_eq!(h.bytes(), 3 * 3003);
        h.clear();
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn the_budget_holds_across_rings_and_an_oversized_event_is_not_kept() {
        let h = History::new(100, IdOrder::Accepted);
        h.set_max_bytes(10_000);
        for id in 1..=12u64 {
            let ring = h.ring(1 + (id % 4) as usize);
            h.record_new(&ring, id, &"t".into(), big(2000), SystemTime::now(), false);
            assert!(h.bytes() <= 10_000, "{} bytes after {id}", h.bytes());
        }
        assert_eq!(h.events().len(), 4);
        let ring = h.ring(1);
        let huge = h.record_new(
            &ring,
            13,
            &"t".into(),
            big(20_000),
            SystemTime::now(),
            false,
        );
        assert_eq!(huge.id(), 13, "the publish itself is unaffected");
        assert!(h.bytes() <= 10_000);
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert!(!ids.contains(&13));
    }

    #[test]
    fn setting_a_budget_trims_at_once_and_none_costs_no_sizing() {
        let h = History::new(100, IdOrder::Accepted);
        let ring = h.ring(1);
        for id in 1..=5u64 {
            h.record_new(&ring, id, &"t".into(), big(3000), SystemTime::now(), false);
        }
        assert_eq!(h.bytes(), 0, "no budget: nothing weighed");
        assert_eq!(h.events().len(), 5);
        h.set_max_bytes(1);
        assert_eq!(
            h.events().len(),
            5,
            "events from before the budget count as 0 bytes"
        );
        for id in 6..=7u64 {
            h.record_new(&ring, id, &"t".into(), big(3000), SystemTime::now(), false);
        }
        assert_eq!(h.bytes(), 0);
        let ids: Vec<u64> = h.events().iter().map(Event::id).collect();
        assert_eq!(
            ids,
            [1, 2, 3, 4, 5],
            "an event over the whole budget evicts nothing"
        );
    }

    #[test]
    fn json_size_matches_the_text_for_plain_values() {
        for v in [
            json!({"tool_name": "Read", "ok": true, "list": ["a", "bc"], "none": null}),
            json!([]),
            json!({}),
            json!("text"),
            json!(false),
        ] {
            assert_eq!(
                json_size(&v),
                serde_json::to_string(&v).unwrap().len(),
                "{v}"
            );
        }
    }
}
