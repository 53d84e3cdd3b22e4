//! The relay's settings: a plain struct with the original's defaults, checked by
//! [`RelayConfig::validate`].

use std::time::Duration;

use crate::RelayError;

/// The dashboard's default port, as in the original (`CLAUDE_MPM_SOCKETIO_PORT`).
pub const DEFAULT_PORT: u16 = 8765;

/// The Socket.IO event the dashboard listens for.
pub const DEFAULT_EVENT_NAME: &str = "claude_event";

/// Settings of a [`SocketIoRelay`](crate::SocketIoRelay).
///
/// Every field is public so a configuration layer (env vars, a file) can fill it; start from
/// [`RelayConfig::default`] or [`RelayConfig::for_port`] and change what differs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct RelayConfig {
    /// Server URL, `http://` or `https://` (default `http://localhost:8765`).
    pub url: String,
    /// Socket.IO namespace (default `/`).
    pub namespace: String,
    /// Socket.IO event emitted for every relayed bus event (default `claude_event`); it is
    /// also the value of the payload's `"event"` key.
    pub event_name: String,
    /// Bus event-type patterns to relay (default `["hook.*"]`).
    pub patterns: Vec<String>,
    /// Events held while undelivered; when full the oldest is dropped and counted
    /// (default 10,000).
    pub buffer_capacity: usize,
    /// Connection retries with exponential backoff before falling back to one attempt per
    /// [`connection_cooldown`](Self::connection_cooldown) (default 3).
    pub max_retries: u32,
    /// First backoff delay, doubled on each retry, with jitter (default 0.5 s).
    pub retry_delay: Duration,
    /// Delay between attempts once the retries are used up (default 5 s).
    pub connection_cooldown: Duration,
    /// How long a connection attempt may take, up to the server's namespace acknowledgement
    /// (default 5 s).
    pub connect_timeout: Duration,
    /// How long an acknowledgement (or a single emit) may take before the connection is
    /// declared dead, torn down and everything unconfirmed resent (default 5 s).
    pub ack_timeout: Duration,
    /// At most this many events are emitted between two acknowledged checkpoints
    /// (default 256).
    pub ack_every: usize,
    /// At most this long passes between two checkpoints while events flow (default 50 ms).
    pub ack_interval: Duration,
    /// Emitted-but-unconfirmed events allowed before the relay waits for an
    /// acknowledgement: bounds what a dead connection can swallow (default 2,048).
    pub max_unconfirmed: usize,
    /// Durable mode (default false): [`Consumer::install`](bus_core::Consumer::install) does
    /// not subscribe the relay to the bus; the host feeds it from its durable event log
    /// through [`Attached::durable`](bus_core::Attached::durable), and the buffer never drops
    /// (the host respects its room). Set by the host, not read from the environment.
    #[serde(skip)]
    pub durable: bool,
    /// Priorities by event type for the send buffer (default none: every event `normal`
    /// unless its publisher said otherwise); see the buffer's order in the crate docs.
    #[serde(skip)]
    pub priorities: Option<bus_core::PriorityRules>,
    /// A limit on emits to the server (default none). Under `delay` events wait in the
    /// buffer (which fills, and drops its lowest-priority oldest when full, unless durable);
    /// under `drop` new events over the rate are dropped and counted per type.
    #[serde(skip)]
    pub rate_limit: Option<bus_core::RateLimit>,
    /// A content condition on top of [`patterns`](Self::patterns) (`CLAUDE_MPM_RELAY_WHERE`,
    /// compiled by the host): only events it matches are relayed (default none).
    #[serde(skip)]
    pub condition: RelayCondition,
}

/// The relay's optional [`Condition`](bus_core::Condition); two are equal when written
/// the same.
#[derive(Clone, Default)]
pub struct RelayCondition(pub Option<std::sync::Arc<dyn bus_core::Condition>>);

impl RelayCondition {
    /// True when there is no condition or it matches `event`.
    pub fn admits(&self, event: &bus_core::Event) -> bool {
        self.0
            .as_ref()
            .is_none_or(|c| c.matches(bus_core::EventView::from(event)))
    }
}

impl std::fmt::Debug for RelayCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RelayCondition")
            .field(&self.0.as_ref().map(|c| c.source()))
            .finish()
    }
}

impl PartialEq for RelayCondition {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ref().map(|c| c.source()) == other.0.as_ref().map(|c| c.source())
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            url: format!("http://localhost:{DEFAULT_PORT}"),
            namespace: "/".to_owned(),
            event_name: DEFAULT_EVENT_NAME.to_owned(),
            patterns: vec!["hook.*".to_owned()],
            buffer_capacity: 10_000,
            max_retries: 3,
            retry_delay: Duration::from_millis(500),
            connection_cooldown: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            ack_timeout: Duration::from_secs(5),
            ack_every: 256,
            ack_interval: Duration::from_millis(50),
            max_unconfirmed: 2_048,
            durable: false,
            priorities: None,
            rate_limit: None,
            condition: RelayCondition::default(),
        }
    }
}

