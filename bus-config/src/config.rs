//! [`Config`]: every setting, read from the environment and validated in one pass.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use bus_core::{EventBus, EventBusBuilder, Overflow, Pattern};
use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, VarError};
use crate::parse;
use crate::runtime::RuntimeSettings;
use crate::vars::{PREFIX, VARS};

/// Raw values as envy reads them: every field a string, so that envy itself never fails on a
/// value and every check (with the full variable name) happens in [`Config::from_raw`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawEnv {
    eventbus_enabled: Option<String>,
    eventbus_debug: Option<String>,
    eventbus_history_size: Option<String>,
    eventbus_filters: Option<String>,
    eventbus_queue_capacity: Option<String>,
    eventbus_overflow: Option<String>,
    eventbus_http_addr: Option<String>,
    eventbus_max_body_bytes: Option<String>,
    eventbus_token: Option<String>,
    eventbus_shutdown_timeout: Option<String>,
    eventbus_logging: Option<String>,
    eventbus_log_format: Option<String>,
    eventbus_log_rate_limit: Option<String>,
    eventbus_metrics: Option<String>,
    relay_enabled: Option<String>,
    socketio_port: Option<String>,
    socketio_url: Option<String>,
    relay_debug: Option<String>,
    relay_max_retries: Option<String>,
    relay_retry_delay: Option<String>,
    relay_connection_cooldown: Option<String>,
    relay_event: Option<String>,
    relay_patterns: Option<String>,
    relay_buffer_size: Option<String>,
    eventbus_test_slow_consumer: Option<String>,
}

/// Largest history the daemon allows. The cost is the events retained, not the slots: every
/// held event keeps its whole payload alive, and bus-core's per-thread rings together hold up
/// to about three times `CLAUDE_MPM_EVENTBUS_HISTORY_SIZE` events (briefly, between
/// prunings), so memory grows with history size times payload size.
pub const MAX_HISTORY_SIZE: u64 = 100_000;

/// The bus's own settings: the part of the configuration that can also be changed on a
/// running bus (see [`RuntimeSettings`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BusSettings {
    /// `CLAUDE_MPM_EVENTBUS_ENABLED`.
    pub enabled: bool,
    /// `CLAUDE_MPM_EVENTBUS_DEBUG`.
    pub debug: bool,
    /// `CLAUDE_MPM_EVENTBUS_HISTORY_SIZE`.
    pub history_size: usize,
    /// `CLAUDE_MPM_EVENTBUS_FILTERS`, validated patterns.
    pub filters: Vec<String>,
    /// `CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY`.
    pub queue_capacity: usize,
    /// `CLAUDE_MPM_EVENTBUS_OVERFLOW`.
    pub overflow: Overflow,
}

/// The Socket.IO relay's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RelaySettings {
    /// `CLAUDE_MPM_RELAY_ENABLED`.
    pub enabled: bool,
    /// `CLAUDE_MPM_SOCKETIO_PORT`.
    pub port: u16,
    /// The server URL: `CLAUDE_MPM_SOCKETIO_URL`, else `http://localhost:<port>`.
    pub url: String,
    /// `CLAUDE_MPM_RELAY_DEBUG`.
    pub debug: bool,
    /// `CLAUDE_MPM_RELAY_MAX_RETRIES`.
    pub max_retries: u32,
    /// `CLAUDE_MPM_RELAY_RETRY_DELAY`.
    #[serde(with = "humantime_serde_compat")]
    pub retry_delay: Duration,
    /// `CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN`.
    #[serde(with = "humantime_serde_compat")]
    pub connection_cooldown: Duration,
    /// `CLAUDE_MPM_RELAY_EVENT`.
    pub event: String,
    /// `CLAUDE_MPM_RELAY_PATTERNS`.
    pub patterns: Vec<String>,
    /// `CLAUDE_MPM_RELAY_BUFFER_SIZE`.
    pub buffer_size: usize,
}

#[cfg(feature = "relay")]
impl RelaySettings {
    /// These settings as relay-socketio takes them; the fields without a variable (namespace,
    /// timeouts, acknowledgement pacing) keep relay-socketio's defaults.
    ///
    /// A [`Config`] that was read successfully always yields one that passes
    /// [`RelayConfig::validate`](relay_socketio::RelayConfig::validate): reading runs it.
    pub fn relay_config(&self) -> relay_socketio::RelayConfig {
        relay_socketio::RelayConfig {
            url: self.url.clone(),
            event_name: self.event.clone(),
            patterns: self.patterns.clone(),
            buffer_capacity: self.buffer_size,
            max_retries: self.max_retries,
            retry_delay: self.retry_delay,
            connection_cooldown: self.connection_cooldown,
            ..relay_socketio::RelayConfig::default()
        }
    }
}

