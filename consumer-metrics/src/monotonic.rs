//! Turns the bus's resettable figures into counters that never go backwards.
//!
//! `EventBus::reset_stats` zeroes every counter and bumps `stats_resets`. A Prometheus counter
//! must only grow, so each exported value is `base + current`, and on a reset the last value
//! seen before it moves into `base`. What happened between the last refresh and the reset is
//! not visible in any snapshot and is lost (refresh more often to shrink that window).

use std::collections::{HashMap, HashSet};

use bus_core::{BusStats, DurationHistogram, SubscriberStats};

/// One counter made monotonic.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Monotonic {
    base: u64,
    last: u64,
}

impl Monotonic {
    /// Takes the raw value `raw`; `reset` says the bus was reset since the previous call.
    /// A raw value below the last one is also taken as a reset (defensive: the snapshot raced
    /// a reset), so the result never decreases.
    pub(crate) fn observe(&mut self, raw: u64, reset: bool) -> u64 {
        if reset || raw < self.last {
            self.base += self.last;
        }
        self.last = raw;
        self.base + raw
    }
}

/// A handler-duration histogram made monotonic, bucket by bucket.
#[derive(Clone, Debug, Default)]
pub(crate) struct MonotonicHistogram {
    buckets: Vec<Monotonic>,
    count: Monotonic,
    sum_base: f64,
    sum_last: f64,
}

impl MonotonicHistogram {
    pub(crate) fn observe(&mut self, raw: &DurationHistogram, reset: bool) -> DurationHistogram {
        let reset = reset || raw.count < self.count.last;
        if reset {
            self.sum_base += self.sum_last;
        }
        self.sum_last = raw.sum_seconds;
        self.buckets.resize(raw.buckets.len(), Monotonic::default());
        DurationHistogram {
            buckets: raw
                .buckets
                .iter()
                .zip(&mut self.buckets)
                .map(|(&(le, n), mono)| (le, mono.observe(n, reset)))
                .collect(),
            count: self.count.observe(raw.count, reset),
            sum_seconds: self.sum_base + raw.sum_seconds,
        }
    }
}

/// The exported (monotonic) figures of one subscription.
#[derive(Clone, Debug)]
pub(crate) struct SubscriberFigures {
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
    pub(crate) duration: Option<DurationHistogram>,
}

#[derive(Default)]
struct SubscriberTrack {
    delivered: Monotonic,
    failed: Monotonic,
    dropped: Monotonic,
    duration: MonotonicHistogram,
}

/// The exported bus totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    pub(crate) published: u64,
    pub(crate) filtered: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
}

/// All the bookkeeping for one bus.
#[derive(Default)]
pub(crate) struct Tracker {
    resets_seen: u64,
    published: Monotonic,
    filtered: Monotonic,
    failed: Monotonic,
    dropped: Monotonic,
    subscribers: HashMap<u64, SubscriberTrack>,
}

impl Tracker {
    /// True when `stats` shows a reset since the last [`update`](Self::update), or a figure
    /// below what was seen (a snapshot that raced a reset).
    pub(crate) fn sees_reset(&self, stats: &BusStats) -> bool {
        stats.stats_resets != self.resets_seen
            || stats.events_published < self.published.last
            || stats.events_filtered < self.filtered.last
            || stats.events_failed < self.failed.last
            || stats.events_dropped < self.dropped.last
    }

    /// Takes a snapshot and returns the monotonic totals and per-subscription figures (in
    /// the snapshot's order). Subscriptions that are gone are forgotten: their series end.
    pub(crate) fn update(&mut self, stats: &BusStats) -> (Totals, Vec<SubscriberFigures>) {
        let reset = stats.stats_resets != self.resets_seen;
        self.resets_seen = stats.stats_resets;
        let totals = Totals {
            published: self.published.observe(stats.events_published, reset),
            filtered: self.filtered.observe(stats.events_filtered, reset),
            failed: self.failed.observe(stats.events_failed, reset),
            dropped: self.dropped.observe(stats.events_dropped, reset),
        };
        let live: HashSet<u64> = stats.subscribers.iter().map(|s| s.id).collect();
        self.subscribers.retain(|id, _| live.contains(id));
        let rows = stats
            .subscribers
            .iter()
            .map(|row| self.subscriber(row, reset))
            .collect();
        (totals, rows)
    }

    fn subscriber(&mut self, row: &SubscriberStats, reset: bool) -> SubscriberFigures {
        let track = self.subscribers.entry(row.id).or_default();
        SubscriberFigures {
            delivered: track.delivered.observe(row.delivered, reset),
            failed: track.failed.observe(row.failed, reset),
            dropped: track.dropped.observe(row.dropped, reset),
            duration: row
                .handler_duration
                .as_ref()
                .map(|h| track.duration.observe(h, reset)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_carry_over_resets() {
        let mut m = Monotonic::default();
        assert_eq!(m.observe(5, false), 5);
        assert_eq!(m.observe(8, false), 8);
        // Reset, then 2 new events: 8 + 2.
        assert_eq!(m.observe(2, true), 10);
        assert_eq!(m.observe(3, false), 11);
        // A reset the snapshot did not flag, seen as a decrease.
        assert_eq!(m.observe(1, false), 12);
        // A flagged reset after which the count already grew past the old value.
        assert_eq!(m.observe(50, true), 62);
    }

    #[test]
    fn histograms_carry_over_resets() {
        let mut h = MonotonicHistogram::default();
        let raw = |b0, b1, count, sum| DurationHistogram {
            buckets: vec![(0.1, b0), (1.0, b1)],
            sum_seconds: sum,
            count,
        };
        h.observe(&raw(1, 2, 3, 2.5), false);
        let out = h.observe(&raw(0, 1, 1, 0.5), true);
        assert_eq!(out.buckets, vec![(0.1, 1), (1.0, 3)]);
        assert_eq!(out.count, 4);
        assert!((out.sum_seconds - 3.0).abs() < 1e-12);
    }

    #[test]
    fn gone_subscriptions_are_forgotten() {
        let mut t = Tracker::default();
        let row = |id| SubscriberStats {
            id,
            name: format!("s{id}"),
            kind: bus_core::SubscriberKind::Sync,
            patterns: vec!["*".into()],
            delivered: 1,
            failed: 0,
            dropped: 0,
            queue_len: 0,
            queue_capacity: 0,
            overflow: None,
            handler_duration: None,
            rate_limit: None,
            priorities: None,
        };
        let mut stats = BusStats {
            subscribers: vec![row(1), row(2)],
            ..BusStats::default()
        };
        t.update(&stats);
        stats.subscribers.remove(0);
        let (_, rows) = t.update(&stats);
        assert_eq!(rows.len(), 1);
        assert_eq!(t.subscribers.len(), 1);
    }
}
