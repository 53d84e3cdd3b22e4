//! The relay's send buffer: every event not yet confirmed by the server, oldest first.
//!
//! The front part has been emitted on the current connection (`sent`), the rest waits. A
//! checkpoint acknowledgement confirms (removes) everything up to its sequence number; a new
//! connection rewinds so that everything unconfirmed is emitted again.

use std::collections::VecDeque;

use bus_core::Event;

/// One buffered event with the relay's own sequence number (handling order, which can
/// differ from bus id order when several threads publish).
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

#[derive(Debug)]
pub(crate) struct SendBuffer {
    entries: VecDeque<Pending>,
    capacity: usize,
    next_seq: u64,
    /// `entries[..sent]` were emitted on the current connection.
    sent: usize,
    /// The bus (or log) id of the last entry confirmed, for a durable relay's acknowledgement.
    last_confirmed: Option<u64>,
}

impl SendBuffer {
    pub(crate) fn new(capacity: usize) -> Self {
        SendBuffer {
            entries: VecDeque::with_capacity(capacity.min(4_096)),
            capacity,
            next_seq: 0,
            sent: 0,
            last_confirmed: None,
        }
    }

    /// Appends an event; when full, evicts and returns the oldest.
    pub(crate) fn push(&mut self, event: Event) -> Option<Pending> {
        let evicted = if self.entries.len() >= self.capacity {
            self.sent = self.sent.saturating_sub(1);
            self.entries.pop_front()
        } else {
            None
        };
        self.push_unbounded(event);
        evicted
    }

    /// Appends an event, never evicting: for a durable relay, whose feeder keeps within the
    /// capacity through [`room`](Self::room), so that nothing it holds is ever dropped.
    pub(crate) fn push_unbounded(&mut self, event: Event) {
        self.next_seq += 1;
        self.entries.push_back(Pending {
            seq: self.next_seq,
            event,
            emits: 0,
        });
    }

    /// How many more events fit before the capacity is reached.
    pub(crate) fn room(&self) -> usize {
        self.capacity.saturating_sub(self.entries.len())
    }

    /// The id of the last event confirmed: with entries pushed in id order and never evicted
    /// (a durable relay), it and every event pushed before it are confirmed.
    pub(crate) fn last_confirmed(&self) -> Option<u64> {
        self.last_confirmed
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Emitted on this connection and not confirmed yet.
    pub(crate) fn unconfirmed(&self) -> usize {
        self.sent
    }

    /// The first entry not yet emitted on this connection.
    pub(crate) fn next_unsent(&self) -> Option<NextUnsent> {
        self.entries.get(self.sent).map(|p| NextUnsent {
            seq: p.seq,
            event: p.event.clone(),
            is_last: self.sent + 1 == self.entries.len(),
        })
    }

    /// Records that the entry `seq` (from [`next_unsent`](Self::next_unsent)) was emitted.
    pub(crate) fn mark_sent(&mut self, seq: u64) -> Marked {
        match self.entries.get_mut(self.sent) {
            Some(p) if p.seq == seq => {
                p.emits += 1;
                self.sent += 1;
                if p.emits > 1 {
                    Marked::Resent
                } else {
                    Marked::First
                }
            }
            _ => Marked::Gone,
        }
    }

    /// Removes every emitted entry up to and including `seq`; returns how many.
    pub(crate) fn confirm_through(&mut self, seq: u64) -> usize {
        let mut confirmed = 0;
        while self.sent > 0 && self.entries.front().is_some_and(|p| p.seq <= seq) {
            self.last_confirmed = self.entries.pop_front().map(|p| p.event.id());
            self.sent -= 1;
            confirmed += 1;
        }
        confirmed
    }

    /// Starts a new connection: everything unconfirmed is to be emitted again.
    pub(crate) fn rewind(&mut self) {
        self.sent = 0;
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
        (next.event.id(), b.mark_sent(next.seq))
    }

    #[test]
    fn drops_the_oldest_when_full() {
        let mut b = SendBuffer::new(3);
        for id in 1..=3 {
            assert!(b.push(ev(id)).is_none());
        }
        assert_eq!(b.push(ev(4)).unwrap().event.id(), 1);
        assert_eq!(b.len(), 3);
        assert_eq!(b.next_unsent().unwrap().event.id(), 2);
    }

    #[test]
    fn confirms_only_what_was_sent_and_resends_the_rest_after_rewind() {
        let mut b = SendBuffer::new(10);
        (1..=5).for_each(|id| {
            b.push(ev(id));
        });
        assert_eq!(send_next(&mut b), (1, Marked::First));
        assert_eq!(send_next(&mut b), (2, Marked::First));
        let third = b.next_unsent().unwrap();
        assert!(!third.is_last);
        b.mark_sent(third.seq);
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
        assert_eq!(b.mark_sent(last.seq), Marked::First);
        assert!(b.next_unsent().is_none());
    }

    #[test]
    fn unbounded_pushes_never_evict_and_confirmation_reports_the_last_id() {
        let mut b = SendBuffer::new(2);
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
        let mut b = SendBuffer::new(2);
        b.push(ev(1));
        b.push(ev(2));
        let next = b.next_unsent().unwrap();
        b.push(ev(3)); // evicts 1, the one being emitted
        assert_eq!(b.mark_sent(next.seq), Marked::Gone);
        assert_eq!(send_next(&mut b), (2, Marked::First));
        b.push(ev(4)); // evicts 2, already sent: the sent count follows
        assert_eq!(b.unconfirmed(), 0);
        assert_eq!(send_next(&mut b), (3, Marked::First));
    }
}