/// A secret that never shows itself in `Debug`, `Display` or serialized output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when `candidate` equals the secret (compared in constant time).
    pub fn matches(&self, candidate: &str) -> bool {
        parse::constant_time_eq(self.0.as_bytes(), candidate.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "**** ({} characters)", self.0.chars().count())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The HTTP server's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpSettings {
    /// `CLAUDE_MPM_EVENTBUS_HTTP_ADDR`.
    pub addr: SocketAddr,
    /// `CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `CLAUDE_MPM_EVENTBUS_TOKEN` (masked when printed).
    pub token: Option<Secret>,
}

/// The format of the daemon's log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Which consumers run, and how the daemon logs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsumerSettings {
    /// `CLAUDE_MPM_EVENTBUS_LOGGING`.
    pub logging: bool,
    /// `CLAUDE_MPM_EVENTBUS_LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT`: events per type per second (0: no limit).
    pub log_rate_limit: u32,
    /// `CLAUDE_MPM_EVENTBUS_METRICS`.
    pub metrics: bool,
    /// `CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER` (test only).
    #[serde(with = "humantime_serde_compat::option")]
    pub test_slow_consumer: Option<Duration>,
}

/// The whole configuration: what the daemon reads from `CLAUDE_MPM_*` variables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    /// The bus.
    pub bus: BusSettings,
    /// The Socket.IO relay.
    pub relay: RelaySettings,
    /// The HTTP server.
    pub http: HttpSettings,
    /// The consumers and logging.
    pub consumers: ConsumerSettings,
    /// `CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT`.
    #[serde(with = "humantime_serde_compat")]
    pub shutdown_timeout: Duration,
    /// The variables that were set (the others took their defaults).
    #[serde(skip)]
    pub explicit: BTreeSet<&'static str>,
    /// Unknown `CLAUDE_MPM_EVENTBUS_*` / `CLAUDE_MPM_RELAY_*` variables: likely typos.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_iter(std::iter::empty()).expect("the defaults are valid")
    }
}

/// Collects the errors of one pass so all of them are reported together.
struct Checker {
    errors: Vec<VarError>,
    explicit: BTreeSet<&'static str>,
}

impl Checker {
    /// Runs `check` on the value of `var` when set; `default` otherwise or on error.
    fn value<T>(
        &mut self,
        var: &'static str,
        raw: Option<String>,
        default: T,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(raw) = raw else { return default };
        self.explicit.insert(var);
        match check(&raw) {
            Ok(v) => v,
            Err(expected) => {
                self.errors.push(VarError::new(var, raw, expected));
                default
            }
        }
    }

    fn boolean(&mut self, var: &'static str, raw: Option<String>, default: bool) -> bool {
        self.value(var, raw, default, parse::boolean)
    }

    fn number(
        &mut self,
        var: &'static str,
        raw: Option<String>,
        default: u64,
        min: u64,
        max: u64,
    ) -> u64 {
        self.value(var, raw, default, |s| parse::whole_number(s, min, max))
    }

    fn duration(
        &mut self,
        var: &'static str,
        raw: Option<String>,
        default: Duration,
        max: Duration,
    ) -> Duration {
        self.value(var, raw, default, |s| parse::duration(s, max))
    }

    fn patterns(
        &mut self,
        var: &'static str,
        raw: Option<String>,
        default: Vec<String>,
        at_least_one: bool,
    ) -> Vec<String> {
        self.value(var, raw, default, |s| {
            let items = parse::list(s);
            if at_least_one && items.is_empty() {
                return Err(
                    "at least one comma-separated event-type pattern, such as hook.*".into(),
                );
            }
            let bad: Vec<String> = items
                .iter()
                .filter_map(|p| Pattern::new(p).err().map(|e| e.to_string()))
                .collect();
            if bad.is_empty() {
                Ok(items)
            } else {
                Err(format!(
                    "comma-separated event-type patterns ({})",
                    bad.join("; ")
                ))
            }
        })
    }
}

