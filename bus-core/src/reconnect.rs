//! The one reconnect policy of the workspace: the Socket.IO relay and the readers of a
//! networked event log (Redis) wait by it between attempts.
//!
//! The first wait is `first_delay`, doubled before each further retry (capped at `cooldown`)
//! for `retries` waits; once they are used up, one attempt per `cooldown` until one works.
//! Every wait gets ±[`JITTER`] random jitter, so that many clients cut off together do not
//! knock in step. A connection that worked starts the sequence again ([`Backoff::reset`]).
//!
//! The exponential sequence is backon's [`ExponentialBuilder`] (as an iterator: the callers
//! sleep themselves, next to their stop signals); its own jitter adds 0-100 % of a wait, so
//! it stays off and the ±20 % is applied on top of each of its delays.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Each wait is its base delay times a random factor in `1 ± JITTER`.
pub const JITTER: f64 = 0.2;

/// How long to wait between connection attempts: see the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Waits that double (from `first_delay`) before the waits become `cooldown`.
    pub retries: u32,
    /// The first wait (before jitter).
    pub first_delay: Duration,
    /// The wait once the retries are used up, and the cap on the doubling waits.
    pub cooldown: Duration,
}

impl ReconnectPolicy {
    /// backon's builder for the doubling part, without its jitter.
    pub fn exponential(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first_delay.min(self.cooldown))
            .with_factor(2.0)
            .with_max_delay(self.cooldown)
            .with_max_times(self.retries as usize)
    }

    /// A fresh sequence of waits.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            policy: *self,
            doubling: self.exponential().build(),
            last_base: Duration::ZERO,
        }
    }
}

/// The waits of one [`ReconnectPolicy`], one per failed attempt.
#[derive(Debug)]
pub struct Backoff {
    policy: ReconnectPolicy,
    doubling: <ExponentialBuilder as BackoffBuilder>::Backoff,
    last_base: Duration,
}

impl Backoff {
    /// After a connection that worked: the next failure starts the sequence again.
    pub fn reset(&mut self) {
        *self = self.policy.backoff();
    }

    /// Records a failure and answers how long to wait before the next attempt (jittered).
    pub fn next_delay(&mut self) -> Duration {
        self.last_base = self.doubling.next().unwrap_or(self.policy.cooldown);
        jittered(self.last_base)
    }

    /// The base (unjittered) delay of the last [`next_delay`](Self::next_delay).
    pub fn last_base(&self) -> Duration {
        self.last_base
    }
}

/// `base` times a random factor in `1 ± JITTER`.
fn jittered(base: Duration) -> Duration {
    base.mul_f64(1.0 - JITTER + 2.0 * JITTER * fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(retries: u32, first_ms: u64, cooldown_ms: u64) -> ReconnectPolicy {
        ReconnectPolicy {
            retries,
            first_delay: Duration::from_millis(first_ms),
            cooldown: Duration::from_millis(cooldown_ms),
        }
    }

    #[test]
    fn doubles_for_the_retries_then_uses_the_cooldown_within_the_jitter() {
        let mut b = policy(3, 100, 5_000).backoff();
        let mut bases = Vec::new();
        for _ in 0..5 {
            let waited = b.next_delay();
            let base = b.last_base();
            assert!(
                waited >= base.mul_f64(1.0 - JITTER) && waited <= base.mul_f64(1.0 + JITTER),
                "{waited:?} is not within ±20 % of {base:?}"
            );
            bases.push((base.as_secs_f64() * 1000.0).round() as u64);
        }
        assert_eq!(bases, vec![100, 200, 400, 5000, 5000]);
    }

    #[test]
    fn the_jitter_spreads_both_ways() {
        let mut b = policy(0, 1_000, 1_000).backoff();
        let waits: Vec<Duration> = (0..200).map(|_| b.next_delay()).collect();
        assert!(waits.iter().any(|w| *w < Duration::from_millis(950)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(1_050)));
    }

    #[test]
    fn a_reset_starts_the_sequence_again() {
        let mut b = policy(3, 100, 5_000).backoff();
        for _ in 0..4 {
            b.next_delay();
        }
        assert_eq!(b.last_base(), Duration::from_secs(5));
        b.reset();
        b.next_delay();
        assert_eq!(b.last_base(), Duration::from_millis(100));
    }

    #[test]
    fn never_waits_longer_than_the_cooldown_while_retrying() {
        let mut b = policy(10, 2_000, 5_000).backoff();
        for _ in 0..12 {
            b.next_delay();
            assert!(b.last_base() <= Duration::from_secs(5));
        }
        let mut zero = policy(0, 100, 3_000).backoff();
        zero.next_delay();
        assert_eq!(
            zero.last_base(),
            Duration::from_secs(3),
            "no retries: the cooldown"
        );
    }
}
