//! The hot path's clock: event timestamps and handler durations read from the CPU's
//! time-stamp counter through `quanta`, instead of a `clock_gettime` per read.
//!
//! Precision: quanta calibrates the counter against the OS monotonic clock once per process
//! (at the first bus built) and reads it in nanoseconds; where the CPU has no invariant
//! counter it falls back to the OS monotonic clock itself. Wall time is that monotonic time
//! plus an offset to the system clock taken again whenever the last one is more than
//! [`REANCHOR_NANOS`] old, so timestamps follow the system clock (steps and NTP slewing
//! included) within that window, and in between differ from `SystemTime::now()` only by the
//! counter's drift against it: parts per million, well under a microsecond per window.
//! Like `SystemTime::now()`, two timestamps may go backwards across a re-anchoring (by that
//! drift) or a clock step; event order is the id's job, never the timestamp's.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How old the wall-clock offset may get before it is read again: 50 ms.
pub(crate) const REANCHOR_NANOS: u64 = 50_000_000;

struct Anchored {
    clock: quanta::Clock,
    /// The raw reading the clock's nanoseconds count from.
    base: u64,
    /// Unix nanoseconds minus the clock's nanoseconds, as of `anchored_at` (wrapping).
    offset: AtomicU64,
    /// The clock's nanoseconds when `offset` was taken.
    anchored_at: AtomicU64,
}

fn anchored() -> &'static Anchored {
    static ANCHORED: OnceLock<Anchored> = OnceLock::new();
    ANCHORED.get_or_init(|| {
        let clock = quanta::Clock::new();
        let anchored = Anchored {
            base: clock.raw(),
            clock,
            offset: AtomicU64::new(0),
            anchored_at: AtomicU64::new(0),
        };
        anchored.reanchor();
        anchored
    })
}

impl Anchored {
    /// Nanoseconds since `base`.
    // Inlined into the publish path: see `History::record_new`.
    #[inline]
    fn nanos(&self) -> u64 {
        self.clock.delta_as_nanos(self.base, self.clock.raw())
    }

    fn reanchor(&self) {
        let wall = crate::time::unix_nanos(SystemTime::now());
        let now = self.nanos();
        // Racing threads each store a valid pair's offset; a reader uses either.
        self.offset.store(wall.wrapping_sub(now), Ordering::Relaxed);
        self.anchored_at.store(now, Ordering::Relaxed);
    }
}

/// Calibrates the counter now rather than on the first publish.
pub(crate) fn warm_up() {
    anchored();
}

/// The wall-clock time now, as Unix nanoseconds and as a `SystemTime`.
// Inlined into the publish path: see `History::record_new`.
#[inline]
pub(crate) fn now() -> (u64, SystemTime) {
    let a = anchored();
    let mut now = a.nanos();
    if now.saturating_sub(a.anchored_at.load(Ordering::Relaxed)) > REANCHOR_NANOS {
        a.reanchor();
        now = a.nanos();
    }
    let unix = now.wrapping_add(a.offset.load(Ordering::Relaxed));
    (unix, UNIX_EPOCH + Duration::from_nanos(unix))
}

/// A raw reading, for [`between`]: the counter itself, not yet scaled to nanoseconds.
pub(crate) fn start() -> u64 {
    anchored().clock.raw()
}

/// The time between two readings of [`start`].
#[cfg(test)]
pub(crate) fn between(start: u64, end: u64) -> Duration {
    Duration::from_nanos(nanos_between(start, end))
}

/// [`between`] in nanoseconds.
pub(crate) fn nanos_between(start: u64, end: u64) -> u64 {
    anchored().clock.delta_as_nanos(start, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_follows_the_system_clock() {
        let before = SystemTime::now();
        let (unix, time) = now();
        let after = SystemTime::now();
        assert_eq!(crate::time::unix_nanos(time), unix);
        // One re-anchoring window of slack either side (a loaded machine may stall us).
        let slack = Duration::from_nanos(REANCHOR_NANOS);
        assert!(
            time + slack >= before && time <= after + slack,
            "{time:?} not near {before:?}"
        );
    }

    #[test]
    fn durations_measure_elapsed_time() {
        let t = start();
        std::thread::sleep(Duration::from_millis(20));
        let elapsed = between(t, start());
        assert!(elapsed >= Duration::from_millis(19), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
}
