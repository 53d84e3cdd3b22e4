//! [`Config`]: every setting, read from the environment and validated in one pass. Each
//! section reads its own variables in its own module; [`Reader`](reader::Reader) checks each
//! value and remembers how to show it.

mod bus;
mod http;
mod limits;
mod logging;
mod metrics;
mod reader;
mod relay;
mod rules;
mod store;
mod typos;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bus_core::{EventBus, EventBusBuilder};
use serde_json::{Map, Value};

pub use self::bus::BusSettings;
pub use self::http::{ClientSettings, DEFAULT_HTTP_ADDR, HttpSettings, Secret, parse_addr};
pub use self::limits::{LimitSettings, parse_rate_limit};
pub use self::logging::LoggingSettings;
#[cfg(feature = "logging")]
pub(crate) use self::logging::read_log_rate_limit;
pub use self::metrics::MetricsSettings;
use self::reader::Reader;
pub use self::relay::RelaySettings;
pub use self::rules::RulesSettings;
pub(crate) use self::rules::compile as compile_condition;
pub use self::store::{
    DEFAULT_REDIS_STREAM, RedisSettings, RedisUrl, StoreLocation, StoreSettings, default_store_path,
};
use crate::error::{ConfigError, VarError};
use crate::runtime::{CurrentSettings, DebugSwitch, RuntimeSettings};
use crate::vars::{PREFIX, VARS};

/// The daemon's own settings: how it stops, and its test hooks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT`: how long SIGINT/SIGTERM waits for the
    /// consumers to drain.
    pub shutdown_timeout: Duration,
    /// `CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER` (test only).
    pub test_slow_consumer: Option<Duration>,
    /// `CLAUDE_MPM_EVENTBUS_SPOOL`: where hooks spool events while the daemon is down; `None`
    /// for the default under the user's state directory.
    pub spool: Option<std::path::PathBuf>,
}

impl DaemonSettings {
    fn read(r: &mut Reader) -> Self {
        DaemonSettings {
            shutdown_timeout: r.duration(
                "CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT",
                Duration::from_secs(10),
                Duration::from_secs(3600),
            ),
            test_slow_consumer: r.value(
                "CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER",
                None,
                |s| crate::parse::duration(s, Duration::from_secs(10)).map(Some),
                |d| d.as_ref().map_or(Value::Null, reader::show_duration),
            ),
            spool: r.value(
                "CLAUDE_MPM_EVENTBUS_SPOOL",
                None,
                crate::parse::absolute_path,
                |p| {
                    p.as_ref()
                        .map_or(Value::Null, |p| Value::String(p.display().to_string()))
                },
            ),
        }
    }
}

/// The whole configuration: what the daemon reads from `CLAUDE_MPM_*` variables.
#[derive(Clone, Debug)]
pub struct Config {
    /// The bus.
    pub bus: BusSettings,
    /// The HTTP server.
    pub http: HttpSettings,
    /// The logging consumer and the daemon's log format.
    pub logging: LoggingSettings,
    /// The metrics consumer.
    pub metrics: MetricsSettings,
    /// The Socket.IO relay.
    pub relay: RelaySettings,
    /// Priorities and the relay's rate limit.
    pub limits: LimitSettings,
    /// The durable event log.
    pub store: StoreSettings,
    /// Schema validation and content conditions.
    pub rules: RulesSettings,
    /// The daemon's lifecycle.
    pub daemon: DaemonSettings,
    /// The variables that were set (the others took their defaults).
    pub explicit: BTreeSet<&'static str>,
    /// Unknown `CLAUDE_MPM_EVENTBUS_*` / `CLAUDE_MPM_RELAY_*` variables: likely typos.
    pub warnings: Vec<String>,
    /// Each variable's value as read, as `eventbus config` shows it.
    shown: BTreeMap<&'static str, Value>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_iter(std::iter::empty()).expect("the defaults are valid")
    }
}

/// The `CLAUDE_MPM_*` pairs of `pairs`, through envy, keyed by full variable name.
pub(crate) fn read_raw<I>(pairs: I) -> Result<BTreeMap<String, String>, ConfigError>
where
    I: IntoIterator<Item = (String, String)>,
{
    let raw: BTreeMap<String, String> = envy::prefixed(PREFIX)
        .from_iter(pairs.into_iter().filter(|(k, _)| k.starts_with(PREFIX)))
        .map_err(ConfigError::Environment)?;
    // envy hands the names back without the prefix and in lower case.
    Ok(raw
        .into_iter()
        .map(|(k, v)| (format!("{PREFIX}{}", k.to_ascii_uppercase()), v))
        .collect())
}

