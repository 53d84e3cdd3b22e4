//! The relay's send buffer: every event not yet confirmed by the server.
//!
//! Events wait in three lanes by priority (`high`, `normal`, `low`: the event's own, else the
//! relay's rules). The next one to emit is the waiting event of the highest priority, except
//! that a waiting lower lane that saw [`LOWER_SHARE`]` - 1` events in a row go elsewhere gets
//! the next one; within a lane, first-in first-out. An event gets its sequence number when it
//! is first emitted and then stays, in emit order, in the `sent` part until a checkpoint
//! acknowledgement confirms (removes) everything up to its number; a new connection rewinds so
//! that everything unconfirmed is emitted again, in the same order, before anything new.
//!
//! A durable relay's acknowledgement is the contiguous prefix: the highest log id such that
//! it and every event handed over before it were confirmed (or skipped by the rate limit), so
//! a priority that reorders delivery never moves the saved cursor past an undelivered event.

use std::collections::{BTreeSet, VecDeque};

use bus_core::{Event, LOWER_SHARE, Priority, PriorityRules};

/// One buffered event with the relay's own sequence number (emit order).
#[derive(Clone, Debug)]
pub(crate) struct Pending {
    pub(crate) seq: u64,
    pub(crate) event: Event,
    /// Times it has been emitted so far, over all connections.
    pub(crate) emits: u32,
}

/// The next event to emit, copied out so the lock is not held across the emit.
#[derive(Clone, Debug)]
pub(crate) struct NextUnsent {
    pub(crate) seq: u64,
    pub(crate) event: Event,
    /// True when nothing else waits behind it: it must carry a checkpoint.
    pub(crate) is_last: bool,
    /// The lane it waits in, `None` for a resend.
    lane: Option<Priority>,
}

impl NextUnsent {
    /// True for an event emitted before (after a reconnect or an ack timeout).
    pub(crate) fn is_resend(&self) -> bool {
        self.lane.is_none()
    }
}

/// What a [`SendBuffer::mark_sent`] call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Marked {
    /// Emitted for the first time.
    First,
    /// Emitted again after a reconnect or an ack timeout: a possible duplicate.
    Resent,
    /// The entry was evicted while it was being emitted.
    Gone,
}

/// The durable acknowledgement: ids handed over and not yet done, and ids done above the
/// contiguous prefix.
#[derive(Debug, Default)]
struct Watermark {
    outstanding: BTreeSet<u64>,
    done_above: BTreeSet<u64>,
    last_confirmed: Option<u64>,
}

impl Watermark {
    fn done(&mut self, id: u64) {
        if !self.outstanding.remove(&id) {
            return;
        }
        self.done_above.insert(id);
        let prefix = match self.outstanding.first() {
            None => self.done_above.last().copied(),
            Some(&first) => self.done_above.range(..first).next_back().copied(),
        };
        if let Some(w) = prefix {
            self.last_confirmed = Some(self.last_confirmed.map_or(w, |c| c.max(w)));
            self.done_above = self.done_above.split_off(&(w + 1));
        }
    }
}

#[derive(Debug)]
pub(crate) struct SendBuffer {
    /// Emitted at least once, unconfirmed, in sequence order.
    sent: VecDeque<Pending>,
    /// `sent[..emitted]` were emitted on the current connection.
    emitted: usize,
    /// Never emitted, by priority: low, normal, high.
    waiting: [VecDeque<Event>; 3],
    /// Emits in a row from other lanes while the low (0) or normal (1) lane waited.
    starved: [u32; 2],
    rules: Option<PriorityRules>,
    capacity: usize,
    next_seq: u64,
    watermark: Watermark,
}

impl SendBuffer {
    pub(crate) fn new(capacity: usize, rules: Option<PriorityRules>) -> Self {
        SendBuffer {
            sent: VecDeque::new(),
            emitted: 0,
            waiting: Default::default(),
            starved: [0; 2],
            rules: rules.filter(|r| !r.is_empty()),
            capacity,
            next_seq: 0,
            watermark: Watermark::default(),
        }
    }

    fn priority_of(&self, event: &Event) -> Priority {
        event.priority().unwrap_or_else(|| {
            self.rules
                .as_ref()
                .map_or(Priority::Normal, |r| r.priority_of_type(event.event_type()))
        })
    }

