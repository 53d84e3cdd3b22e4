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
const DEFAULT_RATE_LIMIT: u64 = 1000;

impl LoggingSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        let enabled = r.flag("CLAUDE_MPM_EVENTBUS_LOGGING", true);
        #[cfg(feature = "logging")]
        {
            use consumer_logging::{LogFormat, LoggingConfig, RateLimit};
            let format = r.value(
                "CLAUDE_MPM_EVENTBUS_LOG_FORMAT",
                LogFormat::Text,
                |s| s.parse().map_err(|_| "text or json".to_owned()),
                |f| f.to_string().into(),
            );
            let limit = r.number(
                "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT",
                DEFAULT_RATE_LIMIT,
                0,
                1_000_000,
            ) as u32;
            LoggingSettings {
                enabled,
                format,
                consumer: LoggingConfig {
                    rate_limit: (limit > 0).then(|| RateLimit::per_second(limit)),
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
