//! The rate limits among the runtime settings: `PATCH /config`'s `relay_rate_limit` and
//! `log_rate_limit`, applied to the consumers that offer them through
//! [`Attached::rate_limit_key`](bus_core::Attached::rate_limit_key).

use std::sync::Arc;

use bus_core::{Attached, EventBus, RateLimit, RatePolicy};

use crate::runtime::{CurrentSettings, DebugSwitch, RuntimeSettings, current};

/// The relay's key among the consumers' rate limits.
pub const RELAY_RATE_KEY: &str = "relay";
/// The logging consumer's.
pub const LOG_RATE_KEY: &str = "logging";

/// The fields that carry rate limits: (field, consumer key, text, how to read it).
fn fields(s: &RuntimeSettings) -> Vec<(&'static str, &'static str, &str, Parse)> {
    let mut out = Vec::new();
    if let Some(text) = &s.relay_rate_limit {
        out.push((
            "relay_rate_limit",
            RELAY_RATE_KEY,
            text.as_str(),
            relay as Parse,
        ));
    }
    if let Some(text) = &s.log_rate_limit {
        out.push(("log_rate_limit", LOG_RATE_KEY, text.as_str(), log as Parse));
    }
    out
}

type Parse = fn(&str) -> Result<Option<RateLimit>, String>;

fn relay(text: &str) -> Result<Option<RateLimit>, String> {
    crate::config::parse_rate_limit(text, RatePolicy::Delay)
}

fn log(text: &str) -> Result<Option<RateLimit>, String> {
    #[cfg(feature = "logging")]
    {
        crate::config::read_log_rate_limit(text)
    }
    #[cfg(not(feature = "logging"))]
    {
        crate::config::parse_rate_limit(text, RatePolicy::Drop)
    }
}

/// One message per unreadable rate limit, naming its field.
pub(crate) fn problems(s: &RuntimeSettings) -> Vec<String> {
    fields(s)
        .into_iter()
        .filter_map(|(field, _, text, parse)| {
            parse(text)
                .err()
                .map(|e| format!("{field}: {text:?} is not a rate limit; expected {e}"))
        })
        .collect()
}

fn find<'a>(consumers: &'a [Arc<dyn Attached>], key: &str) -> Option<&'a Arc<dyn Attached>> {
    consumers.iter().find(|c| c.rate_limit_key() == Some(key))
}

/// Refuses a rate limit whose consumer is not running, before anything changes.
pub(crate) fn check_consumers(
    s: &RuntimeSettings,
    consumers: &[Arc<dyn Attached>],
) -> Result<(), Vec<String>> {
    let missing: Vec<String> = fields(s)
        .into_iter()
        .filter(|(_, key, _, _)| find(consumers, key).is_none())
        .map(|(field, key, _, _)| format!("{field}: the {key} consumer is not running"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing)
    }
}

/// Sets each rate limit given (validated and checked before).
pub(crate) fn apply(
    s: &RuntimeSettings,
    consumers: &[Arc<dyn Attached>],
) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    for (field, key, text, parse) in fields(s) {
        let (Ok(limit), Some(consumer)) = (parse(text), find(consumers, key)) else {
            continue;
        };
        if let Err(e) = consumer.set_rate_limit(limit) {
            problems.push(format!("{field}: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The settings a running bus has now, with its consumers' rate limits.
pub fn current_with_consumers(
    bus: &EventBus,
    debug: &DebugSwitch,
    consumers: &[Arc<dyn Attached>],
) -> CurrentSettings {
    let limit = |key| {
        find(consumers, key)
            .and_then(|c| c.rate_limit())
            .map(|l| l.to_string())
    };
    CurrentSettings {
        relay_rate_limit: limit(RELAY_RATE_KEY),
        log_rate_limit: limit(LOG_RATE_KEY),
        ..current(bus, debug)
    }
}
