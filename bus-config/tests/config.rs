#![cfg(all(feature = "logging", feature = "relay"))]
//! Configuration parsing through `envy::prefixed(..).from_iter(..)`: every variable, every
//! bad-value path, and the all-errors-at-once report.

use std::time::Duration;

use bus_config::{ClientSettings, Config, ConfigError, DebugSwitch, VARS};
use bus_core::Overflow;
use consumer_logging::{LogFormat, RateLimit};
use serde_json::json;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn errors_of(pairs: &[(&str, &str)]) -> Vec<bus_config::VarError> {
    match Config::from_iter(env(pairs)) {
        Err(ConfigError::Invalid { errors }) => errors,
        other => panic!("expected invalid configuration for {pairs:?}, got {other:?}"),
    }
}

#[test]
fn defaults_match_the_original_and_the_issue() {
    let c = Config::from_iter(env(&[])).unwrap();
    assert!(c.bus.enabled);
    assert!(!c.bus.debug);
    assert_eq!(c.bus.history_size, 100);
    assert!(c.bus.filters.is_empty());
    assert_eq!(c.bus.queue_capacity, 10_000);
    assert_eq!(c.bus.overflow, Overflow::DropNewest);
    assert!(!c.relay.enabled);
    assert!(
        c.render_env()
            .contains("CLAUDE_MPM_SOCKETIO_PORT=8765  # default\n")
    );
    assert_eq!(c.relay.config.url, "http://localhost:8765");
    assert!(!c.relay.debug);
    assert_eq!(c.relay.config.max_retries, 3);
    assert_eq!(c.relay.config.retry_delay, Duration::from_millis(500));
    assert_eq!(c.relay.config.connection_cooldown, Duration::from_secs(5));
    assert_eq!(c.relay.config.event_name, "claude_event");
    assert_eq!(c.relay.config.patterns, ["hook.*"]);
    assert_eq!(c.relay.config.buffer_capacity, 10_000);
    assert_eq!(c.http.addr.to_string(), "127.0.0.1:8770");
    assert_eq!(c.http.max_body_bytes, 16 * 1024 * 1024);
    assert!(c.http.token.is_none());
    assert!(c.logging.enabled);
    assert!(c.metrics.enabled);
    assert_eq!(c.logging.format, LogFormat::Text);
    assert_eq!(
        c.logging.consumer.rate_limit,
        Some("1000/s drop".parse::<RateLimit>().unwrap())
    );
    assert_eq!(c.daemon.test_slow_consumer, None);
    assert_eq!(c.daemon.shutdown_timeout, Duration::from_secs(10));
    assert!(c.explicit.is_empty());
    assert!(c.warnings.is_empty());
}