    fn waiting_len(&self) -> usize {
        self.waiting.iter().map(VecDeque::len).sum()
    }

    /// Appends an event; when full, evicts and returns one: the lowest priority first (the
    /// new event's included, so a high event is only given up for another high one), and of
    /// that priority the oldest (an emitted, unconfirmed one before a waiting one).
    pub(crate) fn push(&mut self, event: Event) -> Option<Pending> {
        let mut evicted = None;
        if self.len() >= self.capacity {
            let p = self.priority_of(&event);
            let lowest_waiting = (0..3).find(|&l| !self.waiting[l].is_empty());
            let sent_front = self
                .sent
                .front()
                .map(|f| self.priority_of(&f.event) as usize);
            let victim = match (sent_front, lowest_waiting) {
                (Some(s), w) if s <= p as usize && w.is_none_or(|w| s <= w) => {
                    self.emitted = self.emitted.saturating_sub(1);
                    self.sent.pop_front().map(|p| p.event)
                }
                (_, Some(w)) if w <= p as usize => self.waiting[w].pop_front(),
                _ => {
                    self.watermark.outstanding.insert(event.id());
                    self.watermark.done(event.id());
                    return Some(Pending {
                        seq: 0,
                        event,
                        emits: 0,
                    });
                }
            };
            evicted = victim.map(|event| {
                self.watermark.done(event.id());
                Pending {
                    seq: 0,
                    event,
                    emits: 0,
                }
            });
        }
        self.push_unbounded(event);
        evicted
    }

    /// Appends an event, never evicting: for a durable relay, whose feeder keeps within the
    /// capacity through [`room`](Self::room), so that nothing it holds is ever dropped.
    pub(crate) fn push_unbounded(&mut self, event: Event) {
        let p = self.priority_of(&event);
        self.watermark.outstanding.insert(event.id());
        self.waiting[p as usize].push_back(event);
    }

