//! Priorities and rate limits: `CLAUDE_MPM_EVENTBUS_PRIORITIES` (every consumer's queue, and
//! the relay's send buffer) and `CLAUDE_MPM_RELAY_RATE_LIMIT`. The logging consumer's
//! `CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT` is read with its section, in the same form
//! ([`parse_rate_limit`]).

use bus_core::{PriorityRules, RateLimit, RatePolicy};
use serde_json::Value;

use super::reader::Reader;

/// What the rate-limit variables accept, for error messages (and the variable table).
pub(crate) const RATE_FORMS: &str = bus_core::ACCEPTED_FORMS;

/// Priorities and the relay's rate limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitSettings {
    /// `CLAUDE_MPM_EVENTBUS_PRIORITIES`: `None` when unset or empty (every event `normal`
    /// unless its publisher says otherwise).
    pub priorities: Option<PriorityRules>,
    /// `CLAUDE_MPM_RELAY_RATE_LIMIT`: `None` when unset (no limit).
    pub relay_rate_limit: Option<RateLimit>,
}

impl LimitSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        let priorities = r.value(
            "CLAUDE_MPM_EVENTBUS_PRIORITIES",
            None,
            |s| {
                s.parse::<PriorityRules>()
                    .map(|rules| (!rules.is_empty()).then_some(rules))
                    .map_err(|e| {
                        format!("comma-separated `pattern=priority` rules, priority high, normal or low ({e})")
                    })
            },
            |rules| rules.as_ref().map_or(Value::Null, |r| r.to_string().into()),
        );
        let relay_rate_limit = r.value(
            "CLAUDE_MPM_RELAY_RATE_LIMIT",
            None,
            |s| parse_rate_limit(s, RatePolicy::Delay),
            show_rate_limit,
        );
        LimitSettings {
            priorities,
            relay_rate_limit,
        }
    }
}

/// Parses a rate-limit variable: one of the [`bus_core::ACCEPTED_FORMS`], or `0`/`off`/`none`/empty for no
/// limit (`Ok(None)`); `default_policy` applies when the text names none.
pub fn parse_rate_limit(
    text: &str,
    default_policy: RatePolicy,
) -> Result<Option<RateLimit>, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "off" | "none" => return Ok(None),
        _ => {}
    }
    RateLimit::parse_with_default(text.trim(), default_policy)
        .map(Some)
        .map_err(|e| match e {
            bus_core::BusError::InvalidRateLimit { reason, .. } => {
                format!("{RATE_FORMS}, or 0/off for no limit ({reason})")
            }
            other => other.to_string(),
        })
}

/// How a rate limit shows in `eventbus config`: its full form, or null for none.
pub(crate) fn show_rate_limit(limit: &Option<RateLimit>) -> Value {
    limit.map_or(Value::Null, |l| l.to_string().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_off() {
        assert_eq!(parse_rate_limit("off", RatePolicy::Delay), Ok(None));
        let l = parse_rate_limit(" 500/s burst 1000 ", RatePolicy::Delay)
            .unwrap()
            .unwrap();
        assert_eq!(l.to_string(), "500/s burst 1000 delay");
        let e = parse_rate_limit("500 per second", RatePolicy::Delay).unwrap_err();
        assert!(e.contains("`N/s`") && e.contains("0/off"), "{e}");
    }
}