#[test]
fn every_variable_is_read() {
    let schemas =
        std::env::temp_dir().join(format!("bus-config-schemas-{}.json", std::process::id()));
    std::fs::write(&schemas, r#"{"hook.*": {"type": "object"}}"#).unwrap();
    let schemas_path = schemas.to_str().unwrap().to_owned();
    let c = Config::from_iter(env(&[
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "off"),
        ("CLAUDE_MPM_EVENTBUS_DEBUG", "YES"),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "500"),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_MAX_BYTES", "1_048_576"),
        ("CLAUDE_MPM_EVENTBUS_FILTERS", " hook.* ,, agent.? ,"),
        ("CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY", "64"),
        ("CLAUDE_MPM_EVENTBUS_OVERFLOW", "Drop-Oldest"),
        ("CLAUDE_MPM_EVENTBUS_FILTER_WHERE", "data.n > 1"),
        ("CLAUDE_MPM_EVENTBUS_SCHEMAS", &schemas_path),
        ("CLAUDE_MPM_EVENTBUS_SCHEMA_MODE", "Warn"),
        ("CLAUDE_MPM_RELAY_WHERE", "type == 'hook.a'"),
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "[::1]:9000"),
        ("CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES", "1_000_000"),
        ("CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES", "8_000_000"),
        ("CLAUDE_MPM_EVENTBUS_TOKEN", "s3cret"),
        ("CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT", "250ms"),
        ("CLAUDE_MPM_EVENTBUS_LOGGING", "0"),
        ("CLAUDE_MPM_EVENTBUS_LOG_FORMAT", "JSON"),
        ("CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT", "0"),
        ("CLAUDE_MPM_EVENTBUS_METRICS", "no"),
        ("CLAUDE_MPM_RELAY_ENABLED", "On"),
        ("CLAUDE_MPM_SOCKETIO_PORT", "9100"),
        ("CLAUDE_MPM_SOCKETIO_URL", "https://dash.example:8443/"),
        ("CLAUDE_MPM_RELAY_DEBUG", "1"),
        ("CLAUDE_MPM_RELAY_MAX_RETRIES", "7"),
        ("CLAUDE_MPM_RELAY_RETRY_DELAY", "2"),
        ("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN", "1m"),
        ("CLAUDE_MPM_RELAY_EVENT", "bus_event"),
        ("CLAUDE_MPM_RELAY_PATTERNS", "hook.*, session.*"),
        ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "42"),
        ("CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER", "0.01"),
        ("CLAUDE_MPM_EVENTBUS_STORE", "/var/lib/eventbus/log.db"),
        ("CLAUDE_MPM_EVENTBUS_STORE_SYNC", "Normal"),
        ("CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS", "5000"),
        ("CLAUDE_MPM_EVENTBUS_RETENTION_AGE", "12h"),
        (
            "CLAUDE_MPM_EVENTBUS_REDIS_URL",
            "rediss://bus:pw@redis.example:6380/2",
        ),
        ("CLAUDE_MPM_EVENTBUS_REDIS_STREAM", "team:events"),
        ("CLAUDE_MPM_EVENTBUS_REDIS_MEMBER", "host-a:8770"),
        ("CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER", "2m"),
        ("CLAUDE_MPM_RELAY_GROUP", "dashboards"),
        ("CLAUDE_MPM_EVENTBUS_SPOOL", "/var/tmp/me/spool.ndjson"),
        (
            "CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS",
            "HTTP://LocalHost:3000/, https://dash.example",
        ),
        (
            "CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS",
            "EventBus.Local, box:8770",
        ),
        ("CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT", "90s"),
        ("CLAUDE_MPM_EVENTBUS_HEADER_TIMEOUT", "5"),
        ("CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT", "1m"),
        ("CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS", "250"),
        (
            "CLAUDE_MPM_EVENTBUS_PRIORITIES",
            "hook.error*=high, hook.pre_tool=low",
        ),
        ("CLAUDE_MPM_RELAY_RATE_LIMIT", "200/s burst 20"),
        ("UNRELATED", "ignored"),
    ]))
    .unwrap();
    assert!(!c.bus.enabled);
    assert!(c.bus.debug);
    assert_eq!(c.bus.history_size, 500);
    assert_eq!(c.bus.filters, ["hook.*", "agent.?"]);
    assert_eq!(c.bus.queue_capacity, 64);
    assert_eq!(
        c.http.allowed_origins,
        ["http://localhost:3000", "https://dash.example"]
    );
    assert_eq!(c.http.allowed_hosts, ["eventbus.local", "box:8770"]);
    assert_eq!(c.http.idle_timeout, Duration::from_secs(90));
    assert_eq!(c.http.header_timeout, Duration::from_secs(5));
    assert_eq!(c.http.body_timeout, Duration::from_secs(60));
    assert_eq!(c.http.max_connections, 250);
    let bad = Config::from_iter(env(&[
        (
            "CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS",
            "http://x.example/path",
        ),
        ("CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT", "0"),
        ("CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS", "0"),
    ]))
    .unwrap_err()
    .to_string();
    for var in ["ALLOWED_ORIGINS", "IDLE_TIMEOUT", "MAX_CONNECTIONS"] {
        assert!(bad.contains(&format!("CLAUDE_MPM_EVENTBUS_{var}")), "{bad}");
    }
    assert_eq!(c.bus.overflow, Overflow::DropOldest);
    assert_eq!(c.bus.history_max_bytes, 1 << 20);
    assert_eq!(c.http.addr.to_string(), "[::1]:9000");
    assert_eq!(c.http.max_body_bytes, 1_000_000);
    assert_eq!(c.http.body_budget_bytes, 8_000_000);
    assert!(c.http.token.as_ref().unwrap().matches("s3cret"));
    assert_eq!(c.daemon.shutdown_timeout, Duration::from_millis(250));
    assert!(!c.logging.enabled);
    assert_eq!(c.logging.format, LogFormat::Json);
    assert_eq!(c.logging.consumer.rate_limit, None);
    assert!(!c.metrics.enabled);
    assert!(c.relay.enabled);
    assert!(c.render_env().contains("CLAUDE_MPM_SOCKETIO_PORT=9100\n"));
    assert_eq!(
        c.relay.config.url, "https://dash.example:8443/",
        "the URL overrides the port"
    );
    assert!(c.relay.debug);
    assert_eq!(c.relay.config.max_retries, 7);
    assert_eq!(c.relay.config.retry_delay, Duration::from_secs(2));
    assert_eq!(c.relay.config.connection_cooldown, Duration::from_secs(60));
    assert_eq!(c.relay.config.event_name, "bus_event");
    assert_eq!(c.relay.config.patterns, ["hook.*", "session.*"]);
    assert_eq!(c.relay.config.buffer_capacity, 42);
    assert_eq!(c.daemon.test_slow_consumer, Some(Duration::from_millis(10)));
    assert_eq!(
        c.store.location,
        bus_config::StoreLocation::File("/var/lib/eventbus/log.db".into())
    );
    assert_eq!(c.store.durability, bus_store::Durability::Normal);
    assert_eq!(c.store.retention.max_events, 5000);
    assert_eq!(c.store.retention.max_age, Duration::from_secs(12 * 3600));
    let redis = c.store.redis.as_ref().expect("the Redis URL is set");
    assert_eq!(redis.url.expose(), "rediss://bus:pw@redis.example:6380/2");
    assert_eq!(redis.stream, "team:events");
    assert_eq!(redis.member.as_deref(), Some("host-a:8770"));
    assert_eq!(redis.claim_after, Duration::from_secs(120));
    assert_eq!(c.relay.group.as_deref(), Some("dashboards"));
    assert_eq!(
        c.daemon.spool.as_deref(),
        Some(std::path::Path::new("/var/tmp/me/spool.ndjson"))
    );
    let relative = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_SPOOL", "spool.ndjson")]));
    let err = relative.unwrap_err().to_string();
    assert!(
        err.contains("CLAUDE_MPM_EVENTBUS_SPOOL") && err.contains("absolute file path"),
        "{err}"
    );
    let _ = std::fs::remove_file(&schemas);
    assert_eq!(c.rules.schema_mode, bus_schema::SchemaMode::Warn);
    assert_eq!(c.rules.schemas.as_ref().unwrap().1.patterns(), ["hook.*"]);
    assert!(c.rules.filter_where.is_some() && c.rules.relay_where.is_some());
    assert_eq!(
        c.explicit.len(),
        VARS.len(),
        "every variable in the table was read"
    );
}

