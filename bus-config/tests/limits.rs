#![cfg(all(feature = "logging", feature = "relay"))]
//! Priorities and rate limits from the environment, and through the runtime settings.

use std::sync::{Arc, Mutex};

use bus_config::{Config, DebugSwitch, RuntimeSettings};
use bus_core::{Attached, EventBus, Priority, RateLimit, RatePolicy};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn priorities_and_rate_limits_are_read_in_their_forms() {
    let c = Config::from_iter(env(&[
        (
            "CLAUDE_MPM_EVENTBUS_PRIORITIES",
            "hook.error*=high,hook.subagent_stop=high,hook.pre_tool=low",
        ),
        ("CLAUDE_MPM_RELAY_RATE_LIMIT", "30000/min"),
        ("CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT", "500/s burst 1000"),
    ]))
    .unwrap();
    let rules = c.limits.priorities.clone().unwrap();
    assert_eq!(rules.priority_of_type("hook.error.bash"), Priority::High);
    assert_eq!(rules.priority_of_type("hook.pre_tool"), Priority::Low);
    let relay = c.limits.relay_rate_limit.unwrap();
    assert_eq!((relay.events_per_second(), relay.burst.get()), (500.0, 500));
    assert_eq!(relay.policy, RatePolicy::Delay);
    let log = c.logging.consumer.rate_limit.unwrap();
    assert_eq!((log.events_per_second(), log.burst.get()), (500.0, 1000));
    assert_eq!(c.relay.config.rate_limit, Some(relay));
    assert_eq!(c.relay.config.priorities, Some(rules));
    // A bare number keeps its old meaning: lines per type and second.
    let c = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT", "7")])).unwrap();
    assert_eq!(
        c.logging.consumer.rate_limit.unwrap().to_string(),
        "7/s burst 7 drop"
    );
    let c = Config::from_iter(env(&[("CLAUDE_MPM_RELAY_RATE_LIMIT", "off")])).unwrap();
    assert_eq!(c.limits.relay_rate_limit, None);
    let shown = c.render_env();
    assert!(shown.contains("CLAUDE_MPM_EVENTBUS_PRIORITIES="), "{shown}");
}

#[test]
fn the_bus_built_from_the_config_orders_by_the_priorities() {
    let c = Config::from_iter(env(&[("CLAUDE_MPM_EVENTBUS_PRIORITIES", "x=high")])).unwrap();
    let bus = c.build_bus().unwrap();
    bus.on_async("*", |_e: bus_core::Event| async {}).unwrap();
    assert_eq!(
        bus.stats().subscribers[0].priorities.as_deref(),
        Some("x=high")
    );
}

/// A consumer with a changeable limit, as the relay and the logging consumer are.
struct Limited(Mutex<Option<RateLimit>>);

impl Attached for Limited {
    fn describe(&self) -> String {
        "limited".into()
    }
    fn rate_limit_key(&self) -> Option<&'static str> {
        Some(bus_config::RELAY_RATE_KEY)
    }
    fn rate_limit(&self) -> Option<RateLimit> {
        *self.0.lock().unwrap()
    }
    fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<(), String> {
        *self.0.lock().unwrap() = limit;
        Ok(())
    }
}

#[test]
fn runtime_settings_change_a_consumers_limit_or_change_nothing() {
    let bus = EventBus::new();
    let debug = DebugSwitch::default();
    let relay = Arc::new(Limited(Mutex::new(None)));
    let consumers: Vec<Arc<dyn Attached>> = vec![relay.clone()];
    let patch: RuntimeSettings =
        serde_json::from_str(r#"{"relay_rate_limit": "200/s", "history_size": 7}"#).unwrap();
    let now = patch
        .apply_with_consumers(&bus, &debug, &consumers)
        .unwrap();
    assert_eq!(
        now.relay_rate_limit.as_deref(),
        Some("200/s burst 200 delay")
    );
    assert_eq!(now.history_size, 7);
    // A bad form, or a consumer that is not running: nothing changes, the field is named.
    let bad: RuntimeSettings =
        serde_json::from_str(r#"{"relay_rate_limit": "lots", "history_size": 9}"#).unwrap();
    let e = bad
        .apply_with_consumers(&bus, &debug, &consumers)
        .unwrap_err();
    assert!(
        e[0].starts_with("relay_rate_limit:") && e[0].contains("`N/s`"),
        "{e:?}"
    );
    let missing: RuntimeSettings =
        serde_json::from_str(r#"{"log_rate_limit": "5/s", "history_size": 9}"#).unwrap();
    let e = missing
        .apply_with_consumers(&bus, &debug, &consumers)
        .unwrap_err();
    assert!(e[0].contains("logging consumer is not running"), "{e:?}");
    assert_eq!(bus.stats().history_capacity, 7);
    let off: RuntimeSettings = serde_json::from_str(r#"{"relay_rate_limit": "off"}"#).unwrap();
    let now = off.apply_with_consumers(&bus, &debug, &consumers).unwrap();
    assert_eq!(now.relay_rate_limit, None);
    assert_eq!(relay.rate_limit(), None);
}