    /// How many more events fit before the capacity is reached.
    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.len())
    }

    /// The durable acknowledgement: the highest id such that it and every event pushed
    /// before it (pushed in id order, never evicted) are confirmed or skipped.
    pub(crate) fn last_confirmed(&self) -> Option<u64> {
        self.watermark.last_confirmed
    }

    pub(crate) fn len(&self) -> usize {
        self.sent.len() + self.waiting_len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Emitted on this connection and not confirmed yet.
    pub(crate) fn unconfirmed(&self) -> usize {
        self.emitted
    }

    /// The lane the next new event comes from (without taking it).
    fn choose(&self) -> Option<usize> {
        let waiting = [0, 1, 2].map(|l| !self.waiting[l].is_empty());
        (0..2)
            .find(|&l| waiting[l] && self.starved[l] >= LOWER_SHARE - 1)
            .or_else(|| (0..3).rev().find(|&l| waiting[l]))
    }

    /// The next entry to emit: the first unconfirmed one not emitted on this connection, else
    /// the next waiting one by priority.
    pub(crate) fn next_unsent(&self) -> Option<NextUnsent> {
        let behind = self.sent.len() - self.emitted + self.waiting_len();
        if let Some(p) = self.sent.get(self.emitted) {
            return Some(NextUnsent {
                seq: p.seq,
                event: p.event.clone(),
                is_last: behind == 1,
                lane: None,
            });
        }
        let lane = self.choose()?;
        Some(NextUnsent {
            seq: self.next_seq + 1,
            event: self.waiting[lane].front()?.clone(),
            is_last: behind == 1,
            lane: Some(Priority::ALL[lane]),
        })
    }

    /// Takes `next` (a new event) out of its lane, if it is still there.
    fn take_waiting(&mut self, next: &NextUnsent) -> Option<Event> {
        let lane = next.lane? as usize;
        // A new event goes out only after every resend, and only if it still waits first in
        // its lane.
        if next.seq != self.next_seq + 1
            || self.emitted != self.sent.len()
            || self.waiting[lane].front().map(Event::id) != Some(next.event.id())
        {
            return None;
        }
        for (l, (starved, waiting)) in self.starved.iter_mut().zip(&self.waiting).enumerate() {
            if l == lane {
                *starved = 0;
            } else if !waiting.is_empty() {
                *starved += 1;
            }
        }
        self.waiting[lane].pop_front()
    }

    /// Records that `next` (from [`next_unsent`](Self::next_unsent)) was emitted.
    pub(crate) fn mark_sent(&mut self, next: &NextUnsent) -> Marked {
        if next.lane.is_none() {
            return match self.sent.get_mut(self.emitted) {
                Some(p) if p.seq == next.seq => {
                    p.emits += 1;
                    self.emitted += 1;
                    Marked::Resent
                }
                _ => Marked::Gone,
            };
        }
        let Some(event) = self.take_waiting(next) else {
            // Its number went out with it (maybe on a checkpoint): never give it to another.
            self.next_seq = self.next_seq.max(next.seq);
            return Marked::Gone;
        };
        self.next_seq = next.seq;
        self.sent.push_back(Pending {
            seq: next.seq,
            event,
            emits: 1,
        });
        self.emitted += 1;
        Marked::First
    }

    /// Drops `next` (a new event) without emitting it: the rate limit's `drop`. True when it
    /// was still there.
    pub(crate) fn skip(&mut self, next: &NextUnsent) -> bool {
        match self.take_waiting(next) {
            Some(event) => {
                self.watermark.done(event.id());
                true
            }
            None => false,
        }
    }

    /// Removes every emitted entry up to and including `seq`; returns how many.
    pub(crate) fn confirm_through(&mut self, seq: u64) -> usize {
        let mut confirmed = 0;
        while self.emitted > 0 && self.sent.front().is_some_and(|p| p.seq <= seq) {
            if let Some(p) = self.sent.pop_front() {
                self.watermark.done(p.event.id());
            }
            self.emitted -= 1;
            confirmed += 1;
        }
        confirmed
    }

    /// Starts a new connection: everything unconfirmed is to be emitted again.
    pub(crate) fn rewind(&mut self) {
        self.emitted = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(id: u64) -> Event {
        Event::new(id, "hook.x", json!({ "n": id }))
    }

    fn send_next(b: &mut SendBuffer) -> (u64, Marked) {
        let next = b.next_unsent().unwrap();
        (next.event.id(), b.mark_sent(&next))
    }

    #[test]
    fn drops_the_oldest_when_full() {
        let mut b = SendBuffer::new(3, None);
        for id in 1..=3 {
            assert!(b.push(ev(id)).is_none());
        }
        assert_eq!(b.push(ev(4)).unwrap().event.id(), 1);
        assert_eq!(b.len(), 3);
        assert_eq!(b.next_unsent().unwrap().event.id(), 2);
    }

    #[test]
    fn confirms_only_what_was_sent_and_resends_the_rest_after_rewind() {
        let mut b = SendBuffer::new(10, None);
        (1..=5).for_each(|id| {
            b.push(ev(id));
        });
        assert_eq!(send_next(&mut b), (1, Marked::First));
        assert_eq!(send_next(&mut b), (2, Marked::First));
        let third = b.next_unsent().unwrap();
        assert!(!third.is_last);
        b.mark_sent(&third);
        assert_eq!(b.confirm_through(2), 2);
        assert_eq!(b.unconfirmed(), 1);
        // Confirming beyond what was sent never removes unsent entries.
        assert_eq!(b.confirm_through(99), 1);
        assert_eq!(b.len(), 2);
        assert_eq!(send_next(&mut b), (4, Marked::First));
        b.rewind();
        assert_eq!(send_next(&mut b), (4, Marked::Resent));
        let last = b.next_unsent().unwrap();
        assert!(last.is_last);
        assert_eq!(b.mark_sent(&last), Marked::First);
        assert!(b.next_unsent().is_none());
    }

    #[test]
    fn unbounded_pushes_never_evict_and_confirmation_reports_the_last_id() {
        let mut b = SendBuffer::new(2, None);
        assert_eq!(b.room(), 2);
        for id in [3, 5, 9] {
            b.push_unbounded(ev(id));
        }
        assert_eq!((b.len(), b.room()), (3, 0));
        assert_eq!(b.last_confirmed(), None);
        assert_eq!(send_next(&mut b), (3, Marked::First));
        assert_eq!(send_next(&mut b), (5, Marked::First));
        let seq_of_5 = 2;
        assert_eq!(b.confirm_through(seq_of_5), 2);
        assert_eq!(b.last_confirmed(), Some(5));
        assert_eq!(b.room(), 1);
        // A rewind never takes the acknowledgement back.
        b.rewind();
        assert_eq!(b.last_confirmed(), Some(5));
    }

    #[test]
    fn an_entry_evicted_while_being_emitted_is_not_marked() {
        let mut b = SendBuffer::new(2, None);
        b.push(ev(1));
        b.push(ev(2));
        let next = b.next_unsent().unwrap();
        b.push(ev(3)); // evicts 1, the one being emitted
        assert_eq!(b.mark_sent(&next), Marked::Gone);
        assert!(
            b.next_unsent().unwrap().seq > next.seq,
            "its number is not reused"
        );
        assert_eq!(send_next(&mut b), (2, Marked::First));
        b.push(ev(4)); // evicts 2, already sent: the sent count follows
        assert_eq!(b.unconfirmed(), 0);
        assert_eq!(send_next(&mut b), (3, Marked::First));
    }

    fn typed(id: u64, t: &str) -> Event {
        Event::new(id, t, json!({ "n": id }))
    }

    fn rules() -> Option<PriorityRules> {
        Some("hook.error*=high,hook.pre_tool=low".parse().unwrap())
    }

    #[test]
    fn a_high_event_goes_before_waiting_ones_and_low_keeps_its_share() {
        let mut b = SendBuffer::new(100, rules());
        b.push(typed(1, "hook.pre_tool"));
        assert_eq!(send_next(&mut b), (1, Marked::First));
        for id in 2..=20 {
            b.push_unbounded(typed(id, "hook.pre_tool"));
        }
        for id in 21..=40 {
            b.push_unbounded(typed(id, "hook.error"));
        }
        let order: Vec<u64> = (0..16).map(|_| send_next(&mut b).0).collect();
        assert_eq!(
            order,
            [21, 22, 23, 24, 25, 26, 27, 2, 28, 29, 30, 31, 32, 33, 34, 3]
        );
        // A reconnect resends in emit order, before anything new.
        b.rewind();
        assert_eq!(send_next(&mut b), (1, Marked::Resent));
        assert_eq!(send_next(&mut b), (21, Marked::Resent));
    }

    #[test]
    fn the_durable_acknowledgement_is_the_contiguous_prefix() {
        let mut b = SendBuffer::new(100, rules());
        for (id, t) in [
            (1, "hook.pre_tool"),
            (2, "hook.pre_tool"),
            (3, "hook.error"),
            (4, "hook.x"),
        ] {
            b.push_unbounded(typed(id, t));
        }
        // Emit order: 3 (high), 4 (normal), 1, 2 (low).
        let first = b.next_unsent().unwrap();
        assert_eq!(first.event.id(), 3);
        b.mark_sent(&first);
        assert_eq!(b.confirm_through(first.seq), 1);
        assert_eq!(b.last_confirmed(), None, "1 and 2 are not delivered");
        assert_eq!(send_next(&mut b), (4, Marked::First));
        let one = b.next_unsent().unwrap();
        assert_eq!(one.event.id(), 1);
        b.mark_sent(&one);
        b.confirm_through(one.seq);
        assert_eq!(b.last_confirmed(), Some(1), "2 is still out");
        let two = b.next_unsent().unwrap();
        assert!(b.skip(&two), "dropped by a rate limit counts as done");
        assert_eq!(b.last_confirmed(), Some(4));
        assert!(b.is_empty());
    }

    #[test]
    fn a_full_buffer_gives_up_the_lowest_priority_first() {
        let mut b = SendBuffer::new(3, rules());
        b.push(typed(1, "hook.pre_tool"));
        b.push(typed(2, "hook.error"));
        b.push(typed(3, "hook.x"));
        assert_eq!(send_next(&mut b), (2, Marked::First));
        assert_eq!(b.push(typed(4, "hook.error")).unwrap().event.id(), 1);
        assert_eq!(b.push(typed(5, "hook.error")).unwrap().event.id(), 3);
        // Only high ones are held: a normal newcomer is the one given up.
        assert_eq!(b.push(typed(6, "hook.x")).unwrap().event.id(), 6);
        // A high one: the oldest high, the emitted 2, gives way.
        assert_eq!(b.push(typed(7, "hook.error")).unwrap().event.id(), 2);
        assert_eq!(b.unconfirmed(), 0);
        let ids: Vec<u64> = (0..3).map(|_| send_next(&mut b).0).collect();
        assert_eq!(ids, [4, 5, 7]);
    }
}