#[test]
fn the_port_alone_sets_the_relay_url() {
    let c = Config::from_iter(env(&[("CLAUDE_MPM_SOCKETIO_PORT", "9001")])).unwrap();
    assert_eq!(c.relay.config.url, "http://localhost:9001");
}

#[test]
fn every_bad_value_names_the_variable_the_value_and_what_is_accepted() {
    let cases: &[(&str, &str, &str)] = &[
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "maybe", "yes/no"),
        ("CLAUDE_MPM_EVENTBUS_DEBUG", "", "true/false"),
        (
            "CLAUDE_MPM_EVENTBUS_HISTORY_SIZE",
            "-1",
            "whole number from 0 to 100000",
        ),
        (
            "CLAUDE_MPM_EVENTBUS_HISTORY_SIZE",
            "100001",
            "whole number from 0 to 100000",
        ),
        ("CLAUDE_MPM_EVENTBUS_FILTERS", "hook.*, ,ok", "__never__"),
        ("CLAUDE_MPM_EVENTBUS_QUEUE_CAPACITY", "0", "from 1 to"),
        (
            "CLAUDE_MPM_EVENTBUS_OVERFLOW",
            "spill",
            "drop_newest, drop_oldest or block",
        ),
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "localhost:8770", "IP:PORT"),
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1", "IP:PORT"),
        ("CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES", "1MB", "whole number"),
        (
            "CLAUDE_MPM_EVENTBUS_TOKEN",
            "has space",
            "without whitespace",
        ),
        ("CLAUDE_MPM_EVENTBUS_TOKEN", "", "non-empty"),
        (
            "CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT",
            "2h",
            "duration from 0 to 1h",
        ),
        ("CLAUDE_MPM_EVENTBUS_LOGGING", "enabled", "on/off"),
        ("CLAUDE_MPM_EVENTBUS_LOG_FORMAT", "yaml", "text or json"),
        ("CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT", "lots", "whole number"),
        ("CLAUDE_MPM_EVENTBUS_METRICS", "2", "1/0"),
        ("CLAUDE_MPM_RELAY_ENABLED", "y", "yes/no"),
        ("CLAUDE_MPM_SOCKETIO_PORT", "70000", "from 1 to 65535"),
        ("CLAUDE_MPM_SOCKETIO_PORT", "0", "from 1 to 65535"),
        ("CLAUDE_MPM_SOCKETIO_URL", "ftp://x", "http:// or https://"),
        (
            "CLAUDE_MPM_SOCKETIO_URL",
            "localhost:8765",
            "http:// or https://",
        ),
        ("CLAUDE_MPM_RELAY_DEBUG", "debug", "true/false"),
        (
            "CLAUDE_MPM_RELAY_MAX_RETRIES",
            "3.5",
            "whole number from 0 to 1000",
        ),
        (
            "CLAUDE_MPM_RELAY_RETRY_DELAY",
            "-0.5",
            "seconds such as 0.5",
        ),
        ("CLAUDE_MPM_RELAY_RETRY_DELAY", "soon", "500ms"),
        ("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN", "NaN", "duration"),
        (
            "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
            "0",
            "a duration longer than 0, up to 1h",
        ),
        (
            "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
            "0ms",
            "a duration longer than 0, up to 1h",
        ),
        (
            "CLAUDE_MPM_SOCKETIO_URL",
            "http:localhost:8765",
            "http:// or https://",
        ),
        ("CLAUDE_MPM_RELAY_EVENT", "  ", "non-empty"),
        ("CLAUDE_MPM_RELAY_PATTERNS", " , ", "at least one"),
        ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "0", "from 1 to 1000000"),
        (
            "CLAUDE_MPM_RELAY_RATE_LIMIT",
            "200",
            "`N/s`, `N/min` or `N/h`",
        ),
        (
            "CLAUDE_MPM_RELAY_RATE_LIMIT",
            "200/s burst",
            "`500/s burst 1000`",
        ),
        ("CLAUDE_MPM_RELAY_RATE_LIMIT", "fast", "0/off for no limit"),
        (
            "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT",
            "5/s delay",
            "never waits",
        ),
        (
            "CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT",
            "5/fortnight",
            "`N/min`",
        ),
        (
            "CLAUDE_MPM_EVENTBUS_PRIORITIES",
            "hook.*=urgent",
            "`pattern=priority` rules",
        ),
        (
            "CLAUDE_MPM_EVENTBUS_PRIORITIES",
            "hook.*",
            "`pattern=priority` rules",
        ),
        (
            "CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER",
            "1m",
            "duration from 0 to 10s",
        ),
    ];
    for (var, value, needle) in cases {
        if *needle == "__never__" {
            // Empty items are dropped from lists, so this one is valid.
            let c = Config::from_iter(env(&[(var, value)])).unwrap();
            assert_eq!(c.bus.filters, ["hook.*", "ok"]);
            continue;
        }
        let errors = errors_of(&[(var, value)]);
        assert_eq!(errors.len(), 1, "{var}={value:?}: {errors:?}");
        let e = &errors[0];
        assert_eq!(e.variable, *var);
        assert_eq!(e.value, *value);
        let text = e.to_string();
        assert!(text.starts_with(&format!("{var}=")), "{text}");
        assert!(text.contains(needle), "{var}={value:?}: {text}");
        if *var == "CLAUDE_MPM_EVENTBUS_TOKEN" {
            assert!(
                !text.contains(value) || value.is_empty(),
                "the token is never shown: {text}"
            );
        } else {
            assert!(text.contains(&format!("{value:?}")), "{text}");
        }
    }
}

