//! [`LoggingSubscriber`]: one structured `tracing` line per event.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bus_core::{
    Attached, Consumer, Event, EventBus, HandlerResult, Overflow, Pattern, Subscriber,
    SubscriptionId,
};
use tracing::Level;

use crate::LoggingError;
use crate::RateLimit;
use crate::rate_limit::{RateLimiter, Skipped};
use crate::truncate::compact_json;

/// The `tracing` target of every line this crate logs about events, for filters such as
/// `RUST_LOG=eventbus::events=debug`.
pub const EVENTS_TARGET: &str = "eventbus::events";

/// Settings of a [`LoggingSubscriber`].
#[derive(Clone, Debug)]
pub struct LoggingConfig {
    /// The subscriber's name in bus stats (default `"logging"`).
    pub name: String,
    /// Event-type patterns to log (default `["*"]`: everything).
    pub patterns: Vec<String>,
    /// The level of the event lines and of the rate-limit summaries (default `INFO`).
    pub level: Level,
    /// Bytes of compact JSON payload kept per line (default 1024); longer payloads are cut
    /// and marked `…[truncated: kept of total bytes]`.
    pub max_data_bytes: usize,
    /// Per-event-type rate limit (default `None`: log everything). Lines over it are skipped
    /// (whatever its policy says) and counted in one summary line per type and second.
    pub rate_limit: Option<RateLimit>,
    /// Queue capacity on the bus (default `None`: the bus default).
    pub queue_capacity: Option<usize>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            name: "logging".into(),
            patterns: vec!["*".into()],
            level: Level::INFO,
            max_data_bytes: 1024,
            rate_limit: None,
            queue_capacity: None,
        }
    }
}

/// A [`Subscriber`] that logs each matching event through `tracing`, target
/// [`EVENTS_TARGET`], with the fields `event_id`, `event_type`, `timestamp` (RFC 3339 UTC)
/// and `data` (compact JSON, cut to [`LoggingConfig::max_data_bytes`]).
///
/// With a [`RateLimit`] (governor's GCRA, per event type), a type that floods gets its burst
/// and then its rate logged, and every second one line `events skipped by the rate limit`
/// with `event_type` and `skipped` (and a last one at bus shutdown).
pub struct LoggingSubscriber {
    name: String,
    patterns: Vec<String>,
    level: Level,
    max_data_bytes: usize,
    /// The per-type limiter; `None` inside: no limit. Replaced whole when the limit changes.
    limiter: Mutex<Option<(RateLimit, RateLimiter)>>,
    queue_capacity: Option<usize>,
    /// Lines skipped by the rate limit since the subscriber was built.
    skipped: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for LoggingSubscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggingSubscriber")
            .field("name", &self.name)
            .field("patterns", &self.patterns)
            .field("level", &self.level)
            .field("max_data_bytes", &self.max_data_bytes)
            .field("rate_limit", &self.rate_limit())
            .finish()
    }
}

/// Emits one event at a level chosen at run time (`tracing` wants it constant per call site).
macro_rules! at_level {
    ($level:expr, $($rest:tt)+) => {
        match $level {
            Level::ERROR => tracing::event!(target: EVENTS_TARGET, Level::ERROR, $($rest)+),
            Level::WARN => tracing::event!(target: EVENTS_TARGET, Level::WARN, $($rest)+),
            Level::INFO => tracing::event!(target: EVENTS_TARGET, Level::INFO, $($rest)+),
            Level::DEBUG => tracing::event!(target: EVENTS_TARGET, Level::DEBUG, $($rest)+),
            Level::TRACE => tracing::event!(target: EVENTS_TARGET, Level::TRACE, $($rest)+),
        }
    };
}