const HOUR: Duration = Duration::from_secs(3600);

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
        let pairs: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(k, _)| k.starts_with(PREFIX))
            .collect();
        let warnings = unknown_variable_warnings(pairs.iter().map(|(k, _)| k.as_str()));
        let raw: RawEnv = envy::prefixed(PREFIX)
            .from_iter(pairs)
            .map_err(ConfigError::Environment)?;
        let mut config = Config::from_raw(raw)?;
        config.warnings = warnings;
        Ok(config)
    }

    fn from_raw(raw: RawEnv) -> Result<Config, ConfigError> {
        let mut c = Checker {
            errors: Vec::new(),
            explicit: BTreeSet::new(),
        };
        #[cfg(feature = "relay")]
        let relay_raw = RelayRaw {
            port: raw.socketio_port.clone(),
            url: raw.socketio_url.clone(),
            max_retries: raw.relay_max_retries.clone(),
            retry_delay: raw.relay_retry_delay.clone(),
            connection_cooldown: raw.relay_connection_cooldown.clone(),
            event: raw.relay_event.clone(),
            patterns: raw.relay_patterns.clone(),
            buffer_size: raw.relay_buffer_size.clone(),
        };
        let bus = BusSettings {
            enabled: c.boolean("CLAUDE_MPM_EVENTBUS_ENABLED", raw.eventbus_enabled, true),
            debug: c.boolean("CLAUDE_MPM_EVENTBUS_DEBUG", raw.eventbus_debug, false),
            history_size: c.number(
                "CLAUDE_MPM_EVENTBUS_HISTORY_SIZE",
                raw.eventbus_history_size,
                100,
                0,
                MAX_HISTORY_SIZE,
            ) as usize,
            filters: c.patterns(
                "CLAUDE_MPM_EVENTBUS_FILTERS",
                raw.eventbus_filters,
                Vec::new(),
                false,
            ),
            queue_capacity: c.number(
                "CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY",
                raw.eventbus_queue_capacity,
                10_000,
                1,
                10_000_000,
            ) as usize,
            overflow: c.value(
                "CLAUDE_MPM_EVENTBUS_OVERFLOW",
                raw.eventbus_overflow,
                Overflow::DropNewest,
                parse_overflow,
            ),
        };
        let port = c.number(
            "CLAUDE_MPM_SOCKETIO_PORT",
            raw.socketio_port,
            8765,
            1,
            65535,
        ) as u16;
        let default_url = format!("http://localhost:{port}");
        let relay = RelaySettings {
            enabled: c.boolean("CLAUDE_MPM_RELAY_ENABLED", raw.relay_enabled, false),
            port,
            url: c.value(
                "CLAUDE_MPM_SOCKETIO_URL",
                raw.socketio_url,
                default_url,
                parse_url,
            ),
            debug: c.boolean("CLAUDE_MPM_RELAY_DEBUG", raw.relay_debug, false),
            max_retries: c.number(
                "CLAUDE_MPM_RELAY_MAX_RETRIES",
                raw.relay_max_retries,
                3,
                0,
                1000,
            ) as u32,
            retry_delay: c.duration(
                "CLAUDE_MPM_RELAY_RETRY_DELAY",
                raw.relay_retry_delay,
                Duration::from_millis(500),
                HOUR,
            ),
            // The relay waits this long between attempts once its retries are used up:
            // zero would be a busy loop, and relay-socketio refuses it.
            connection_cooldown: c.value(
                "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
                raw.relay_connection_cooldown,
                Duration::from_secs(5),
                |s| parse::positive_duration(s, HOUR),
            ),
            event: c.value(
                "CLAUDE_MPM_RELAY_EVENT",
                raw.relay_event,
                "claude_event".to_owned(),
                |s| {
                    let s = s.trim();
                    if s.is_empty() || s.chars().any(char::is_control) {
                        Err("a non-empty Socket.IO event name without control characters".into())
                    } else {
                        Ok(s.to_owned())
                    }
                },
            ),
            patterns: c.patterns(
                "CLAUDE_MPM_RELAY_PATTERNS",
                raw.relay_patterns,
                vec!["hook.*".to_owned()],
                true,
            ),
            buffer_size: c.number(
                "CLAUDE_MPM_RELAY_BUFFER_SIZE",
                raw.relay_buffer_size,
                10_000,
                1,
                1_000_000,
            ) as usize,
        };
        let http = HttpSettings {
            addr: c.value(
                "CLAUDE_MPM_EVENTBUS_HTTP_ADDR",
                raw.eventbus_http_addr,
                DEFAULT_HTTP_ADDR,
                parse_addr,
            ),
            max_body_bytes: c.number(
                "CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES",
                raw.eventbus_max_body_bytes,
                16 * 1024 * 1024,
                1,
                1024 * 1024 * 1024,
            ) as usize,
            token: c.value("CLAUDE_MPM_EVENTBUS_TOKEN", raw.eventbus_token, None, |s| {
                parse_token(s).map(Some)
            }),
        };
        let consumers = ConsumerSettings {
            logging: c.boolean("CLAUDE_MPM_EVENTBUS_LOGGING", raw.eventbus_logging, true),
            log_format: c.value(
                "CLAUDE_MPM_EVENTBUS_LOG_FORMAT",
                raw.eventbus_log_format,
                LogFormat::Text,
                |s| match s.trim().to_ascii_lowercase().as_str() {
                    "text" => Ok(LogFormat::Text),
                    "json" => Ok(LogFormat::Json),
                    _ => Err("text or json".into()),
                },
            ),
            log_rate_limit: c.number(
                "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT",
                raw.eventbus_log_rate_limit,
                1000,
                0,
                1_000_000,
            ) as u32,
            metrics: c.boolean("CLAUDE_MPM_EVENTBUS_METRICS", raw.eventbus_metrics, true),
            test_slow_consumer: c.value(
                "CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER",
                raw.eventbus_test_slow_consumer,
                None,
                |s| parse::duration(s, Duration::from_secs(10)).map(Some),
            ),
        };
        let shutdown_timeout = c.duration(
            "CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT",
            raw.eventbus_shutdown_timeout,
            Duration::from_secs(10),
            HOUR,
        );
        #[cfg(feature = "relay")]
        check_relay_agrees(&mut c, &relay, &relay_raw)?;
        if !c.errors.is_empty() {
            let position = |e: &VarError| VARS.iter().position(|v| v.name == e.variable);
            c.errors.sort_by_key(position);
            return Err(ConfigError::Invalid { errors: c.errors });
        }
        Ok(Config {
            bus,
            relay,
            http,
            consumers,
            shutdown_timeout,
            explicit: c.explicit,
            warnings: Vec::new(),
        })
    }

    /// A bus builder with the bus settings applied (enabled, history, filters, queues).
    pub fn bus_builder(&self) -> EventBusBuilder {
        EventBus::builder()
            .enabled(self.bus.enabled)
            .history_size(self.bus.history_size)
            .filters(self.bus.filters.iter().cloned())
            .queue_capacity(self.bus.queue_capacity)
            .overflow(self.bus.overflow)
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
        }
    }

    /// Applies the bus settings (enabled, debug, history size, filters) to a running bus;
    /// on a problem nothing is changed.
    pub fn apply_to(
        &self,
        bus: &EventBus,
        debug: &crate::runtime::DebugSwitch,
    ) -> Result<crate::runtime::CurrentSettings, Vec<String>> {
        self.runtime_settings().apply(bus, debug)
    }

    /// `eventbus config`'s output: one `NAME=value` line per variable, `# default` marking
    /// those not set, the token masked.
    pub fn render_env(&self) -> String {
        let mut out = String::new();
        for var in VARS {
            let value = self.display_value(var.name);
            let note = if self.explicit.contains(var.name) {
                ""
            } else {
                "  # default"
            };
            out.push_str(&format!("{}={value}{note}\n", var.name));
        }
        out
    }

    fn display_value(&self, name: &str) -> String {
        let secs = |d: Duration| humantime::format_duration(d).to_string();
        let list = |v: &[String]| v.join(",");
        match name {
            "CLAUDE_MPM_EVENTBUS_ENABLED" => self.bus.enabled.to_string(),
            "CLAUDE_MPM_EVENTBUS_DEBUG" => self.bus.debug.to_string(),
            "CLAUDE_MPM_EVENTBUS_HISTORY_SIZE" => self.bus.history_size.to_string(),
            "CLAUDE_MPM_EVENTBUS_FILTERS" => list(&self.bus.filters),
            "CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY" => self.bus.queue_capacity.to_string(),
            "CLAUDE_MPM_EVENTBUS_OVERFLOW" => overflow_name(self.bus.overflow).to_owned(),
            "CLAUDE_MPM_EVENTBUS_HTTP_ADDR" => self.http.addr.to_string(),
            "CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES" => self.http.max_body_bytes.to_string(),
            "CLAUDE_MPM_EVENTBUS_TOKEN" => self
                .http
                .token
                .as_ref()
                .map_or(String::new(), ToString::to_string),
            "CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT" => secs(self.shutdown_timeout),
            "CLAUDE_MPM_EVENTBUS_LOGGING" => self.consumers.logging.to_string(),
            "CLAUDE_MPM_EVENTBUS_LOG_FORMAT" => match self.consumers.log_format {
                LogFormat::Text => "text".into(),
                LogFormat::Json => "json".into(),
            },
            "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT" => self.consumers.log_rate_limit.to_string(),
            "CLAUDE_MPM_EVENTBUS_METRICS" => self.consumers.metrics.to_string(),
            "CLAUDE_MPM_RELAY_ENABLED" => self.relay.enabled.to_string(),
            "CLAUDE_MPM_SOCKETIO_PORT" => self.relay.port.to_string(),
            "CLAUDE_MPM_SOCKETIO_URL" => self.relay.url.clone(),
            "CLAUDE_MPM_RELAY_DEBUG" => self.relay.debug.to_string(),
            "CLAUDE_MPM_RELAY_MAX_RETRIES" => self.relay.max_retries.to_string(),
            "CLAUDE_MPM_RELAY_RETRY_DELAY" => secs(self.relay.retry_delay),
            "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN" => secs(self.relay.connection_cooldown),
            "CLAUDE_MPM_RELAY_EVENT" => self.relay.event.clone(),
            "CLAUDE_MPM_RELAY_PATTERNS" => list(&self.relay.patterns),
            "CLAUDE_MPM_RELAY_BUFFER_SIZE" => self.relay.buffer_size.to_string(),
            "CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER" => self
                .consumers
                .test_slow_consumer
                .map_or(String::new(), secs),
            _ => String::new(),
        }
    }
}

