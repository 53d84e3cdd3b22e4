//! Per-event-type rate limiting of log lines: governor's keyed GCRA limiter (the same limiter,
//! and the same [`RateLimit`] form, as bus-core's per-consumer limits), with a bounded table
//! of the types it tracks and a summary of what it skipped.

use std::collections::HashMap;
use std::time::Duration;

use bus_core::RateLimit;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::HashMapStateStore;

/// Types tracked at once; past this, new types share one overflow entry so a flood of unique
/// names cannot grow the table without bound.
pub(crate) const MAX_TRACKED_TYPES: usize = 4096;
/// The key of that shared entry.
pub(crate) const OVERFLOW_KEY: &str = "(other event types)";
/// How often the skipped counts are reported (one summary line per type that skipped any).
pub(crate) const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);

/// Events of one type skipped since the last summary.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) event_type: String,
    pub(crate) count: u64,
}

/// What to do with one event.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Log the event itself.
    pub(crate) log: bool,
    /// Summaries to log first (due every [`SUMMARY_INTERVAL`]).
    pub(crate) summaries: Vec<Skipped>,
}

type Keyed<C> = governor::RateLimiter<
    String,
    HashMapStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// One entry of the table: skipped since the last summary, and whether the type was seen
/// since the last sweep (types neither seen nor owed a summary are forgotten).
#[derive(Default)]
struct Tracked {
    skipped: u64,
    seen: bool,
}

pub(crate) struct RateLimiter<C: Clock = DefaultClock> {
    limiter: Keyed<C>,
    clock: C,
    tracked: HashMap<String, Tracked>,
    next_sweep: C::Instant,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self::with_clock(limit, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    pub(crate) fn with_clock(limit: RateLimit, clock: C) -> Self {
        let next_sweep = clock.now() + SUMMARY_INTERVAL.into();
        RateLimiter {
            limiter: governor::RateLimiter::hashmap_with_clock(limit.quota(), clock.clone()),
            clock,
            tracked: HashMap::new(),
            next_sweep,
        }
    }

    /// Decides for one event of `event_type`, now.
    pub(crate) fn check(&mut self, event_type: &str) -> Decision {
        let mut summaries = Vec::new();
        let now = self.clock.now();
        if now >= self.next_sweep {
            self.sweep(&mut summaries);
            self.next_sweep = now + SUMMARY_INTERVAL.into();
        }
        let room = self.tracked.len() < MAX_TRACKED_TYPES && self.limiter.len() < MAX_TRACKED_TYPES;
        let key = if room || self.tracked.contains_key(event_type) {
            event_type
        } else {
            OVERFLOW_KEY
        };
        let entry = self.tracked.entry(key.to_owned()).or_default();
        entry.seen = true;
        let log = self.limiter.check_key(&key.to_owned()).is_ok();
        if !log {
            entry.skipped += 1;
        }
        Decision { log, summaries }
    }

    /// Reports every skipped count, forgets types that were quiet since the last sweep, and
    /// lets governor drop the states that are back to fresh.
    fn sweep(&mut self, summaries: &mut Vec<Skipped>) {
        self.tracked.retain(|event_type, t| {
            if t.skipped > 0 {
                summaries.push(Skipped {
                    event_type: event_type.clone(),
                    count: std::mem::take(&mut t.skipped),
                });
            }
            std::mem::take(&mut t.seen)
        });
        summaries.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        self.limiter.retain_recent();
    }

    /// Every skipped count not yet reported; for shutdown.
    pub(crate) fn drain(&mut self) -> Vec<Skipped> {
        let mut out: Vec<Skipped> = self
            .tracked
            .drain()
            .filter(|(_, t)| t.skipped > 0)
            .map(|(event_type, t)| Skipped {
                event_type,
                count: t.skipped,
            })
            .collect();
        out.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn limiter(text: &str) -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        (
            RateLimiter::with_clock(text.parse().unwrap(), clock.clone()),
            clock,
        )
    }

    #[test]
    fn logs_the_burst_then_summarises_every_second() {
        let (mut rl, clock) = limiter("3/s");
        let logged: Vec<bool> = (0..10).map(|_| rl.check("flood").log).collect();
        assert_eq!(
            logged,
            [
                true, true, true, false, false, false, false, false, false, false
            ]
        );
        clock.advance(Duration::from_secs(1));
        let next = rl.check("flood");
        assert!(next.log, "a second later the budget is back");
        assert_eq!(
            next.summaries,
            [Skipped {
                event_type: "flood".into(),
                count: 7
            }]
        );
        let again = rl.check("flood");
        assert!(again.log && again.summaries.is_empty());
    }

    #[test]
    fn the_rate_holds_over_time_per_type() {
        let (mut rl, clock) = limiter("10/s burst 1");
        let mut logged = 0;
        // 100 events a second for 10 s: 10 a second get through (GCRA: one per 100 ms).
        for _ in 0..1_000 {
            if rl.check("a").log {
                logged += 1;
            }
            clock.advance(Duration::from_millis(10));
        }
        assert!((99..=101).contains(&logged), "{logged}");
        assert!(rl.check("b").log, "b has its own budget");
    }

    #[test]
    fn quiet_types_are_summarised_and_forgotten() {
        let (mut rl, clock) = limiter("1/s");
        assert!(rl.check("a").log);
        assert!(!rl.check("a").log);
        clock.advance(Duration::from_secs(2));
        let later = rl.check("c");
        assert_eq!(
            later.summaries,
            [Skipped {
                event_type: "a".into(),
                count: 1
            }]
        );
        clock.advance(Duration::from_secs(2));
        rl.check("c");
        assert_eq!(
            rl.tracked.len(),
            1,
            "a, quiet for a whole sweep, is forgotten"
        );
    }

    #[test]
    fn drain_reports_pending_counts() {
        let (mut rl, _clock) = limiter("2/s");
        for _ in 0..5 {
            rl.check("x");
        }
        rl.check("y");
        assert_eq!(
            rl.drain(),
            [Skipped {
                event_type: "x".into(),
                count: 3
            }]
        );
        assert!(rl.drain().is_empty());
    }

    #[test]
    fn unique_type_floods_share_one_entry_past_the_cap() {
        let (mut rl, _clock) = limiter("1/s");
        for i in 0..MAX_TRACKED_TYPES + 10 {
            rl.check(&format!("t{i}"));
        }
        assert_eq!(rl.tracked.len(), MAX_TRACKED_TYPES + 1);
        assert!(rl.limiter.len() <= MAX_TRACKED_TYPES + 1);
        // The first of the ten overflowing types used the shared entry's one event.
        assert_eq!(rl.tracked[OVERFLOW_KEY].skipped, 9);
    }
}