impl LoggingSubscriber {
    /// Checks `config` and builds the subscriber.
    pub fn new(config: LoggingConfig) -> Result<Self, LoggingError> {
        if config.patterns.is_empty() {
            return Err(LoggingError::NoPatterns);
        }
        for pattern in &config.patterns {
            Pattern::new(pattern).map_err(LoggingError::InvalidPattern)?;
        }
        Ok(LoggingSubscriber {
            name: config.name,
            patterns: config.patterns,
            level: config.level,
            max_data_bytes: config.max_data_bytes,
            limiter: Mutex::new(config.rate_limit.map(|l| (l, RateLimiter::new(l)))),
            queue_capacity: config.queue_capacity,
            skipped: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Builds a subscriber from `config` and subscribes it to `bus`.
    pub fn attach(bus: &EventBus, config: LoggingConfig) -> Result<SubscriptionId, LoggingError> {
        let subscriber = Arc::new(Self::new(config)?);
        bus.subscribe(subscriber).map_err(LoggingError::Subscribe)
    }

    fn limiter(&self) -> std::sync::MutexGuard<'_, Option<(RateLimit, RateLimiter)>> {
        self.limiter.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The per-type rate limit in force.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.limiter().as_ref().map(|(l, _)| *l)
    }

    /// Replaces the per-type rate limit (`None`: log everything). What the old limiter had
    /// skipped is summarised first.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        let old = std::mem::replace(
            &mut *self.limiter(),
            limit.map(|l| (l, RateLimiter::new(l))),
        );
        if let Some((_, mut old)) = old {
            self.log_skipped(&old.drain());
        }
    }

    /// Logs `event` now, subject to the rate limit; the bus calls this for each matching event.
    pub fn log_event(&self, event: &Event) {
        let decision = self
            .limiter()
            .as_mut()
            .map(|(_, limiter)| limiter.check(event.event_type()));
        if let Some(decision) = decision {
            self.log_skipped(&decision.summaries);
            if !decision.log {
                self.skipped
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return;
            }
        }
        let data = compact_json(event.data(), self.max_data_bytes);
        let timestamp = humantime::format_rfc3339_micros(event.timestamp());
        at_level!(
            self.level,
            event_id = event.id(),
            event_type = event.event_type(),
            timestamp = %timestamp,
            data = %data,
            "event"
        );
    }

    fn log_skipped(&self, summaries: &[Skipped]) {
        for skipped in summaries {
            at_level!(
                self.level,
                event_type = skipped.event_type.as_str(),
                skipped = skipped.count,
                "events skipped by the rate limit"
            );
        }
    }
}

#[bus_core::async_trait]
impl Subscriber for LoggingSubscriber {
    fn name(&self) -> &str {
        &self.name
    }

    fn patterns(&self) -> Vec<String> {
        self.patterns.clone()
    }

    async fn handle(&self, event: Event) -> HandlerResult {
        self.log_event(&event);
        Ok(())
    }

    fn queue_capacity(&self) -> Option<usize> {
        self.queue_capacity
    }

    /// Logging is best effort: when it cannot keep up, the newest events are dropped (and
    /// counted by the bus) rather than slowing down publishers.
    fn overflow(&self) -> Option<Overflow> {
        Some(Overflow::DropNewest)
    }

    async fn on_shutdown(&self, _timeout: Duration) -> u64 {
        let pending = self.limiter().as_mut().map(|(_, l)| l.drain());
        self.log_skipped(&pending.unwrap_or_default());
        0
    }
}

/// What an installed [`LoggingSubscriber`] shows its host.
struct LoggingAttached {
    subscriber: Arc<LoggingSubscriber>,
}

impl Attached for LoggingAttached {
    fn describe(&self) -> String {
        self.subscriber.name.clone()
    }

    /// Under `"logging"`: the per-type limit (its full form, or null) and the lines it skipped.
    fn stats(&self) -> Option<(&'static str, serde_json::Value)> {
        let skipped = self
            .subscriber
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed);
        Some((
            "logging",
            serde_json::json!({
                "rate_limit": self.subscriber.rate_limit().map(|l| l.to_string()),
                "skipped_by_rate_limit": skipped,
            }),
        ))
    }

    /// `"logging"`: the per-type limit on log lines.
    fn rate_limit_key(&self) -> Option<&'static str> {
        Some("logging")
    }

    fn rate_limit(&self) -> Option<RateLimit> {
        self.subscriber.rate_limit()
    }

    fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<(), String> {
        self.subscriber.set_rate_limit(limit);
        Ok(())
    }
}

impl Consumer for LoggingSubscriber {
    type Settings = LoggingConfig;
    type Error = LoggingError;

    fn install(bus: &EventBus, settings: LoggingConfig) -> Result<Arc<dyn Attached>, LoggingError> {
        let subscriber = Arc::new(Self::new(settings)?);
        bus.subscribe(subscriber.clone())
            .map_err(LoggingError::Subscribe)?;
        Ok(Arc::new(LoggingAttached { subscriber }))
    }
}