#[test]
fn list_items_are_trimmed_of_any_whitespace() {
    // bus-core refuses empty patterns and patterns with surrounding whitespace; trimming and
    // dropping empties means a list from the environment can never hold one.
    let c = Config::from_iter(env(&[("CLAUDE_MPM_RELAY_PATTERNS", "\thook.*\t")])).unwrap();
    assert_eq!(c.relay.config.patterns, ["hook.*"]);
}

#[test]
fn all_bad_variables_are_reported_at_once() {
    let err = Config::from_iter(env(&[
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "maybe"),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "lots"),
        ("CLAUDE_MPM_SOCKETIO_PORT", "http"),
        ("CLAUDE_MPM_RELAY_RETRY_DELAY", "-1"),
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "nowhere"),
        ("CLAUDE_MPM_EVENTBUS_DEBUG", "true"),
    ]))
    .unwrap_err();
    let ConfigError::Invalid { errors } = &err else {
        panic!("{err}")
    };
    let names: Vec<&str> = errors.iter().map(|e| e.variable.as_str()).collect();
    // In the order of the variable table.
    assert_eq!(
        names,
        [
            "CLAUDE_MPM_EVENTBUS_ENABLED",
            "CLAUDE_MPM_EVENTBUS_HISTORY_SIZE",
            "CLAUDE_MPM_EVENTBUS_HTTP_ADDR",
            "CLAUDE_MPM_SOCKETIO_PORT",
            "CLAUDE_MPM_RELAY_RETRY_DELAY",
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("invalid configuration (5 bad variables):"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 6, "{text}");
}

#[test]
fn a_zero_cooldown_is_refused_up_front_with_the_other_bad_variables() {
    let err = Config::from_iter(env(&[
        ("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN", "0"),
        ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "0"),
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "perhaps"),
    ]))
    .unwrap_err();
    let ConfigError::Invalid { errors } = &err else {
        panic!("{err}")
    };
    let names: Vec<&str> = errors.iter().map(|e| e.variable.as_str()).collect();
    assert_eq!(
        names,
        [
            "CLAUDE_MPM_EVENTBUS_ENABLED",
            "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
            "CLAUDE_MPM_RELAY_BUFFER_SIZE",
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN=\"0\": expected a duration longer than 0, up to 1h"),
        "{text}"
    );
    // The relay's field names never reach the user.
    assert!(!text.contains("connection_cooldown"), "{text}");
    assert!(!text.contains("buffer_capacity"), "{text}");
}

