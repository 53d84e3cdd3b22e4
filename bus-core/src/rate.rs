//! Rate limits: how many events per second a consumer handles, written `500/s`,
//! `500/s burst 1000` or `30000/min`, and enforced with governor's GCRA limiter.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use governor::Quota;

use crate::BusError;

/// The forms [`RateLimit`]'s parser accepts, for error messages.
pub const ACCEPTED_FORMS: &str = "`N/s`, `N/min` or `N/h`, optionally followed by `burst M` and by `delay` or `drop` \
     (for example `500/s`, `500/s burst 1000`, `30000/min`, `10/s drop`)";

/// What a rate-limited consumer does with an event over its rate.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RatePolicy {
    /// The consumer waits until the limit lets the event through: nothing is lost by the
    /// limit itself, but its queue fills and its overflow policy applies. The default.
    #[default]
    Delay,
    /// The event is dropped and counted (per event type).
    Drop,
}

impl RatePolicy {
    /// `delay` or `drop`.
    pub fn as_str(self) -> &'static str {
        match self {
            RatePolicy::Delay => "delay",
            RatePolicy::Drop => "drop",
        }
    }
}

/// The time unit of a rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RateUnit {
    /// Events per second: `N/s`.
    Second,
    /// Events per minute: `N/min`.
    Minute,
    /// Events per hour: `N/h`.
    Hour,
}

impl RateUnit {
    /// The unit's length.
    pub fn duration(self) -> Duration {
        Duration::from_secs(match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3600,
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            RateUnit::Second => "s",
            RateUnit::Minute => "min",
            RateUnit::Hour => "h",
        }
    }
}

/// A consumer's rate limit: `events` per `unit`, a burst, and what happens over the rate.
///
/// ```
/// use bus_core::{RateLimit, RatePolicy};
///
/// let limit: RateLimit = "500/s burst 1000".parse()?;
/// assert_eq!((limit.events_per_second(), limit.burst.get()), (500.0, 1000));
/// assert_eq!(limit.policy, RatePolicy::Delay);
/// assert_eq!("30000/min".parse::<RateLimit>()?.events_per_second(), 500.0);
/// // Without `burst`, the burst is one second's worth of events (at least 1).
/// assert_eq!("30000/min".parse::<RateLimit>()?.burst.get(), 500);
/// assert_eq!("10/s drop".parse::<RateLimit>()?.to_string(), "10/s burst 10 drop");
/// assert!("fast".parse::<RateLimit>().unwrap_err().to_string().contains("accepted forms"));
/// # Ok::<(), bus_core::BusError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Events per `unit` (at least 1).
    pub events: NonZeroU32,
    /// The unit of `events`.
    pub unit: RateUnit,
    /// Events that may go through at once after a quiet spell (at least 1).
    pub burst: NonZeroU32,
    /// What happens to an event over the rate.
    pub policy: RatePolicy,
}

impl RateLimit {
    /// `events` per second, a burst of one second's worth, `delay`.
    pub fn per_second(events: NonZeroU32) -> Self {
        RateLimit {
            events,
            unit: RateUnit::Second,
            burst: events,
            policy: RatePolicy::Delay,
        }
    }

    /// This limit with another burst.
    pub fn with_burst(self, burst: NonZeroU32) -> Self {
        RateLimit { burst, ..self }
    }

    /// This limit with another policy.
    pub fn with_policy(self, policy: RatePolicy) -> Self {
        RateLimit { policy, ..self }
    }

    /// The rate in events per second.
    pub fn events_per_second(&self) -> f64 {
        f64::from(self.events.get()) / self.unit.duration().as_secs_f64()
    }

    /// The governor quota: one event every `unit / events`, `burst` at once.
    pub fn quota(&self) -> Quota {
        let period = self.unit.duration() / self.events.get();
        // `parse` refuses rates whose period would be zero; a hand-built one gets the fastest.
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("a period of at least 1 ns")
            .allow_burst(self.burst)
    }

