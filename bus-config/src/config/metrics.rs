//! The metrics consumer's section: `CLAUDE_MPM_EVENTBUS_METRICS`. The settings type is
//! consumer-metrics' own [`MetricsConfig`](consumer_metrics::MetricsConfig).

use super::reader::Reader;

/// The metrics consumer's settings.
#[derive(Clone, Debug)]
pub struct MetricsSettings {
    /// `CLAUDE_MPM_EVENTBUS_METRICS`: whether Prometheus text is served on `GET /metrics`.
    pub enabled: bool,
    /// The consumer's settings (consumer-metrics' defaults; no variable changes them).
    #[cfg(feature = "metrics")]
    pub consumer: consumer_metrics::MetricsConfig,
}

impl MetricsSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        MetricsSettings {
            enabled: r.flag("CLAUDE_MPM_EVENTBUS_METRICS", true),
            #[cfg(feature = "metrics")]
            consumer: consumer_metrics::MetricsConfig::default(),
        }
    }
}
