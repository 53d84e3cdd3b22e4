//! What the log knows of the stream's extent without asking Redis: the newest id issued and
//! how many entries are stored, kept consistent with each other and only ever moving forward.

use std::sync::{Mutex, MutexGuard};

use bus_store::LogId;
use tokio::sync::watch;

/// One observation of the stream, taken atomically by Redis (a `MULTI` or `XINFO STREAM`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Extent {
    /// The newest id ever issued on the stream (0: none).
    pub(crate) last: u64,
    /// Entries stored now.
    pub(crate) stored: u64,
}

impl Extent {
    /// Whether `self` was observed after `other`: later ids, or as many ids and fewer entries
    /// (a trim). Observations answered out of order must not move the log back.
    fn is_newer_than(&self, other: &Extent) -> bool {
        self.last > other.last || (self.last == other.last && self.stored < other.stored)
    }

    /// The oldest stored id: stored entries are the newest `stored` of a dense range.
    pub(crate) fn first(&self) -> Option<LogId> {
        (self.stored > 0).then(|| LogId(self.last - self.stored + 1))
    }

    /// The newest issued id.
    pub(crate) fn last(&self) -> Option<LogId> {
        (self.last > 0).then_some(LogId(self.last))
    }

    /// All entries issued but no longer stored.
    pub(crate) fn gone(&self) -> u64 {
        self.last.saturating_sub(self.stored)
    }
}

/// The shared extent and the watch that followers wait on.
pub(crate) struct Positions {
    extent: Mutex<Extent>,
    appends: watch::Sender<Option<LogId>>,
    /// Entries already gone when the log was opened (so `trimmed` counts since then).
    gone_at_open: u64,
}

impl Positions {
    pub(crate) fn new(at_open: Extent) -> Self {
        let (appends, _) = watch::channel(at_open.last());
        Self {
            extent: Mutex::new(at_open),
            appends,
            gone_at_open: at_open.gone(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Extent> {
        // Nothing panics while holding it; a poisoned value is still a valid extent.
        self.extent.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current extent.
    pub(crate) fn get(&self) -> Extent {
        *self.lock()
    }

    /// Takes in an observation; wakes the followers when it has new ids.
    pub(crate) fn observe(&self, seen: Extent) {
        let mut extent = self.lock();
        if !seen.is_newer_than(&extent) {
            return;
        }
        let grew = seen.last > extent.last;
        *extent = seen;
        drop(extent);
        if grew {
            self.appends.send_replace(seen.last());
        }
    }

    /// Events trimmed since the log was opened.
    pub(crate) fn trimmed(&self) -> u64 {
        self.get().gone().saturating_sub(self.gone_at_open)
    }

    /// A receiver of the newest id.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<LogId>> {
        self.appends.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_observations_never_move_the_extent_back() {
        let positions = Positions::new(Extent { last: 4, stored: 2 });
        let mut rx = positions.subscribe();
        assert_eq!(*rx.borrow_and_update(), Some(LogId(4)));
        positions.observe(Extent {
            last: 10,
            stored: 8,
        });
        positions.observe(Extent { last: 7, stored: 5 }); // answered late
        assert_eq!(
            positions.get(),
            Extent {
                last: 10,
                stored: 8
            }
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), Some(LogId(10)));
        positions.observe(Extent {
            last: 10,
            stored: 3,
        }); // a trim
        assert_eq!(positions.get().first(), Some(LogId(8)));
        assert!(!rx.has_changed().unwrap(), "a trim issues no id");
        assert_eq!(positions.trimmed(), 5);
        assert_eq!(Extent { last: 3, stored: 0 }.first(), None);
        assert_eq!(Extent::default().last(), None);
    }
}
