//! The Socket.IO relay's section: `CLAUDE_MPM_RELAY_*` and `CLAUDE_MPM_SOCKETIO_*`. The
//! settings type is relay-socketio's own [`RelayConfig`](relay_socketio::RelayConfig), and its
//! defaults are relay-socketio's.

use super::reader::Reader;
use crate::error::ConfigError;

/// The Socket.IO relay's settings.
#[derive(Clone, Debug)]
pub struct RelaySettings {
    /// `CLAUDE_MPM_RELAY_ENABLED`.
    pub enabled: bool,
    /// `CLAUDE_MPM_RELAY_DEBUG`: debug-level log lines (the relay's connection attempts).
    pub debug: bool,
    /// `CLAUDE_MPM_RELAY_GROUP`: the Redis consumer group the relay shares its work with
    /// (each event relayed by one daemon of the group); `None`: this relay relays everything.
    pub group: Option<String>,
    /// The relay's settings, from the other relay variables.
    #[cfg(feature = "relay")]
    pub config: relay_socketio::RelayConfig,
}

impl RelaySettings {
    pub(crate) fn read(r: &mut Reader) -> Result<Self, ConfigError> {
        let enabled = r.flag("CLAUDE_MPM_RELAY_ENABLED", false);
        let debug = r.flag("CLAUDE_MPM_RELAY_DEBUG", false);
        let group = r.value(
            "CLAUDE_MPM_RELAY_GROUP",
            None,
            |s| {
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err("a consumer group name without spaces, such as dashboard".to_owned())
                } else {
                    Ok(Some(s.to_owned()))
                }
            },
            |g| {
                g.as_ref()
                    .map_or(serde_json::Value::Null, |g| g.as_str().into())
            },
        );
        #[cfg(feature = "relay")]
        {
            let config = read_relay_config(r);
            check_relay_agrees(r, &config)?;
            Ok(RelaySettings {
                enabled,
                debug,
                group,
                config,
            })
        }
        #[cfg(not(feature = "relay"))]
        {
            for var in RELAY_CONFIG_VARS {
                r.unchecked(var);
            }
            Ok(RelaySettings {
                enabled,
                debug,
                group,
            })
        }
    }
}

/// The variables that fill the relay's own settings.
#[cfg(not(feature = "relay"))]
const RELAY_CONFIG_VARS: [&str; 8] = [
    "CLAUDE_MPM_SOCKETIO_PORT",
    "CLAUDE_MPM_SOCKETIO_URL",
    "CLAUDE_MPM_RELAY_MAX_RETRIES",
    "CLAUDE_MPM_RELAY_RETRY_DELAY",
    "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
    "CLAUDE_MPM_RELAY_EVENT",
    "CLAUDE_MPM_RELAY_PATTERNS",
    "CLAUDE_MPM_RELAY_BUFFER_SIZE",
];

#[cfg(feature = "relay")]
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

#[cfg(feature = "relay")]
fn read_relay_config(r: &mut Reader) -> relay_socketio::RelayConfig {
    use relay_socketio::{DEFAULT_PORT, RelayConfig};
    let defaults = RelayConfig::default();
    let port = r.number("CLAUDE_MPM_SOCKETIO_PORT", DEFAULT_PORT.into(), 1, 65535) as u16;
    let url = r.value(
        "CLAUDE_MPM_SOCKETIO_URL",
        RelayConfig::for_port(port).url,
        parse_url,
        |u| u.clone().into(),
    );
    RelayConfig {
        url,
        max_retries: r.number(
            "CLAUDE_MPM_RELAY_MAX_RETRIES",
            defaults.max_retries.into(),
            0,
            1000,
        ) as u32,
        retry_delay: r.duration("CLAUDE_MPM_RELAY_RETRY_DELAY", defaults.retry_delay, HOUR),
        // The relay waits this long between attempts once its retries are used up: zero
        // would be a busy loop, and relay-socketio refuses it.
        connection_cooldown: r.positive_duration(
            "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
            defaults.connection_cooldown,
            HOUR,
        ),
        event_name: r.value(
            "CLAUDE_MPM_RELAY_EVENT",
            defaults.event_name.clone(),
            |s| {
                let s = s.trim();
                if s.is_empty() || s.chars().any(char::is_control) {
                    Err("a non-empty Socket.IO event name without control characters".into())
                } else {
                    Ok(s.to_owned())
                }
            },
            |e| e.clone().into(),
        ),
        patterns: r.patterns("CLAUDE_MPM_RELAY_PATTERNS", defaults.patterns.clone(), true),
        buffer_capacity: r.number(
            "CLAUDE_MPM_RELAY_BUFFER_SIZE",
            defaults.buffer_capacity as u64,
            1,
            1_000_000,
        ) as usize,
        ..defaults
    }
}