/// The relay variables as they were set, for the errors of [`check_relay_agrees`].
#[cfg(feature = "relay")]
struct RelayRaw {
    port: Option<String>,
    url: Option<String>,
    max_retries: Option<String>,
    retry_delay: Option<String>,
    connection_cooldown: Option<String>,
    event: Option<String>,
    patterns: Option<String>,
    buffer_size: Option<String>,
}

/// Runs relay-socketio's own [`validate`](relay_socketio::RelayConfig::validate) on the relay
/// settings, so that a value the relay would refuse at wiring time is refused here, under its
/// variable's name and together with every other bad variable. The checks above already
/// mirror the relay's rules; this keeps the two from drifting apart.
#[cfg(feature = "relay")]
fn check_relay_agrees(
    c: &mut Checker,
    relay: &RelaySettings,
    raw: &RelayRaw,
) -> Result<(), ConfigError> {
    use relay_socketio::{RelayConfig, RelayError};
    let defaults = RelayConfig::default();
    let mut candidate = relay.relay_config();
    // validate() stops at the first bad field: put each culprit back to its default and ask
    // again, so every disagreement is reported. Seven fields come from variables.
    for _ in 0..8 {
        let (field, reason) = match candidate.validate() {
            Ok(()) => return Ok(()),
            Err(RelayError::InvalidConfig { field, reason }) => (field, reason),
            Err(other) => {
                return Err(ConfigError::RelayBuiltIn {
                    field: "?",
                    reason: other.to_string(),
                });
            }
        };
        let (var, value) = match field {
            "url" => {
                candidate.url = defaults.url.clone();
                match &raw.url {
                    Some(url) => ("CLAUDE_MPM_SOCKETIO_URL", Some(url)),
                    None => ("CLAUDE_MPM_SOCKETIO_PORT", raw.port.as_ref()),
                }
            }
            "event_name" => {
                candidate.event_name = defaults.event_name.clone();
                ("CLAUDE_MPM_RELAY_EVENT", raw.event.as_ref())
            }
            "patterns" => {
                candidate.patterns = defaults.patterns.clone();
                ("CLAUDE_MPM_RELAY_PATTERNS", raw.patterns.as_ref())
            }
            "buffer_capacity" => {
                candidate.buffer_capacity = defaults.buffer_capacity;
                ("CLAUDE_MPM_RELAY_BUFFER_SIZE", raw.buffer_size.as_ref())
            }
            "max_retries" => {
                candidate.max_retries = defaults.max_retries;
                ("CLAUDE_MPM_RELAY_MAX_RETRIES", raw.max_retries.as_ref())
            }
            "retry_delay" => {
                candidate.retry_delay = defaults.retry_delay;
                ("CLAUDE_MPM_RELAY_RETRY_DELAY", raw.retry_delay.as_ref())
            }
            "connection_cooldown" => {
                candidate.connection_cooldown = defaults.connection_cooldown;
                (
                    "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
                    raw.connection_cooldown.as_ref(),
                )
            }
            // A field no variable sets: relay-socketio refuses its own default.
            field => return Err(ConfigError::RelayBuiltIn { field, reason }),
        };
        if c.errors.iter().any(|e| e.variable == var) {
            continue;
        }
        let spec = crate::vars::spec(var).expect("every relay variable is in the table");
        c.errors.push(VarError::new(
            var,
            value.cloned().unwrap_or_else(|| spec.default.to_owned()),
            format!(
                "{} (the Socket.IO relay refuses this value: {reason})",
                spec.accepts
            ),
        ));
    }
    Ok(())
}