impl RelayConfig {
    /// The defaults, with the server at `http://localhost:{port}` (the original's only knob).
    pub fn for_port(port: u16) -> Self {
        RelayConfig {
            url: format!("http://localhost:{port}"),
            ..RelayConfig::default()
        }
    }

    /// The waits between connection attempts: `retry_delay` doubled for `max_retries`
    /// attempts, then `connection_cooldown`, each ±20 % jitter.
    pub fn reconnect_policy(&self) -> bus_core::ReconnectPolicy {
        bus_core::ReconnectPolicy {
            retries: self.max_retries,
            first_delay: self.retry_delay,
            cooldown: self.connection_cooldown,
        }
    }

    /// Checks every field; the error names the culprit.
    pub fn validate(&self) -> Result<(), RelayError> {
        let invalid =
            |field: &'static str, reason: String| Err(RelayError::InvalidConfig { field, reason });
        let scheme_ok = ["http://", "https://"]
            .iter()
            .any(|s| self.url.len() > s.len() && self.url.starts_with(s));
        if !scheme_ok {
            return invalid(
                "url",
                format!("{:?} is not an http:// or https:// URL", self.url),
            );
        }
        if !self.namespace.starts_with('/') {
            return invalid(
                "namespace",
                format!("{:?} must start with '/'", self.namespace),
            );
        }
        if self.event_name.is_empty() {
            return invalid("event_name", "must not be empty".into());
        }
        if self.patterns.is_empty() {
            return invalid("patterns", "at least one pattern is needed".into());
        }
        for pattern in &self.patterns {
            if let Err(e) = bus_core::Pattern::new(pattern) {
                return invalid("patterns", e.to_string());
            }
        }
        let positive = [
            ("buffer_capacity", self.buffer_capacity),
            ("ack_every", self.ack_every),
            ("max_unconfirmed", self.max_unconfirmed),
        ];
        for (field, value) in positive {
            if value == 0 {
                return invalid(field, "must be at least 1".into());
            }
        }
        let durations = [
            ("connect_timeout", self.connect_timeout),
            ("ack_timeout", self.ack_timeout),
            ("connection_cooldown", self.connection_cooldown),
        ];
        for (field, value) in durations {
            if value.is_zero() {
                return invalid(field, "must be longer than zero".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_original() {
        let c = RelayConfig::default();
        assert_eq!(c.url, "http://localhost:8765");
        assert_eq!(c.namespace, "/");
        assert_eq!(c.event_name, "claude_event");
        assert_eq!(c.patterns, vec!["hook.*"]);
        assert_eq!(c.buffer_capacity, 10_000);
        assert_eq!(c.max_retries, 3);
        assert_eq!(c.retry_delay, Duration::from_millis(500));
        assert_eq!(c.connection_cooldown, Duration::from_secs(5));
        c.validate().unwrap();
        assert_eq!(RelayConfig::for_port(9000).url, "http://localhost:9000");
    }

    #[test]
    fn reconnects_double_the_retry_delay_then_keep_to_the_cooldown() {
        let config = RelayConfig {
            retry_delay: Duration::from_millis(100),
            max_retries: 3,
            connection_cooldown: Duration::from_secs(5),
            ..RelayConfig::default()
        };
        let mut backoff = config.reconnect_policy().backoff();
        let mut bases = Vec::new();
        for _ in 0..5 {
            let waited = backoff.next_delay();
            let base = backoff.last_base();
            assert!(waited >= base.mul_f64(0.8) && waited <= base.mul_f64(1.2));
            bases.push((base.as_secs_f64() * 1000.0).round() as u64);
        }
        assert_eq!(bases, vec![100, 200, 400, 5000, 5000]);
        // A healthy session resets it (pump.rs): the next failure waits the first delay again.
        backoff.reset();
        backoff.next_delay();
        assert_eq!(backoff.last_base(), Duration::from_millis(100));
    }

    #[test]
    fn bad_fields_are_named() {
        type Breakage = Box<dyn Fn(&mut RelayConfig)>;
        let cases: Vec<(&str, Breakage)> = vec![
            ("url", Box::new(|c| c.url = "localhost:8765".into())),
            ("namespace", Box::new(|c| c.namespace = "chat".into())),
            ("event_name", Box::new(|c| c.event_name.clear())),
            ("patterns", Box::new(|c| c.patterns.clear())),
            ("patterns", Box::new(|c| c.patterns = vec![String::new()])),
            ("buffer_capacity", Box::new(|c| c.buffer_capacity = 0)),
            ("ack_every", Box::new(|c| c.ack_every = 0)),
            ("ack_timeout", Box::new(|c| c.ack_timeout = Duration::ZERO)),
        ];
        for (field, break_it) in cases {
            let mut c = RelayConfig::default();
            break_it(&mut c);
            match c.validate() {
                Err(RelayError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected an InvalidConfig error, got {other:?}"),
            }
        }
    }
}