/// Which variable fills which field of [`RelayConfig`](relay_socketio::RelayConfig), for
/// naming the culprit when relay-socketio's own validation refuses a field.
#[cfg(feature = "relay")]
const FIELD_VARS: [(&str, &str); 7] = [
    ("url", "CLAUDE_MPM_SOCKETIO_URL"),
    ("event_name", "CLAUDE_MPM_RELAY_EVENT"),
    ("patterns", "CLAUDE_MPM_RELAY_PATTERNS"),
    ("buffer_capacity", "CLAUDE_MPM_RELAY_BUFFER_SIZE"),
    ("max_retries", "CLAUDE_MPM_RELAY_MAX_RETRIES"),
    ("retry_delay", "CLAUDE_MPM_RELAY_RETRY_DELAY"),
    (
        "connection_cooldown",
        "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
    ),
];

/// Runs relay-socketio's own [`validate`](relay_socketio::RelayConfig::validate), so that a
/// value the relay would refuse at wiring time is refused here, under its variable's name and
/// together with every other bad variable. The reads above already mirror the relay's rules;
/// this keeps the two from drifting apart.
#[cfg(feature = "relay")]
pub(crate) fn check_relay_agrees(
    r: &mut Reader,
    config: &relay_socketio::RelayConfig,
) -> Result<(), ConfigError> {
    use relay_socketio::{RelayConfig, RelayError};
    let defaults = RelayConfig::default();
    let mut candidate = config.clone();
    // validate() stops at the first bad field: put each culprit back to its default and ask
    // again, so that every disagreement is reported.
    for _ in 0..=FIELD_VARS.len() {
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
        let Some((_, mut var)) = FIELD_VARS.iter().copied().find(|(f, _)| *f == field) else {
            // A field no variable sets: relay-socketio refuses its own default.
            return Err(ConfigError::RelayBuiltIn { field, reason });
        };
        match field {
            "url" => {
                candidate.url = defaults.url.clone();
                if r.raw(var).is_none() {
                    var = "CLAUDE_MPM_SOCKETIO_PORT";
                }
            }
            "event_name" => candidate.event_name = defaults.event_name.clone(),
            "patterns" => candidate.patterns = defaults.patterns.clone(),
            "buffer_capacity" => candidate.buffer_capacity = defaults.buffer_capacity,
            "max_retries" => candidate.max_retries = defaults.max_retries,
            "retry_delay" => candidate.retry_delay = defaults.retry_delay,
            _ => candidate.connection_cooldown = defaults.connection_cooldown,
        }
        let accepts = crate::vars::spec(var).map_or("", |s| s.accepts);
        r.refuse(
            var,
            format!("{accepts} (the Socket.IO relay refuses this value: {reason})"),
        );
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host. The scheme may be in any case (RFC 3986); it
/// is kept in lower case because relay-socketio checks for the lower-case prefix.
#[cfg(feature = "relay")]
fn parse_url(s: &str) -> Result<String, String> {
    let expected = "an http:// or https:// URL with a host, such as http://localhost:8765";
    let s = s.trim();
    let (scheme, rest) = s.split_once("://").ok_or_else(|| expected.to_owned())?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(expected.into());
    }
    let normalized = format!("{scheme}://{rest}");
    let url = url::Url::parse(&normalized).map_err(|_| expected.to_owned())?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(expected.into());
    }
    Ok(normalized)
}

#[cfg(all(test, feature = "relay"))]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    /// The reads already refuse these values, so this feeds settings straight to the
    /// backstop: what relay-socketio refuses is named by variable, every one of them.
    #[test]
    fn the_relay_backstop_names_every_variable_the_relay_refuses() {
        let raw: BTreeMap<String, String> = [
            ("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN", "0s"),
            ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let config = relay_socketio::RelayConfig {
            connection_cooldown: Duration::ZERO,
            buffer_capacity: 0,
            ..Default::default()
        };
        let mut r = Reader::new(raw.clone());
        check_relay_agrees(&mut r, &config).unwrap();
        let got: Vec<(&str, &str)> = r
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
        let text = r.errors[1].to_string();
        assert!(text.contains("duration above 0, up to 1h"), "{text}");
        assert!(text.contains("must be longer than zero"), "{text}");

        // A variable already reported is not reported twice.
        let mut r = Reader::new(raw);
        r.refuse("CLAUDE_MPM_RELAY_BUFFER_SIZE", "x".into());
        check_relay_agrees(&mut r, &config).unwrap();
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    }

    #[test]
    fn an_accepted_configuration_passes_the_relays_own_validation() {
        let config = crate::Config::from_iter([
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
        assert_eq!(config.relay.config.url, "https://Dash.Example:8443/x");
        config.relay.config.validate().unwrap();
    }
}
