//! Per-event-type rate limiting of log lines.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How many events of one type are logged per window before the rest are only counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Events of one type logged per window (at least 1).
    pub max_per_window: u32,
    /// The window length (default one second).
    pub window: Duration,
}

impl RateLimit {
    /// `max_per_window` events of each type per second.
    pub fn per_second(max_per_window: u32) -> Self {
        RateLimit {
            max_per_window,
            window: Duration::from_secs(1),
        }
    }
}

/// Types tracked at once; past this, new types share one overflow entry so a flood of unique
/// names cannot grow the table without bound.
const MAX_TRACKED_TYPES: usize = 4096;
/// The key of that shared entry.
pub(crate) const OVERFLOW_KEY: &str = "(other event types)";

/// Events of one type skipped in a window that has ended.
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
    /// Summaries of finished windows to log first.
    pub(crate) summaries: Vec<Skipped>,
}

struct Window {
    started: Instant,
    logged: u32,
    skipped: u64,
}

pub(crate) struct RateLimiter {
    limit: RateLimit,
    windows: HashMap<String, Window>,
    next_sweep: Option<Instant>,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        RateLimiter {
            limit,
            windows: HashMap::new(),
            next_sweep: None,
        }
    }

    /// Decides for one event of `event_type` seen at `now`.
    pub(crate) fn check(&mut self, event_type: &str, now: Instant) -> Decision {
        let mut summaries = Vec::new();
        if self.next_sweep.is_none_or(|at| now >= at) {
            self.sweep(now, &mut summaries);
            self.next_sweep = Some(now + self.limit.window);
        }
        let key = if self.windows.contains_key(event_type) || self.windows.len() < MAX_TRACKED_TYPES
        {
            event_type
        } else {
            OVERFLOW_KEY
        };
        let window = self.windows.entry(key.to_owned()).or_insert(Window {
            started: now,
            logged: 0,
            skipped: 0,
        });
        if now.duration_since(window.started) >= self.limit.window {
            if window.skipped > 0 {
                summaries.push(Skipped {
                    event_type: key.to_owned(),
                    count: window.skipped,
                });
            }
            *window = Window {
                started: now,
                logged: 0,
                skipped: 0,
            };
        }
        let log = window.logged < self.limit.max_per_window;
        if log {
            window.logged += 1;
        } else {
            window.skipped += 1;
        }
        Decision { log, summaries }
    }

    /// Reports the skipped counts of every ended window and forgets idle types.
    fn sweep(&mut self, now: Instant, summaries: &mut Vec<Skipped>) {
        let window = self.limit.window;
        self.windows.retain(|event_type, w| {
            if now.duration_since(w.started) < window {
                return true;
            }
            if w.skipped > 0 {
                summaries.push(Skipped {
                    event_type: event_type.clone(),
                    count: w.skipped,
                });
            }
            false
        });
    }

    /// Every skipped count not yet reported, whatever the window; for shutdown.
    pub(crate) fn drain(&mut self) -> Vec<Skipped> {
        let mut out: Vec<Skipped> = self
            .windows
            .drain()
            .filter(|(_, w)| w.skipped > 0)
            .map(|(event_type, w)| Skipped {
                event_type,
                count: w.skipped,
            })
            .collect();
        out.sort_by(|a, b| a.event_type.cmp(&b.event_type));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(n: u32) -> RateLimiter {
        RateLimiter::new(RateLimit::per_second(n))
    }

    #[test]
    fn logs_the_first_n_then_summarises_when_the_window_ends() {
        let mut rl = limiter(3);
        let t0 = Instant::now();
        let logged: Vec<bool> = (0..10)
            .map(|i| rl.check("flood", t0 + Duration::from_millis(i)).log)
            .collect();
        assert_eq!(
            logged,
            [
                true, true, true, false, false, false, false, false, false, false
            ]
        );
        let next = rl.check("flood", t0 + Duration::from_millis(1000));
        assert!(next.log);
        assert_eq!(
            next.summaries,
            [Skipped {
                event_type: "flood".into(),
                count: 7
            }]
        );
        // The new window logs again and has nothing to report yet.
        let again = rl.check("flood", t0 + Duration::from_millis(1001));
        assert!(again.log && again.summaries.is_empty());
    }

    #[test]
    fn types_are_limited_separately_and_quiet_types_are_summarised_by_the_sweep() {
        let mut rl = limiter(1);
        let t0 = Instant::now();
        assert!(rl.check("a", t0).log);
        assert!(!rl.check("a", t0).log);
        assert!(rl.check("b", t0).log, "b has its own budget");
        // "a" never comes back; another type's event after the window reports it.
        let later = rl.check("c", t0 + Duration::from_secs(2));
        assert!(later.log);
        assert_eq!(
            later.summaries,
            [Skipped {
                event_type: "a".into(),
                count: 1
            }]
        );
        assert_eq!(rl.windows.len(), 1, "idle types are forgotten");
    }

    #[test]
    fn drain_reports_pending_counts() {
        let mut rl = limiter(2);
        let t0 = Instant::now();
        for _ in 0..5 {
            rl.check("x", t0);
        }
        rl.check("y", t0);
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
        let mut rl = limiter(1);
        let t0 = Instant::now();
        for i in 0..MAX_TRACKED_TYPES + 10 {
            rl.check(&format!("t{i}"), t0);
        }
        assert_eq!(rl.windows.len(), MAX_TRACKED_TYPES + 1);
        assert_eq!(rl.windows[OVERFLOW_KEY].skipped, 9);
    }
}