/// The default listening address, `127.0.0.1:8770`.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8770,
));

/// Parses an `IP:PORT` listening or daemon address; the error says what is accepted.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse::<SocketAddr>()
        .map_err(|_| "IP:PORT such as 127.0.0.1:8770 (or [::1]:8770)".to_owned())
}

fn parse_token(s: &str) -> Result<Secret, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("non-empty text without whitespace (unset the variable to turn auth off)".into())
    } else {
        Ok(Secret::new(s))
    }
}

/// An `http://` or `https://` URL with a host. The scheme may be in any case (RFC 3986); it
/// is kept in lower case because relay-socketio checks for the lower-case prefix.
fn parse_url(s: &str) -> Result<String, String> {
    let expected = "an http:// or https:// URL with a host, such as http://localhost:8765";
    let s = s.trim();
    let (scheme, rest) = s.split_once("://").ok_or_else(|| expected.to_owned())?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(expected.into());
    }
    let normalized = format!("{scheme}://{rest}");
    let url = reqwest::Url::parse(&normalized).map_err(|_| expected.to_owned())?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(expected.into());
    }
    Ok(normalized)
}

fn parse_overflow(s: &str) -> Result<Overflow, String> {
    match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
        "drop_newest" => Ok(Overflow::DropNewest),
        "drop_oldest" => Ok(Overflow::DropOldest),
        "block" => Ok(Overflow::Block),
        _ => Err("drop_newest, drop_oldest or block".into()),
    }
}

