//! Attaches the consumers to the bus: all consumer wiring lives here, behind the cargo
//! features `logging`, `metrics` and `relay`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bus_core::{Event, EventBus, HandlerResult, Subscriber, async_trait};

use crate::config::Config;
use crate::error::ServeError;
use crate::http::{MetricsRender, StatsSource};

/// What [`wire`] attached.
#[derive(Clone, Default)]
pub struct Wired {
    /// The metrics consumer's Prometheus renderer, when metrics are on.
    pub metrics: Option<MetricsRender>,
    /// The relay's own figures (relayed, resent, buffered, connected, ...), when it is on.
    pub relay_stats: Option<StatsSource>,
    /// Names of the consumers attached, for the startup line.
    pub consumers: Vec<String>,
    /// Consumers on by default but left out of this build, for the startup lines.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wired")
            .field("metrics", &self.metrics.is_some())
            .field("relay_stats", &self.relay_stats.is_some())
            .field("consumers", &self.consumers)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Attaches every consumer `config` turns on.
///
/// A consumer whose cargo feature was left out of the build is an error when its variable
/// was set to true explicitly, and a warning in [`Wired::warnings`] when it is only on by
/// default, so a trimmed build still runs out of the box.
pub fn wire(bus: &EventBus, config: &Config) -> Result<Wired, ServeError> {
    let mut wired = Wired::default();
    if config.consumers.logging {
        wire_logging(bus, config, &mut wired)?;
    }
    if config.consumers.metrics {
        wire_metrics(bus, config, &mut wired)?;
    }
    if config.relay.enabled {
        wire_relay(bus, config, &mut wired)?;
    }
    if let Some(delay) = config.consumers.test_slow_consumer {
        let slow = Arc::new(SlowConsumer::new(delay));
        subscribe(bus, slow, "the test slow consumer")?;
        wired.consumers.push(SlowConsumer::NAME.to_owned());
    }
    Ok(wired)
}

fn subscribe(
    bus: &EventBus,
    subscriber: Arc<dyn Subscriber>,
    what: &'static str,
) -> Result<(), ServeError> {
    bus.subscribe(subscriber)
        .map(|_| ())
        .map_err(|e| ServeError::Wiring {
            what,
            reason: e.to_string(),
        })
}

#[allow(dead_code)] // unused when every feature is on
fn missing_feature(
    config: &Config,
    wired: &mut Wired,
    what: &'static str,
    feature: &str,
    var: &'static str,
) -> Result<(), ServeError> {
    let reason = format!(
        "this eventbus was built without the `{feature}` feature; rebuild with it, or set {var}=false"
    );
    if config.explicit.contains(var) {
        Err(ServeError::Wiring { what, reason })
    } else {
        wired.warnings.push(format!("{what} is off: {reason}"));
        Ok(())
    }
}

#[cfg(not(feature = "logging"))]
fn wire_logging(_: &EventBus, config: &Config, wired: &mut Wired) -> Result<(), ServeError> {
    missing_feature(
        config,
        wired,
        "the logging consumer",
        "logging",
        "CLAUDE_MPM_EVENTBUS_LOGGING",
    )
}

#[cfg(not(feature = "metrics"))]
fn wire_metrics(_: &EventBus, config: &Config, wired: &mut Wired) -> Result<(), ServeError> {
    missing_feature(
        config,
        wired,
        "the metrics consumer",
        "metrics",
        "CLAUDE_MPM_EVENTBUS_METRICS",
    )
}

#[cfg(not(feature = "relay"))]
fn wire_relay(_: &EventBus, config: &Config, wired: &mut Wired) -> Result<(), ServeError> {
    missing_feature(
        config,
        wired,
        "the Socket.IO relay",
        "relay",
        "CLAUDE_MPM_RELAY_ENABLED",
    )
}

/// Installs the process's log output (stderr) in the configured format; the level is
/// `debug` with `CLAUDE_MPM_EVENTBUS_DEBUG` or `CLAUDE_MPM_RELAY_DEBUG`, `info` otherwise.
/// Without the `logging` feature nothing is installed (the daemon's own startup and
/// shutdown lines are printed to stderr either way).
pub fn install_logging(config: &Config) -> Result<(), String> {
    #[cfg(feature = "logging")]
    {
        use consumer_logging::LogFormat as Format;
        let format = match config.consumers.log_format {
            crate::LogFormat::Text => Format::Text,
            crate::LogFormat::Json => Format::Json,
        };
        consumer_logging::install_tracing(format, config.bus.debug || config.relay.debug)
            .map_err(|e| format!("cannot install the log formatter: {e}"))
    }
    #[cfg(not(feature = "logging"))]
    {
        let _ = config;
        Ok(())
    }
}

#[cfg(feature = "logging")]
fn wire_logging(bus: &EventBus, config: &Config, wired: &mut Wired) -> Result<(), ServeError> {
    use consumer_logging::{LoggingConfig, LoggingSubscriber, RateLimit};
    let limit = config.consumers.log_rate_limit;
    let logging = LoggingConfig {
        rate_limit: (limit > 0).then(|| RateLimit::per_second(limit)),
        ..LoggingConfig::default()
    };
    let name = logging.name.clone();
    LoggingSubscriber::attach(bus, logging).map_err(|e| ServeError::Wiring {
        what: "the logging consumer",
        reason: e.to_string(),
    })?;
    wired.consumers.push(name);
    Ok(())
}

#[cfg(feature = "metrics")]
fn wire_metrics(bus: &EventBus, _: &Config, wired: &mut Wired) -> Result<(), ServeError> {
    use consumer_metrics::{BusMetrics, MetricsConfig};
    let config = MetricsConfig::default();
    let name = config.name.clone();
    let metrics = BusMetrics::attach(bus, config).map_err(|e| ServeError::Wiring {
        what: "the metrics consumer",
        reason: e.to_string(),
    })?;
    wired.metrics = Some(Arc::new(move || metrics.render()));
    wired.consumers.push(name);
    Ok(())
}

#[cfg(feature = "relay")]
fn wire_relay(bus: &EventBus, config: &Config, wired: &mut Wired) -> Result<(), ServeError> {
    use relay_socketio::SocketIoRelay;
    let settings = &config.relay;
    let relay_config = settings.relay_config();
    let failed = |e: relay_socketio::RelayError| ServeError::Wiring {
        what: "the Socket.IO relay",
        reason: e.to_string(),
    };
    let relay = Arc::new(SocketIoRelay::new(relay_config).map_err(failed)?);
    relay.attach(bus).map_err(failed)?;
    let source = relay.clone();
    wired.relay_stats = Some(Arc::new(move || {
        serde_json::to_value(source.stats()).unwrap_or(serde_json::Value::Null)
    }));
    wired
        .consumers
        .push(format!("{} ({})", relay_socketio::RELAY_NAME, settings.url));
    Ok(())
}

/// TEST ONLY (`CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER`): a consumer on `*` that sleeps per
/// event, so tests can check that shutdown drains a backlog and reports what it could not.
#[derive(Debug)]
pub struct SlowConsumer {
    delay: Duration,
    handled: AtomicU64,
}

impl SlowConsumer {
    /// The name it subscribes under.
    pub const NAME: &'static str = "test-slow-consumer";

    /// A consumer that takes `delay` per event.
    pub fn new(delay: Duration) -> Self {
        SlowConsumer {
            delay,
            handled: AtomicU64::new(0),
        }
    }

    /// Events handled so far.
    pub fn handled(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Subscriber for SlowConsumer {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn patterns(&self) -> Vec<String> {
        vec!["*".to_owned()]
    }

    async fn handle(&self, _event: Event) -> HandlerResult {
        tokio::time::sleep(self.delay).await;
        self.handled.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