impl Config {
    /// Reads the configuration from the process environment.
    ///
    /// Only `CLAUDE_MPM_*` variables are looked at; one whose value is not valid UTF-8 is
    /// reported like any other bad value.
    pub fn from_env() -> Result<Config, ConfigError> {
        let mut pairs = Vec::new();
        let mut not_unicode = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if !key.starts_with(PREFIX) {
                continue;
            }
            match value.into_string() {
                Ok(value) => pairs.push((key.to_owned(), value)),
                Err(value) => not_unicode.push(VarError::new(
                    key,
                    value.to_string_lossy().into_owned(),
                    "valid UTF-8 text".to_owned(),
                )),
            }
        }
        match Config::from_iter(pairs) {
            Err(ConfigError::Invalid { mut errors }) => {
                errors.extend(not_unicode);
                Err(ConfigError::Invalid { errors })
            }
            Ok(_) if !not_unicode.is_empty() => Err(ConfigError::Invalid {
                errors: not_unicode,
            }),
            other => other,
        }
    }

    /// Reads the configuration from `(name, value)` pairs, as [`from_env`](Self::from_env)
    /// does from the environment; for tests and embedding. Pairs without the `CLAUDE_MPM_`
    /// prefix are ignored.
    ///
    /// Every bad value is reported in one [`ConfigError::Invalid`].
    #[allow(clippy::should_implement_trait)] // fallible, so not `FromIterator`
    pub fn from_iter<I>(pairs: I) -> Result<Config, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let raw = read_raw(pairs)?;
        let warnings = typos::unknown_variable_warnings(raw.keys().map(String::as_str));
        let mut r = Reader::new(raw);
        let bus = BusSettings::read(&mut r);
        let http = HttpSettings::read(&mut r);
        let store = StoreSettings::read(&mut r);
        let daemon = DaemonSettings::read(&mut r);
        let logging = LoggingSettings::read(&mut r);
        let metrics = MetricsSettings::read(&mut r);
        let rules = RulesSettings::read(&mut r);
        #[allow(unused_mut)] // without the relay feature nothing is added to it
        let mut relay = RelaySettings::read(&mut r)?;
        let limits = LimitSettings::read(&mut r);
        #[cfg(feature = "relay")]
        {
            // The relay's send buffer is its queue: the bus's priorities order it too.
            relay.config.priorities = limits.priorities.clone();
            relay.config.rate_limit = limits.relay_rate_limit;
        }
        if !r.errors.is_empty() {
            let position = |e: &VarError| VARS.iter().position(|v| v.name == e.variable);
            r.errors.sort_by_key(position);
            return Err(ConfigError::Invalid { errors: r.errors });
        }
        Ok(Config {
            bus,
            http,
            logging,
            metrics,
            relay,
            limits,
            store,
            rules,
            daemon,
            explicit: r.explicit,
            warnings,
            shown: r.shown,
        })
    }

    /// A bus builder with the bus settings applied (enabled, history, filters, queues).
    pub fn bus_builder(&self) -> EventBusBuilder {
        EventBus::builder()
            .enabled(self.bus.enabled)
            .history_size(self.bus.history_size)
            .history_max_bytes(self.bus.history_max_bytes)
            .filters(self.bus.filters.iter().cloned())
            .queue_capacity(self.bus.queue_capacity)
            .overflow(self.bus.overflow)
            .priorities(self.limits.priorities.clone().unwrap_or_default())
    }

    /// Builds a bus from these settings. The filters were validated when the configuration
    /// was read, so this fails only if bus-core's rules changed underneath.
    pub fn build_bus(&self) -> Result<EventBus, bus_core::BusError> {
        self.bus_builder().build()
    }

    /// The settings that can be applied to a running bus, as this configuration has them.
    pub fn runtime_settings(&self) -> RuntimeSettings {
        RuntimeSettings {
            enabled: Some(self.bus.enabled),
            debug: Some(self.bus.debug),
            history_size: Some(self.bus.history_size),
            filters: Some(self.bus.filters.clone()),
            // Consumers' limits are set when they are built; `apply_to` leaves them.
            relay_rate_limit: None,
            log_rate_limit: None,
            filter_where: None,
            reload_schemas: None,
        }
    }

    /// Applies the bus settings (enabled, debug, history size, filters) to a running bus;
    /// on a problem nothing is changed.
    pub fn apply_to(
        &self,
        bus: &EventBus,
        debug: &DebugSwitch,
    ) -> Result<CurrentSettings, Vec<String>> {
        self.runtime_settings().apply(bus, debug)
    }

    /// `eventbus config`'s output: one `NAME=value` line per variable, `# default` marking
    /// those not set, the token masked.
    pub fn render_env(&self) -> String {
        let mut out = String::new();
        for var in VARS {
            let value = match self.shown.get(var.name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                Some(other) => other.to_string(),
            };
            let note = if self.explicit.contains(var.name) {
                ""
            } else {
                "  # default"
            };
            out.push_str(&format!("{}={value}{note}\n", var.name));
        }
        out
    }

    /// `eventbus config --json`'s output: each variable's value under its section and field
    /// (`{"relay": {"retry_delay": "500ms", ...}, ...}`), the token masked.
    pub fn to_json(&self) -> Value {
        let mut root = Map::new();
        for var in VARS {
            let (section, field) = var.key.split_once('.').unwrap_or(("", var.key));
            let value = self.shown.get(var.name).cloned().unwrap_or(Value::Null);
            let section = root
                .entry(section)
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(map) = section {
                map.insert(field.to_owned(), value);
            }
        }
        Value::Object(root)
    }
}