fn overflow_name(o: Overflow) -> &'static str {
    match o {
        Overflow::DropNewest => "drop_newest",
        Overflow::DropOldest => "drop_oldest",
        Overflow::Block => "block",
    }
}

/// Warnings for variables in our namespaces that the daemon does not know (likely typos).
fn unknown_variable_warnings<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<&str> = names
        .filter(|n| {
            [
                "CLAUDE_MPM_EVENTBUS_",
                "CLAUDE_MPM_RELAY_",
                "CLAUDE_MPM_SOCKETIO_",
            ]
            .iter()
            .any(|p| n.starts_with(p))
        })
        .filter(|n| crate::vars::spec(n).is_none())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|n| {
            let hint = closest_known(n)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            format!("unknown variable {n} is ignored{hint}")
        })
        .collect()
}

fn closest_known(name: &str) -> Option<&'static str> {
    VARS.iter()
        .map(|v| (edit_distance(name, v.name), v.name))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Serializes durations as humantime text (`500ms`, `5s`) in `eventbus config --json`.
mod humantime_serde_compat {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub(super) mod option {
        use std::time::Duration;

        pub(crate) fn serialize<S: serde::Serializer>(
            d: &Option<Duration>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => s.collect_str(&humantime::format_duration(*d)),
                None => s.serialize_none(),
            }
        }
    }
}