/// Every relay value bus-config accepts, relay-socketio accepts too: around each boundary,
/// either reading refuses the value under its variable or the relay's own check passes.
#[cfg(feature = "relay")]
#[test]
fn bus_config_and_the_relay_agree_on_every_relay_value() {
    let cases: &[(&str, &[&str])] = &[
        (
            "CLAUDE_MPM_SOCKETIO_URL",
            &[
                "http://localhost:8765",
                "HTTP://localhost:8765",
                "Https://dash.example/socket",
                "http://",
                "http:localhost",
                "http:///x",
                "ws://localhost:8765",
                " http://127.0.0.1:1 ",
                "http://[::1]:8765",
            ],
        ),
        ("CLAUDE_MPM_SOCKETIO_PORT", &["0", "1", "65535", "65536"]),
        ("CLAUDE_MPM_RELAY_MAX_RETRIES", &["0", "1", "1000", "1001"]),
        (
            "CLAUDE_MPM_RELAY_RETRY_DELAY",
            &["0", "0ms", "1ms", "1h", "2h"],
        ),
        (
            "CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN",
            &["0", "0s", "0.000", "1ns", "1ms", "1h"],
        ),
        (
            "CLAUDE_MPM_RELAY_EVENT",
            &["", " ", "x", " claude_event ", "a\tb"],
        ),
        (
            "CLAUDE_MPM_RELAY_PATTERNS",
            &["", ",", "*", "hook.*", "a,,b", "a b", "**", "?"],
        ),
        (
            "CLAUDE_MPM_RELAY_BUFFER_SIZE",
            &["0", "1", "1000000", "1000001"],
        ),
    ];
    for (var, values) in cases {
        for value in *values {
            match Config::from_iter(env(&[(var, value)])) {
                Ok(config) => {
                    if let Err(e) = config.relay.config.validate() {
                        panic!("{var}={value:?} is accepted, but the relay refuses it: {e}");
                    }
                }
                Err(ConfigError::Invalid { errors }) => {
                    assert_eq!(errors.len(), 1, "{var}={value:?}: {errors:?}");
                    assert_eq!(errors[0].variable, *var);
                    assert_eq!(errors[0].value, *value);
                }
                Err(other) => panic!("{var}={value:?}: {other}"),
            }
        }
    }
}

