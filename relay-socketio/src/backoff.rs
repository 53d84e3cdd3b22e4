//! Delays between connection attempts: exponential from `retry_delay` for `max_retries`
//! attempts, then one attempt per `connection_cooldown`, each with ±20 % jitter so that many
//! relays restarted together do not knock in step.

use std::time::Duration;

use rand::Rng;

use crate::RelayConfig;

#[derive(Debug)]
pub(crate) struct Backoff {
    retry_delay: Duration,
    max_retries: u32,
    cooldown: Duration,
    failures: u32,
}

impl Backoff {
    pub(crate) fn new(config: &RelayConfig) -> Self {
        Backoff {
            retry_delay: config.retry_delay,
            max_retries: config.max_retries,
            cooldown: config.connection_cooldown,
            failures: 0,
        }
    }

    /// After a connection that worked: the next failure starts the sequence again.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt, without jitter.
    fn base_delay(&self) -> Duration {
        if self.failures <= self.max_retries {
            let factor = 2u32.saturating_pow(self.failures.saturating_sub(1));
            self.retry_delay.saturating_mul(factor).min(self.cooldown)
        } else {
            self.cooldown
        }
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.base_delay()
            .mul_f64(rand::rng().random_range(0.8..=1.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_for_max_retries_then_uses_the_cooldown() {
        let config = RelayConfig {
            retry_delay: Duration::from_millis(100),
            max_retries: 3,
            connection_cooldown: Duration::from_secs(5),
            ..RelayConfig::default()
        };
        let mut b = Backoff::new(&config);
        let mut bases = Vec::new();
        for _ in 0..5 {
            let jittered = b.next_delay();
            let base = b.base_delay();
            assert!(jittered >= base.mul_f64(0.79) && jittered <= base.mul_f64(1.21));
            bases.push(base.as_millis());
        }
        assert_eq!(bases, vec![100, 200, 400, 5000, 5000]);
        b.reset();
        b.next_delay();
        assert_eq!(b.base_delay(), Duration::from_millis(100));
    }

    #[test]
    fn never_waits_longer_than_the_cooldown_while_retrying() {
        let config = RelayConfig {
            retry_delay: Duration::from_secs(2),
            max_retries: 10,
            connection_cooldown: Duration::from_secs(5),
            ..RelayConfig::default()
        };
        let mut b = Backoff::new(&config);
        for _ in 0..12 {
            b.next_delay();
            assert!(b.base_delay() <= Duration::from_secs(5));
        }
    }
}
