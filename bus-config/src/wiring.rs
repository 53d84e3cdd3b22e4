//! Attaches the consumers to the bus: the one place that knows which consumers exist.
//!
//! Each consumer crate implements [`Consumer`]: it is built from its settings (a value in
//! [`Config`]) and returns an [`Attached`] through which it offers the daemon its stats and
//! endpoints. Wiring a new consumer is one line in [`wire`], behind its cargo feature.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bus_core::{Attached, Consumer, Event, EventBus, HandlerResult, Subscriber, async_trait};

use crate::config::Config;
use crate::error::WiringError;

/// What [`wire`] attached.
#[derive(Clone, Default)]
pub struct Wired {
    /// The consumers attached, in wiring order.
    pub consumers: Vec<Arc<dyn Attached>>,
    /// Consumers on by default but left out of this build, for the startup lines.
    pub warnings: Vec<String>,
    /// The content rules (schemas, conditions), for reloads and `GET /stats`.
    pub rules: Option<Arc<crate::rules::Rules>>,
}

impl std::fmt::Debug for Wired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wired")
            .field("consumers", &self.names())
            .field("warnings", &self.warnings)
            .field("rules", &self.rules)
            .finish()
    }
}

impl Wired {
    /// Each attached consumer's one-line description, for the startup line.
    pub fn names(&self) -> Vec<String> {
        self.consumers.iter().map(|c| c.describe()).collect()
    }

    /// Builds consumer `C` from `settings` and attaches it to `bus`; `what` names it in the
    /// error.
    fn install<C: Consumer>(
        &mut self,
        bus: &EventBus,
        what: &'static str,
        settings: C::Settings,
    ) -> Result<(), WiringError> {
        let attached = C::install(bus, settings).map_err(|e| WiringError {
            what,
            reason: e.to_string(),
        })?;
        self.consumers.push(attached);
        Ok(())
    }

    /// A consumer that is on but whose cargo feature this build left out: an error when its
    /// variable was set to true explicitly, a warning when it is only on by default, so a
    /// trimmed build still runs out of the box.
    #[allow(dead_code)] // unused when every feature is on
    fn missing(
        &mut self,
        config: &Config,
        what: &'static str,
        feature: &str,
        var: &'static str,
    ) -> Result<(), WiringError> {
        let reason = format!(
            "this eventbus was built without the `{feature}` feature; rebuild with it, or set {var}=false"
        );
        if config.explicit.contains(var) {
            Err(WiringError { what, reason })
        } else {
            self.warnings.push(format!("{what} is off: {reason}"));
            Ok(())
        }
    }
}

/// Attaches every consumer `config` turns on.
pub fn wire(bus: &EventBus, config: &Config) -> Result<Wired, WiringError> {
    let mut wired = Wired::default();
    let rules = crate::rules::Rules::new(&config.rules);
    rules.install(bus);
    wired
        .consumers
        .push(Arc::new(crate::rules::RulesAttached(rules.clone())));
    wired.rules = Some(rules.clone());
    if config.logging.enabled {
        #[cfg(feature = "logging")]
        wired.install::<consumer_logging::LoggingSubscriber>(
            bus,
            "the logging consumer",
            config.logging.consumer.clone(),
        )?;
        #[cfg(not(feature = "logging"))]
        wired.missing(
            config,
            "the logging consumer",
            "logging",
            "CLAUDE_MPM_EVENTBUS_LOGGING",
        )?;
    }
    if config.metrics.enabled {
        #[cfg(feature = "metrics")]
        wired.install::<consumer_metrics::BusMetrics>(
            bus,
            "the metrics consumer",
            config.metrics.consumer.clone(),
        )?;
        if let Some(inner) = wired.consumers.pop() {
            wired
                .consumers
                .push(Arc::new(crate::rules::WithRuleMetrics {
                    inner,
                    rules: rules.clone(),
                }));
        }
        #[cfg(not(feature = "metrics"))]
        wired.missing(
            config,
            "the metrics consumer",
            "metrics",
            "CLAUDE_MPM_EVENTBUS_METRICS",
        )?;
    }
    if config.relay.enabled {
        #[cfg(feature = "relay")]
        {
            let mut relay = config.relay.config.clone();
            relay.condition = relay_socketio::RelayCondition(
                rules
                    .relay_where()
                    .map(|c| c as Arc<dyn bus_core::Condition>),
            );
            wired.install::<relay_socketio::SocketIoRelay>(bus, "the Socket.IO relay", relay)?;
        }
        #[cfg(not(feature = "relay"))]
        wired.missing(
            config,
            "the Socket.IO relay",
            "relay",
            "CLAUDE_MPM_RELAY_ENABLED",
        )?;
    }
    if let Some(delay) = config.daemon.test_slow_consumer {
        wired.install::<SlowConsumer>(bus, "the test slow consumer", delay)?;
    }
    Ok(wired)
}

/// Installs the process's log output (stderr) in the configured format; the level is
/// `debug` with `CLAUDE_MPM_EVENTBUS_DEBUG` or `CLAUDE_MPM_RELAY_DEBUG`, `info` otherwise.
/// Without the `logging` feature nothing is installed (the daemon's own startup and
/// shutdown lines are printed to stderr either way).
pub fn install_logging(config: &Config) -> Result<(), String> {
    #[cfg(feature = "logging")]
    {
        consumer_logging::install_tracing(
            config.logging.format,
            config.bus.debug || config.relay.debug,
        )
        .map_err(|e| format!("cannot install the log formatter: {e}"))
    }
    #[cfg(not(feature = "logging"))]
    {
        let _ = config;
        Ok(())
    }
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

/// What [`SlowConsumer`] shows the daemon.
struct SlowAttached(Arc<SlowConsumer>);

impl Attached for SlowAttached {
    fn describe(&self) -> String {
        SlowConsumer::NAME.to_owned()
    }

    fn stats(&self) -> Option<(&'static str, serde_json::Value)> {
        Some((
            "test_slow_consumer",
            serde_json::json!({ "handled": self.0.handled() }),
        ))
    }
}

impl Consumer for SlowConsumer {
    type Settings = Duration;
    type Error = bus_core::BusError;

    fn install(bus: &EventBus, delay: Duration) -> Result<Arc<dyn Attached>, Self::Error> {
        let slow = Arc::new(SlowConsumer::new(delay));
        bus.subscribe(slow.clone())?;
        Ok(Arc::new(SlowAttached(slow)))
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