#[test]
fn the_url_scheme_is_accepted_in_any_case_and_kept_in_lower_case() {
    let c = Config::from_iter(env(&[(
        "CLAUDE_MPM_SOCKETIO_URL",
        " HTTPS://Dash.Example:8443 ",
    )]))
    .unwrap();
    assert_eq!(c.relay.config.url, "https://Dash.Example:8443");
}

#[test]
fn unknown_variables_in_our_namespace_are_warned_about() {
    let c = Config::from_iter(env(&[
        ("CLAUDE_MPM_EVENTBUS_ENABLE", "false"),
        ("CLAUDE_MPM_OTHER_TOOL", "x"),
    ]))
    .unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].contains("did you mean CLAUDE_MPM_EVENTBUS_ENABLED?"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn the_token_is_masked_everywhere() {
    let c = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_TOKEN", "hunter2hunter2")])).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!c.render_env().contains("hunter2"));
    assert!(
        c.render_env()
            .contains("CLAUDE_MPM_EVENTBUS_TOKEN=**** (14 characters)\n")
    );
    assert!(!c.to_json().to_string().contains("hunter2"));
}

#[test]
fn render_env_marks_defaults() {
    let c = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "7")])).unwrap();
    let text = c.render_env();
    assert!(
        text.contains("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE=7\n"),
        "{text}"
    );
    assert!(
        text.contains("CLAUDE_MPM_EVENTBUS_ENABLED=true  # default\n"),
        "{text}"
    );
    assert_eq!(text.lines().count(), VARS.len());
}

#[test]
fn bus_settings_apply_whatever_else_is_enabled() {
    // The original applied these only with the relay on; here the relay stays off.
    let c = Config::from_iter(env(&[
        ("CLAUDE_MPM_EVENTBUS_FILTERS", "hook.*"),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "2"),
    ]))
    .unwrap();
    let bus = c.build_bus().unwrap();
    assert!(!bus.publish("session.start", json!({})));
    for i in 0..3 {
        assert!(bus.publish("hook.x", json!(i)));
    }
    assert_eq!(bus.recent_events(10).len(), 2);
    let c = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_ENABLED", "false")])).unwrap();
    assert!(!c.build_bus().unwrap().publish("hook.x", json!({})));
}

