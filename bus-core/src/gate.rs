//! A consumer's rate gate: its worker asks it before handling each event, and waits (`delay`)
//! or skips the event (`drop`) when the consumer's governor limiter says it is over its rate.
//! Unlimited consumers pay one relaxed atomic load per event. Public so that consumers with a
//! send loop of their own (the Socket.IO relay) use the very same limiter and figures.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use compact_str::CompactString;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};

use crate::{Event, RateLimit, RatePolicy};

/// Event types whose drops are counted one by one; the rest share [`OTHER_TYPES`].
const MAX_COUNTED_TYPES: usize = 256;
/// The entry shared, in [`RateLimitStats::dropped_by_type`], by drops of the types past the
/// first 256.
pub const OTHER_TYPES: &str = "(other event types)";

/// Tokio's clock as a governor clock, measured from the gate's creation. The waits run on
/// tokio's timer, and tests with tokio's paused time (`start_paused`) see the limiter move
/// with the virtual clock, so rates are checked exactly without timing anything.
#[derive(Clone, Debug)]
pub(crate) struct TokioClock {
    origin: tokio::time::Instant,
}

impl Default for TokioClock {
    fn default() -> Self {
        TokioClock {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type Limiter = governor::RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

/// The figures of a rate-limited consumer, in its [`SubscriberStats`](crate::SubscriberStats).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RateLimitStats {
    /// The configured limit in its full form, such as `500/s burst 1000 delay`.
    pub limit: String,
    /// The configured rate, events per second.
    pub configured_per_second: f64,
    /// The burst allowed after a quiet spell.
    pub burst: u32,
    /// What happens over the rate.
    pub policy: RatePolicy,
    /// Events per second let through over the last full second (0 when idle for two).
    pub current_per_second: f64,
    /// Events that had to wait for the limit (`delay`), counted once each.
    pub delayed: u64,
    /// Events dropped by the limit (`drop`); they count in `dropped` too.
    pub dropped: u64,
    /// The same drops per event type (types past the first 256 share one entry).
    pub dropped_by_type: BTreeMap<String, u64>,
}

struct Limited {
    limit: RateLimit,
    limiter: Limiter,
    clock: TokioClock,
    /// Start of the current one-second metering window, on `clock`.
    window_start: Duration,
    in_window: u64,
    last_rate: f64,
}

#[derive(Default)]
struct Counters {
    by_type: HashMap<CompactString, u64>,
}

/// What the gate says about the next event.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Handle it now.
    Go,
    /// Over the rate under `delay`: ask again after this long.
    Wait(Duration),
    /// Over the rate under `drop`: skip it.
    Drop,
}

/// One consumer's rate limit (governor's GCRA on tokio's clock), changeable while the
/// consumer runs, with the figures of [`RateLimitStats`].
///
/// ```
/// use bus_core::{Event, RateGate, Verdict};
///
/// let gate = RateGate::new(Some("2/s burst 2 drop".parse()?));
/// assert_eq!((gate.check(), gate.check(), gate.check()), (Verdict::Go, Verdict::Go, Verdict::Drop));
/// gate.count_drop("hook.pre_tool");
/// assert_eq!(gate.stats().unwrap().dropped_by_type["hook.pre_tool"], 1);
/// # Ok::<(), bus_core::BusError>(())
/// ```
#[derive(Default)]
pub struct RateGate {
    active: AtomicBool,
    limited: Mutex<Option<Limited>>,
    counters: Mutex<Counters>,
    delayed: AtomicU64,
    dropped: AtomicU64,
}

impl std::fmt::Debug for RateGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateGate")
            .field("limit", &self.limit())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RateGate {
    /// A gate with `limit` (`None`: every event goes at once).
    pub fn new(limit: Option<RateLimit>) -> Self {
        let gate = RateGate::default();
        gate.set(limit);
        gate
    }

    /// True when a limit is set: the worker's fast-path test.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Sets, changes or (with `None`) removes the limit. A new limit starts with a full burst;
    /// the counts carry on.
    pub fn set(&self, limit: Option<RateLimit>) {
        let mut slot = lock(&self.limited);
        *slot = limit.map(|limit| {
            let clock = TokioClock::default();
            Limited {
                limit,
                limiter: governor::RateLimiter::direct_with_clock(limit.quota(), clock.clone()),
                window_start: clock.now(),
                clock,
                in_window: 0,
                last_rate: 0.0,
            }
        });
        self.active.store(slot.is_some(), Ordering::Relaxed);
    }

    /// The limit in force.
    pub fn limit(&self) -> Option<RateLimit> {
        lock(&self.limited).as_ref().map(|l| l.limit)
    }

    /// Asks the limiter for one event; `Go` uses up a cell.
    pub fn check(&self) -> Verdict {
        let mut slot = lock(&self.limited);
        let Some(l) = slot.as_mut() else {
            return Verdict::Go;
        };
        match l.limiter.check() {
            Ok(()) => {
                let now = l.clock.now();
                let elapsed = now.saturating_sub(l.window_start);
                if elapsed >= Duration::from_secs(1) {
                    l.last_rate = l.in_window as f64 / elapsed.as_secs_f64();
                    l.window_start = now;
                    l.in_window = 0;
                }
                l.in_window += 1;
                Verdict::Go
            }
            Err(not_until) => match l.limit.policy {
                RatePolicy::Delay => Verdict::Wait(not_until.wait_time_from(l.clock.now())),
                RatePolicy::Drop => Verdict::Drop,
            },
        }
    }

    /// Waits until `event` may be handled (true), or counts it dropped by the limit (false).
    pub async fn admit(&self, event: &Event) -> bool {
        let mut waited = false;
        loop {
            match self.check() {
                Verdict::Go => return true,
                Verdict::Drop => {
                    self.count_drop(event.event_type());
                    return false;
                }
                Verdict::Wait(pause) => {
                    if !waited {
                        waited = true;
                        self.count_delayed();
                    }
                    // A limit changed or removed meanwhile is seen on the next check.
                    tokio::time::sleep(pause.max(Duration::from_micros(1))).await;
                }
            }
        }
    }

    /// Counts one event that had to wait (for a caller that does its own waiting on
    /// [`Verdict::Wait`]; count each event once).
    pub fn count_delayed(&self) {
        self.delayed.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one event of `event_type` dropped by the limit (after [`Verdict::Drop`]).
    pub fn count_drop(&self, event_type: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        let mut c = lock(&self.counters);
        let key = if c.by_type.len() < MAX_COUNTED_TYPES || c.by_type.contains_key(event_type) {
            CompactString::from(event_type)
        } else {
            CompactString::const_new(OTHER_TYPES)
        };
        *c.by_type.entry(key).or_default() += 1;
    }

    /// The figures, while a limit is set.
    pub fn stats(&self) -> Option<RateLimitStats> {
        let slot = lock(&self.limited);
        let l = slot.as_ref()?;
        let idle = l.clock.now().saturating_sub(l.window_start) >= Duration::from_secs(2);
        let dropped_by_type = lock(&self.counters)
            .by_type
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        Some(RateLimitStats {
            limit: l.limit.to_string(),
            configured_per_second: l.limit.events_per_second(),
            burst: l.limit.burst.get(),
            policy: l.limit.policy,
            current_per_second: if idle { 0.0 } else { l.last_rate },
            delayed: self.delayed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            dropped_by_type,
        })
    }

    /// Zeroes the delayed and dropped counts.
    pub fn reset_counters(&self) {
        self.delayed.store(0, Ordering::Relaxed);
        self.dropped.store(0, Ordering::Relaxed);
        lock(&self.counters).by_type.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn limit(text: &str) -> RateLimit {
        text.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn delay_lets_through_the_rate_on_the_virtual_clock() {
        let gate = RateGate::new(Some(limit("500/s burst 50")));
        let event = Event::new(1, "t", serde_json::json!(null));
        let start = tokio::time::Instant::now();
        let mut handled = 0u64;
        while start.elapsed() < Duration::from_secs(10) {
            assert!(gate.admit(&event).await);
            handled += 1;
        }
        // The burst, then 500 a second: within 5% of 5,000 over the 10 s.
        let steady = (handled - 50) as f64 / 10.0;
        assert!(
            (steady - 500.0).abs() <= 25.0,
            "{handled} handled, {steady}/s"
        );
        let stats = gate.stats().unwrap();
        assert!(
            (stats.current_per_second - 500.0).abs() <= 25.0,
            "{stats:?}"
        );
        assert_eq!(stats.dropped, 0);
        assert!(stats.delayed >= handled - 51, "{stats:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn drop_counts_exactly_per_type_and_the_limit_can_change() {
        let gate = RateGate::new(Some(limit("10/s burst 5 drop")));
        let a = Event::new(1, "a", serde_json::json!(null));
        let b = Event::new(2, "b", serde_json::json!(null));
        let mut let_through = 0;
        for i in 0..100 {
            if gate.admit(if i % 4 == 0 { &b } else { &a }).await {
                let_through += 1;
            }
        }
        // No time passed: exactly the burst went through.
        assert_eq!(let_through, 5);
        let stats = gate.stats().unwrap();
        assert_eq!(stats.dropped, 95);
        let (a_dropped, b_dropped) = (stats.dropped_by_type["a"], stats.dropped_by_type["b"]);
        assert_eq!(a_dropped + b_dropped, 95);
        // Every fourth event (0, 4, 8, ...) is b: 25 of them, two among the first five.
        assert_eq!(b_dropped, 25 - 2);
        gate.set(Some(RateLimit::per_second(NonZeroU32::new(1000).unwrap())));
        assert!(gate.admit(&a).await);
        assert_eq!(gate.stats().unwrap().limit, "1000/s burst 1000 delay");
        gate.set(None);
        assert!(!gate.is_active() && gate.stats().is_none());
    }
}