    /// Parses the text, taking `default_policy` when it names none (the logging consumer's
    /// limit drops, a relay's delays).
    pub fn parse_with_default(text: &str, default_policy: RatePolicy) -> Result<Self, BusError> {
        let bad = |reason: String| BusError::InvalidRateLimit {
            text: text.to_owned(),
            reason,
        };
        let mut words = text.split_whitespace();
        let rate = words.next().ok_or_else(|| bad("it is empty".into()))?;
        let (count, unit) = rate
            .split_once('/')
            .ok_or_else(|| bad(format!("`{rate}` has no `/unit`")))?;
        let events = parse_count(count).map_err(|e| bad(format!("`{count}` {e}")))?;
        let unit = match unit {
            "s" | "sec" | "second" => RateUnit::Second,
            "m" | "min" | "minute" => RateUnit::Minute,
            "h" | "hour" => RateUnit::Hour,
            other => return Err(bad(format!("`/{other}` is not `/s`, `/min` or `/h`"))),
        };
        if unit.duration() / events.get() == Duration::ZERO {
            return Err(bad(
                "the rate is too high (at most one event per nanosecond)".into(),
            ));
        }
        let default_burst = events
            .get()
            .div_ceil(unit.duration().as_secs() as u32)
            .max(1);
        let mut limit = RateLimit {
            events,
            unit,
            burst: NonZeroU32::new(default_burst).expect("at least 1"),
            policy: default_policy,
        };
        let rest: Vec<&str> = words.collect();
        let mut rest = rest.as_slice();
        if let ["burst", n, tail @ ..] = rest {
            limit.burst = parse_count(n).map_err(|e| bad(format!("burst `{n}` {e}")))?;
            rest = tail;
        }
        match rest {
            [] => {}
            ["delay"] => limit.policy = RatePolicy::Delay,
            ["drop"] => limit.policy = RatePolicy::Drop,
            [word, ..] => return Err(bad(format!("unexpected `{word}`"))),
        }
        Ok(limit)
    }
}

fn parse_count(text: &str) -> Result<NonZeroU32, String> {
    let n: u32 = text
        .replace('_', "")
        .parse()
        .map_err(|_| "is not a whole number".to_owned())?;
    NonZeroU32::new(n).ok_or_else(|| "must be at least 1".to_owned())
}

impl FromStr for RateLimit {
    type Err = BusError;

    /// Parses the [`ACCEPTED_FORMS`]; without `delay` or `drop` the policy is `delay`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RateLimit::parse_with_default(s, RatePolicy::Delay)
    }
}

impl fmt::Display for RateLimit {
    /// The full form, which parses back to the same limit: `500/s burst 1000 delay`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} burst {} {}",
            self.events,
            self.unit.suffix(),
            self.burst,
            self.policy.as_str()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_round_trip_and_bad_forms_say_why() {
        for text in [
            "500/s",
            "500/s burst 1000",
            "30000/min",
            "2/h drop",
            "7/s burst 1 delay",
        ] {
            let limit: RateLimit = text.parse().unwrap();
            assert_eq!(
                limit.to_string().parse::<RateLimit>().unwrap(),
                limit,
                "{text}"
            );
        }
        assert_eq!(
            "500/s burst 1000".parse::<RateLimit>().unwrap().quota(),
            Quota::per_second(NonZeroU32::new(500).unwrap())
                .allow_burst(NonZeroU32::new(1000).unwrap())
        );
        for (text, why) in [
            ("", "empty"),
            ("500", "no `/unit`"),
            ("0/s", "at least 1"),
            ("5/day", "`/day`"),
            ("5/s burst", "unexpected `burst`"),
            ("5/s burst x", "whole number"),
            ("5/s hurry", "unexpected `hurry`"),
            ("-3/s", "whole number"),
        ] {
            let msg = text.parse::<RateLimit>().unwrap_err().to_string();
            assert!(
                msg.contains(why) && msg.contains("accepted forms"),
                "{text}: {msg}"
            );
        }
        assert_eq!(
            RateLimit::parse_with_default("3/s", RatePolicy::Drop)
                .unwrap()
                .policy,
            RatePolicy::Drop
        );
    }
}