/// What `eventbus publish` needs: where the daemon is, and the token to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// `CLAUDE_MPM_EVENTBUS_HTTP_ADDR`.
    pub addr: SocketAddr,
    /// `CLAUDE_MPM_EVENTBUS_TOKEN`.
    pub token: Option<Secret>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawClientEnv {
    eventbus_http_addr: Option<String>,
    eventbus_token: Option<String>,
}

impl ClientSettings {
    /// Reads the two client variables from the environment; the daemon's other settings are
    /// not the client's business, so their values are not checked here.
    pub fn from_env() -> Result<Self, ConfigError> {
        let pairs = ["CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "CLAUDE_MPM_EVENTBUS_TOKEN"]
            .into_iter()
            .filter_map(|k| {
                std::env::var_os(k).map(|v| (k.to_owned(), v.to_string_lossy().into_owned()))
            });
        Self::from_iter(pairs)
    }

    /// Reads the client variables from `(name, value)` pairs.
    #[allow(clippy::should_implement_trait)] // fallible, so not `FromIterator`
    pub fn from_iter<I>(pairs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let raw: RawClientEnv = envy::prefixed(PREFIX)
            .from_iter(pairs.into_iter().filter(|(k, _)| k.starts_with(PREFIX)))
            .map_err(ConfigError::Environment)?;
        let mut c = Checker {
            errors: Vec::new(),
            explicit: BTreeSet::new(),
        };
        let addr = c.value(
            "CLAUDE_MPM_EVENTBUS_HTTP_ADDR",
            raw.eventbus_http_addr,
            DEFAULT_HTTP_ADDR,
            parse_addr,
        );
        let token = c.value("CLAUDE_MPM_EVENTBUS_TOKEN", raw.eventbus_token, None, |s| {
            parse_token(s).map(Some)
        });
        if c.errors.is_empty() {
            Ok(ClientSettings { addr, token })
        } else {
            Err(ConfigError::Invalid { errors: c.errors })
        }
    }
}

#[cfg(all(test, feature = "relay"))]
mod tests {
    use super::*;

    fn raw_with(cooldown: &str, buffer: &str) -> RelayRaw {
        RelayRaw {
            port: None,
            url: None,
            max_retries: None,
            retry_delay: None,
            connection_cooldown: Some(cooldown.to_owned()),
            event: None,
            patterns: None,
            buffer_size: Some(buffer.to_owned()),
        }
    }

    /// The checks in `from_raw` already refuse these values, so this feeds settings straight
    /// to the backstop: what relay-socketio refuses is named by variable, every one of them.
    #[test]
    fn the_relay_backstop_names_every_variable_the_relay_refuses() {
        let mut relay = Config::default().relay;
        relay.connection_cooldown = Duration::ZERO;
        relay.buffer_size = 0;
        let mut c = Checker {
            errors: Vec::new(),
            explicit: BTreeSet::new(),
        };
        check_relay_agrees(&mut c, &relay, &raw_with("0s", "0")).unwrap();
        let got: Vec<(&str, &str)> = c
            .errors
            .iter()
            .map(|e| (e.variable.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "0"),
                ("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN", "0s"),
            ]
        );
        let text = c.errors[1].to_string();
        assert!(text.contains("duration above 0, up to 1h"), "{text}");
        assert!(text.contains("must be longer than zero"), "{text}");

        // A variable already reported is not reported twice.
        let mut c = Checker {
            errors: vec![VarError::new(
                "CLAUDE_MPM_RELAY_BUFFER_SIZE",
                "0".into(),
                "x".into(),
            )],
            explicit: BTreeSet::new(),
        };
        check_relay_agrees(&mut c, &relay, &raw_with("0s", "0")).unwrap();
        assert_eq!(c.errors.len(), 2, "{:?}", c.errors);
    }

    #[test]
    fn an_accepted_configuration_passes_the_relays_own_validation() {
        let config = Config::from_iter([
            (
                "CLAUDE_MPM_SOCKETIO_URL".to_owned(),
                "HTTPS://Dash.Example:8443/x".to_owned(),
            ),
            ("CLAUDE_MPM_RELAY_RETRY_DELAY".to_owned(), "0".to_owned()),
            ("CLAUDE_MPM_RELAY_MAX_RETRIES".to_owned(), "0".to_owned()),
            (
                "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN".to_owned(),
                "1ms".to_owned(),
            ),
        ])
        .unwrap();
        assert_eq!(config.relay.url, "https://Dash.Example:8443/x");
        config.relay.relay_config().validate().unwrap();
    }
}
