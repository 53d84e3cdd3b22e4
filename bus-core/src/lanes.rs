//! The priority lanes of a consumer's queue: created the first time a `high` or `low` event
//! reaches it, so a queue that only ever sees `normal` events keeps its single FIFO (the
//! queue's own `items`, which stays the normal lane).
//!
//! Scheduling: the worker takes the waiting event of the highest priority, except that a
//! waiting `low` or `normal` lane that has seen [`LOWER_SHARE`]` - 1` events in a row taken
//! from the other lanes gets the next one (the lowest such lane first). So under a sustained
//! flood of high events each waiting lower lane still gets at least one event in every
//! [`LOWER_SHARE`]. Within a lane the order is first-in first-out.
//!
//! Eviction when the queue is full: `DropNewest` evicts the newest event of the lowest lane
//! below the new event's priority (or refuses the new event when there is none), `DropOldest`
//! the oldest of the lowest lane at or below it; a high event is only ever given up for
//! another high one.

use std::collections::VecDeque;

use crate::priority::LOWER_SHARE;
use crate::{Event, Overflow, Priority};

/// Queued events with their push sequence numbers, oldest first.
pub(crate) type Lane = VecDeque<(u64, Event)>;

#[derive(Default)]
pub(crate) struct Lanes {
    low: Lane,
    high: Lane,
    /// Events taken in a row from other lanes while the low (0) or normal (1) lane waited.
    starved: [u32; 2],
    /// The batch in flight: the push sequence number and priority of each event, in the order
    /// the worker handles them (its take sequence numbers are `batch_start..`).
    pub(crate) batch: Vec<(u64, Priority)>,
    /// The lowest priority in the batch in flight: a push above it asks the worker to put the
    /// rest of its batch back.
    pub(crate) floor: Option<Priority>,
}

impl Lanes {
    /// Lanes for a queue whose batch `batch_start..=taken` (push sequence numbers of its FIFO,
    /// all normal) may still be in flight.
    pub(crate) fn new(batch_start: u64, taken: u64) -> Self {
        let batch: Vec<_> = (batch_start.max(1)..=taken)
            .map(|seq| (seq, Priority::Normal))
            .collect();
        let floor = (!batch.is_empty()).then_some(Priority::Normal);
        Lanes {
            batch,
            floor,
            ..Lanes::default()
        }
    }

    fn lane<'a>(&'a mut self, normal: &'a mut Lane, p: Priority) -> &'a mut Lane {
        match p {
            Priority::Low => &mut self.low,
            Priority::Normal => normal,
            Priority::High => &mut self.high,
        }
    }

    /// Events queued in the low and high lanes.
    pub(crate) fn len(&self) -> usize {
        self.low.len() + self.high.len()
    }

    pub(crate) fn push(&mut self, normal: &mut Lane, seq: u64, event: Event, p: Priority) {
        self.lane(normal, p).push_back((seq, event));
    }

    /// Makes room for an event of priority `p` in a full queue. True when an event was evicted
    /// (the new one may go in), false when the new one is the one to give up.
    pub(crate) fn evict_for(&mut self, normal: &mut Lane, p: Priority, overflow: Overflow) -> bool {
        for lower in Priority::ALL {
            let eligible = match overflow {
                Overflow::DropNewest => lower < p,
                Overflow::DropOldest => lower <= p,
                Overflow::Block => false,
            };
            if !eligible {
                break;
            }
            let lane = self.lane(normal, lower);
            let evicted = match overflow {
                Overflow::DropNewest => lane.pop_back(),
                _ => lane.pop_front(),
            };
            if evicted.is_some() {
                return true;
            }
        }
        false
    }

    /// The lane the next event comes from, and the starvation counts updated for it.
    fn choose(&mut self, normal: &Lane) -> Option<Priority> {
        let waiting = [
            !self.low.is_empty(),
            !normal.is_empty(),
            !self.high.is_empty(),
        ];
        let starved_lane = (0..2).find(|&l| waiting[l] && self.starved[l] >= LOWER_SHARE - 1);
        let chosen = starved_lane.or_else(|| (0..3).rev().find(|&l| waiting[l]))?;
        for (l, (starved, waits)) in self.starved.iter_mut().zip(waiting).enumerate() {
            if l == chosen {
                *starved = 0;
            } else if waits {
                *starved += 1;
            }
        }
        Some(Priority::ALL[chosen])
    }

    /// Takes up to `max` events in scheduling order into `out`, numbering them `first..`.
    pub(crate) fn take_batch(
        &mut self,
        normal: &mut Lane,
        out: &mut VecDeque<(u64, Event)>,
        max: usize,
        first: u64,
    ) {
        self.batch.clear();
        self.floor = None;
        while out.len() < max {
            let Some(p) = self.choose(normal) else { break };
            let (seq, event) = self.lane(normal, p).pop_front().expect("chosen lanes wait");
            self.batch.push((seq, p));
            self.floor = Some(self.floor.map_or(p, |f| f.min(p)));
            out.push_back((first + out.len() as u64, event));
        }
    }