#[test]
fn a_config_applies_to_a_running_bus() {
    let bus = bus_core::EventBus::new();
    let debug = DebugSwitch::default();
    let c = Config::from_iter(env(&[
        ("CLAUDE_MPM_EVENTBUS_FILTERS", "keep.*"),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "3"),
        ("CLAUDE_MPM_EVENTBUS_DEBUG", "on"),
    ]))
    .unwrap();
    let now = c.apply_to(&bus, &debug).unwrap();
    assert_eq!(now.filters, ["keep.*"]);
    assert_eq!(now.history_size, 3);
    assert!(now.debug && debug.is_on());
    assert!(!bus.publish("drop.me", json!({})));
    assert!(bus.publish("keep.me", json!({})));
    let off = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_ENABLED", "0")])).unwrap();
    off.apply_to(&bus, &debug).unwrap();
    assert!(!bus.is_enabled());
    assert!(
        bus.filters().is_empty(),
        "the other config's empty filters replace the list"
    );
}

#[test]
fn runtime_settings_are_all_or_nothing() {
    let bus = bus_core::EventBus::new();
    let debug = DebugSwitch::default();
    let bad: bus_config::RuntimeSettings = serde_json::from_value(
        json!({"filters": ["ok.*", ""], "history_size": 5, "enabled": false}),
    )
    .unwrap();
    let problems = bad.apply(&bus, &debug).unwrap_err();
    assert!(problems[0].starts_with("filters[1]:"), "{problems:?}");
    assert!(bus.is_enabled(), "nothing applied");
    assert_eq!(bus.stats().history_capacity, 100);
    let unknown = serde_json::from_value::<bus_config::RuntimeSettings>(json!({"histroy_size": 5}));
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("unknown field `histroy_size`")
    );
}

#[test]
fn client_settings_read_only_their_two_variables() {
    let s = ClientSettings::from_iter(env(&[
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:9999"),
        ("CLAUDE_MPM_EVENTBUS_TOKEN", "t"),
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "garbage"),
    ]))
    .unwrap();
    assert_eq!(s.addr.to_string(), "127.0.0.1:9999");
    assert!(s.token.unwrap().matches("t"));
    let err =
        ClientSettings::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "x")])).unwrap_err();
    assert!(
        err.to_string()
            .contains("CLAUDE_MPM_EVENTBUS_HTTP_ADDR=\"x\""),
        "{err}"
    );
}

#[test]
fn the_redis_url_is_checked_and_its_password_never_shown() {
    let c = Config::from_iter(env(&[(
        "CLAUDE_MPM_EVENTBUS_REDIS_URL",
        "redis://:hunter2@10.0.0.5:6379/0",
    )]))
    .unwrap();
    let redis = c.store.redis.as_ref().unwrap();
    assert_eq!(redis.stream, bus_config::DEFAULT_REDIS_STREAM);
    assert_eq!(redis.url.expose(), "redis://:hunter2@10.0.0.5:6379/0");
    for shown in [
        c.render_env(),
        c.to_json().to_string(),
        format!("{:?}", c.store),
        redis.url.to_string(),
    ] {
        assert!(!shown.contains("hunter2"), "{shown}");
    }
    assert!(
        c.render_env().contains("redis://:****@10.0.0.5:6379/0"),
        "{}",
        c.render_env()
    );
    assert_eq!(
        Config::from_iter(env(&[])).unwrap().store.redis,
        None,
        "unset: the local store"
    );
    for (bad, expected) in [
        ("http://host:6379", "redis://"),
        ("redis://", "redis://"),
        ("redis://host/db0", "database number"),
    ] {
        let err = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_REDIS_URL", bad)]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CLAUDE_MPM_EVENTBUS_REDIS_URL") && err.contains(expected),
            "{bad}: {err}"
        );
    }
    let err = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_REDIS_STREAM", "a b")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("CLAUDE_MPM_EVENTBUS_REDIS_STREAM"), "{err}");
}
