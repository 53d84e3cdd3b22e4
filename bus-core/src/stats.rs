//! Serializable snapshots of the bus's counters.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::Overflow;

/// A point-in-time view of the bus, as returned by [`EventBus::stats`](crate::EventBus::stats).
///
/// The first eight fields carry the original's keys and meaning.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BusStats {
    /// Events accepted by `publish` (not disabled, not filtered).
    pub events_published: u64,
    /// Events refused by the filters.
    pub events_filtered: u64,
    /// Handler calls that returned `Err` or panicked, over every subscriber.
    pub events_failed: u64,
    /// When the last event was accepted, RFC 3339 UTC; `None` before the first one.
    pub last_event_time: Option<String>,
    /// Whether the bus accepts events.
    pub enabled: bool,
    /// Whether any filter is set.
    pub filters_active: bool,
    /// How many filter patterns are set.
    pub filter_count: usize,
    /// How many events the history holds now.
    pub history_size: usize,
    /// How many events the history can hold (0: history is off).
    pub history_capacity: usize,
    /// Events a full queue refused or evicted, over every subscriber.
    pub events_dropped: u64,
    /// How many times [`reset_stats`](crate::EventBus::reset_stats) ran; a consumer that turns
    /// these totals into monotonic counters uses it to spot a reset.
    pub stats_resets: u64,
    /// One row per live subscription, in subscription order.
    pub subscribers: Vec<SubscriberStats>,
}

/// How a subscription receives events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriberKind {
    /// A closure run on the publishing thread (`on`).
    Sync,
    /// A closure run once, on the publishing thread (`once`).
    Once,
    /// An async closure with its own queue and worker (`on_async`).
    Async,
    /// A [`Subscriber`](crate::Subscriber) with its own queue and worker (`subscribe`).
    Subscriber,
}

/// Counters of one subscription.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriberStats {
    /// The subscription's id.
    pub id: u64,
    /// Its name: the `Subscriber`'s own, or `kind#id` for closures.
    pub name: String,
    /// How it receives events.
    pub kind: SubscriberKind,
    /// The patterns it matches.
    pub patterns: Vec<String>,
    /// Events its handler finished without error.
    pub delivered: u64,
    /// Events its handler failed on (`Err` or panic).
    pub failed: u64,
    /// Events its full queue refused or evicted.
    pub dropped: u64,
    /// Events waiting in its queue now (0 for sync handlers).
    pub queue_len: usize,
    /// Its queue capacity (0 for sync handlers, which have no queue).
    pub queue_capacity: usize,
    /// Its overflow policy (`None` for sync handlers).
    pub overflow: Option<Overflow>,
    /// How long its handler took per event (queued subscribers only).
    pub handler_duration: Option<DurationHistogram>,
    /// Its rate limit and what the limit did (rate-limited queued subscribers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<crate::RateLimitStats>,
    /// Its queue's priority rules, as `pattern=priority,...` (when it has any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<String>,
}

/// A cumulative histogram of handler durations, ready to export as a Prometheus histogram.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DurationHistogram {
    /// `(upper bound in seconds, events that took at most that long)`, cumulative, ascending;
    /// the implicit `+Inf` bucket is `count`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of all durations, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

/// Bucket bounds for handler durations, in seconds: 5 µs to 10 s.
pub const DURATION_BUCKETS: [f64; 20] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// [`DURATION_BUCKETS`] in nanoseconds.
const BUCKET_NANOS: [u64; DURATION_BUCKETS.len()] = {
    let mut nanos = [0; DURATION_BUCKETS.len()];
    let mut i = 0;
    while i < nanos.len() {
        nanos[i] = (DURATION_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    nanos
};

/// Lock-free recorder behind [`DurationHistogram`].
#[derive(Default)]
pub(crate) struct DurationRecorder {
    counts: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl DurationRecorder {
    /// Adds one duration. Only the queue's worker records, so plain stores do (a concurrent
    /// `reset` may lose its zeroing of a cell being written at that instant, never a count).
    #[cfg(test)]
    pub(crate) fn record(&self, elapsed: std::time::Duration) {
        self.record_nanos(elapsed.as_nanos().min(u128::from(u64::MAX)) as u64);
    }

    /// [`record`](Self::record) in whole nanoseconds, compared as integers: the worker
    /// records once per event, and this is the cheaper half of it.
    pub(crate) fn record_nanos(&self, nanos: u64) {
        let bucket = BUCKET_NANOS
            .iter()
            .position(|&le| nanos <= le)
            .unwrap_or(BUCKET_NANOS.len());
        crate::shard::bump(&self.counts[bucket], true);
        let sum = &self.sum_nanos;
        sum.store(
            sum.load(Ordering::Relaxed).wrapping_add(nanos),
            Ordering::Relaxed,
        );
    }

    pub(crate) fn snapshot(&self) -> DurationHistogram {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(DURATION_BUCKETS.len());
        for (le, count) in DURATION_BUCKETS.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            buckets.push((*le, cumulative));
        }
        let count = cumulative + self.counts[DURATION_BUCKETS.len()].load(Ordering::Relaxed);
        DurationHistogram {
            buckets,
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count,
        }
    }

    pub(crate) fn reset(&self) {
        self.counts
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
        self.sum_nanos.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_duration_on_a_bound_counts_in_that_bucket() {
        let r = DurationRecorder::default();
        r.record(Duration::from_micros(5));
        r.record(Duration::from_nanos(5_001));
        r.record(Duration::from_secs(10));
        let h = r.snapshot();
        assert_eq!(h.buckets[0], (0.000_005, 1));
        assert_eq!(h.buckets[1], (0.000_01, 2));
        assert_eq!(*h.buckets.last().unwrap(), (10.0, 3));
    }

    #[test]
    fn histogram_is_cumulative() {
        let r = DurationRecorder::default();
        r.record(Duration::from_micros(3));
        r.record(Duration::from_millis(3));
        r.record(Duration::from_secs(60));
        let h = r.snapshot();
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], (0.000_005, 1));
        let at_5ms = h.buckets.iter().find(|(le, _)| *le == 0.005).unwrap();
        assert_eq!(at_5ms.1, 2);
        assert_eq!(h.buckets.last().unwrap().1, 2, "60 s only in +Inf");
        assert!((h.sum_seconds - 60.003_003).abs() < 1e-9);
    }
}