    /// Puts the unhandled rest of the batch back at the front of its lanes, in order. `from` is
    /// the index in the batch of the first event of `rest`.
    pub(crate) fn put_back(&mut self, normal: &mut Lane, from: usize, rest: Vec<Event>) {
        let metas = self.batch.split_off(from);
        for ((seq, p), event) in metas.into_iter().zip(rest).rev() {
            self.lane(normal, p).push_front((seq, event));
        }
        self.floor = self.batch.iter().map(|(_, p)| *p).min();
    }

    /// True when no queued event has a push sequence number of `target` or less.
    pub(crate) fn none_queued_through(&self, normal: &Lane, target: u64) -> bool {
        [&self.low, normal, &self.high]
            .iter()
            .all(|lane| lane.front().is_none_or(|(seq, _)| *seq > target))
    }

    /// The take sequence number the worker must have finished for every event of the batch
    /// in flight pushed at or before `target` to be handled (`None`: there is none).
    pub(crate) fn batch_done_needed(&self, batch_start: u64, target: u64) -> Option<u64> {
        self.batch
            .iter()
            .rposition(|(seq, _)| *seq <= target)
            .map(|i| batch_start + i as u64)
    }

    /// Everything queued in these lanes, for a queue being emptied.
    pub(crate) fn drain(&mut self) -> (Lane, Lane) {
        (
            std::mem::take(&mut self.low),
            std::mem::take(&mut self.high),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fill(lanes: &mut Lanes, normal: &mut Lane, spec: &[(u64, Priority)]) {
        for (seq, p) in spec {
            lanes.push(normal, *seq, Event::new(*seq, "t", json!(null)), *p);
        }
    }

    fn take_ids(lanes: &mut Lanes, normal: &mut Lane, n: usize) -> Vec<u64> {
        let mut out = VecDeque::new();
        lanes.take_batch(normal, &mut out, n, 1);
        out.iter().map(|(_, e)| e.id()).collect()
    }

    #[test]
    fn high_first_then_fifo_and_low_gets_one_in_eight() {
        let (mut lanes, mut normal) = (Lanes::default(), Lane::new());
        let mut spec: Vec<_> = (1..=20).map(|s| (s, Priority::Low)).collect();
        spec.extend((21..=40).map(|s| (s, Priority::High)));
        fill(&mut lanes, &mut normal, &spec);
        let ids = take_ids(&mut lanes, &mut normal, 16);
        assert_eq!(
            ids,
            [21, 22, 23, 24, 25, 26, 27, 1, 28, 29, 30, 31, 32, 33, 34, 2]
        );
    }

    #[test]
    fn both_lower_lanes_get_their_share() {
        let (mut lanes, mut normal) = (Lanes::default(), Lane::new());
        let mut spec: Vec<_> = (1..=10).map(|s| (s, Priority::Low)).collect();
        spec.extend((11..=20).map(|s| (s, Priority::Normal)));
        spec.extend((21..=60).map(|s| (s, Priority::High)));
        fill(&mut lanes, &mut normal, &spec);
        // H x7, L, N, H x6, L, N: each lower lane once in every eight.
        let ids = take_ids(&mut lanes, &mut normal, 17);
        let lows = ids.iter().filter(|&&i| i <= 10).count();
        let normals = ids.iter().filter(|&&i| (11..=20).contains(&i)).count();
        assert_eq!((lows, normals), (2, 2), "{ids:?}");
    }

    #[test]
    fn eviction_gives_up_the_lowest_first() {
        let (mut lanes, mut normal) = (Lanes::default(), Lane::new());
        fill(
            &mut lanes,
            &mut normal,
            &[(1, Priority::Low), (2, Priority::Low), (3, Priority::High)],
        );
        assert!(lanes.evict_for(&mut normal, Priority::High, Overflow::DropNewest));
        assert!(lanes.evict_for(&mut normal, Priority::Normal, Overflow::DropOldest));
        assert_eq!(lanes.len(), 1, "both lows went");
        // Only a high is left: a normal cannot evict it, a high can (DropOldest) or cannot
        // (DropNewest, which refuses the newcomer instead).
        assert!(!lanes.evict_for(&mut normal, Priority::Normal, Overflow::DropOldest));
        assert!(!lanes.evict_for(&mut normal, Priority::High, Overflow::DropNewest));
        assert!(lanes.evict_for(&mut normal, Priority::High, Overflow::DropOldest));
        assert_eq!(lanes.len(), 0);
    }

    #[test]
    fn put_back_restores_lane_order() {
        let (mut lanes, mut normal) = (Lanes::default(), Lane::new());
        fill(
            &mut lanes,
            &mut normal,
            &[
                (1, Priority::Low),
                (2, Priority::Low),
                (3, Priority::Normal),
            ],
        );
        let mut out = VecDeque::new();
        lanes.take_batch(&mut normal, &mut out, 3, 1);
        let rest: Vec<Event> = out.drain(1..).map(|(_, e)| e).collect();
        lanes.put_back(&mut normal, 1, rest);
        assert_eq!(lanes.batch.len(), 1);
        assert!(!lanes.none_queued_through(&normal, 2));
        assert_eq!(take_ids(&mut lanes, &mut normal, 3), [1, 2]);
    }
}
