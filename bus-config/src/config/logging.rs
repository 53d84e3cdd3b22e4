//! The logging consumer's section: `CLAUDE_MPM_EVENTBUS_LOGGING`, `_LOG_FORMAT`,
//! `_LOG_RATE_LIMIT`. The settings type is consumer-logging's own
//! [`LoggingConfig`](consumer_logging::LoggingConfig).

use super::reader::Reader;

/// The logging consumer's settings, and the format of the daemon's own log lines.
#[derive(Clone, Debug)]
pub struct LoggingSettings {
    /// `CLAUDE_MPM_EVENTBUS_LOGGING`: whether the logging consumer runs.
    pub enabled: bool,
    /// `CLAUDE_MPM_EVENTBUS_LOG_FORMAT`: text or JSON lines on stderr.
    #[cfg(feature = "logging")]
    pub format: consumer_logging::LogFormat,
    /// The consumer's settings; `CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT` sets its rate limit.
    #[cfg(feature = "logging")]
    pub consumer: consumer_logging::LoggingConfig,
}

/// Events of one type logged per second by default: enough to follow a session, while a
/// flood of one type becomes one summary line per second.
#[cfg(feature = "logging")]
const DEFAULT_RATE_LIMIT: std::num::NonZeroU32 = std::num::NonZeroU32::new(1000).unwrap();

/// `CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT`: a whole number (per second; 0 for none) as before,
/// or a rate form. Over-rate lines are skipped (counted), never waited for: `delay` is refused.
#[cfg(feature = "logging")]
pub(crate) fn read_log_rate_limit(s: &str) -> Result<Option<bus_core::RateLimit>, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let n = crate::parse::whole_number(t, 0, 1_000_000)
            .map_err(|e| format!("{e}, or a rate such as `500/s burst 1000`"))?;
        return Ok(std::num::NonZeroU32::new(n as u32)
            .map(|n| bus_core::RateLimit::per_second(n).with_policy(bus_core::RatePolicy::Drop)));
    }
    let limit = super::limits::parse_rate_limit(t, bus_core::RatePolicy::Drop).map_err(|e| {
        format!("a whole number from 0 to 1000000 (lines per type and second), or {e}")
    })?;
    if limit.is_some_and(|l| l.policy == bus_core::RatePolicy::Delay) {
        return Err("a rate without `delay`: the logging consumer skips (and counts) lines over its rate, it never waits".into());
    }
    Ok(limit)
}

impl LoggingSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        let enabled = r.flag("CLAUDE_MPM_EVENTBUS_LOGGING", true);
        #[cfg(feature = "logging")]
        {
            use bus_core::RatePolicy;
            use consumer_logging::{LogFormat, LoggingConfig, RateLimit};
            let format = r.value(
                "CLAUDE_MPM_EVENTBUS_LOG_FORMAT",
                LogFormat::Text,
                |s| s.parse().map_err(|_| "text or json".to_owned()),
                |f| f.to_string().into(),
            );
            // A bare number keeps its old meaning (N lines per type and second, 0: none).
            let rate_limit = r.value(
                "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT",
                Some(RateLimit::per_second(DEFAULT_RATE_LIMIT).with_policy(RatePolicy::Drop)),
                read_log_rate_limit,
                super::limits::show_rate_limit,
            );
            LoggingSettings {
                enabled,
                format,
                consumer: LoggingConfig {
                    rate_limit,
                    ..LoggingConfig::default()
                },
            }
        }
        #[cfg(not(feature = "logging"))]
        {
            r.unchecked("CLAUDE_MPM_EVENTBUS_LOG_FORMAT");
            r.unchecked("CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT");
            LoggingSettings { enabled }
        }
    }
}
