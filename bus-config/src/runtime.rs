//! Settings that can be changed on a running bus: `PATCH /config` and [`Config::apply_to`].
//!
//! [`Config::apply_to`]: crate::Config::apply_to

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bus_core::{EventBus, Pattern};
use serde::{Deserialize, Serialize};

/// Largest history the daemon allows. The cost is the events retained, not the slots: every
/// held event keeps its whole payload alive, and bus-core's per-thread rings together hold up
/// to about three times `CLAUDE_MPM_EVENTBUS_HISTORY_SIZE` events (briefly, between
/// prunings), so memory grows with history size times payload size.
pub const MAX_HISTORY_SIZE: u64 = 100_000;

/// Most filter (or relay) patterns a list may hold: every published event is matched
/// against each, so 100,000 of them made a 10,000-event batch take seconds.
pub const MAX_PATTERNS: usize = 1000;

/// A shared on/off switch for debug output, read on every accepted event.
#[derive(Clone, Debug, Default)]
pub struct DebugSwitch(Arc<AtomicBool>);

impl DebugSwitch {
    /// A switch in the given position.
    pub fn new(on: bool) -> Self {
        DebugSwitch(Arc::new(AtomicBool::new(on)))
    }

    /// Whether debug output is on.
    pub fn is_on(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Turns debug output on or off.
    pub fn set(&self, on: bool) {
        self.0.store(on, Ordering::Relaxed);
    }
}

/// Bus settings to apply to a running bus; `None` leaves a setting as it is.
///
/// This is the body of `PATCH /config`, e.g. `{"filters": ["hook.*"], "history_size": 500}`.
/// Unknown fields are refused so that a typo is not silently ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Turns the bus on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Turns debug output on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Resizes the history, keeping the newest events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_size: Option<usize>,
    /// Replaces the filter allow-list (`[]` allows everything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<String>>,
    /// The relay's rate limit, as `CLAUDE_MPM_RELAY_RATE_LIMIT` takes it (`"off"`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_rate_limit: Option<String>,
    /// The logging consumer's, as `CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT` takes it (`0`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_rate_limit: Option<String>,
    /// Replaces the allow-list's CEL condition (`""` removes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_where: Option<String>,
    /// `true` reads the schema file (`CLAUDE_MPM_EVENTBUS_SCHEMAS`) again; a bad file keeps
    /// the schemas in force, and the answer says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_schemas: Option<bool>,
}

/// The settings of a running bus, as `PATCH /config` reports them after applying a change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentSettings {
    /// Whether the bus accepts events.
    pub enabled: bool,
    /// Whether debug output is on.
    pub debug: bool,
    /// The history capacity.
    pub history_size: usize,
    /// The filter allow-list.
    pub filters: Vec<String>,
    /// The relay's rate limit in its full form (`None`: unlimited or no relay).
    #[serde(default)]
    pub relay_rate_limit: Option<String>,
    /// The logging consumer's per-type rate limit (`None`: unlimited or no logging).
    #[serde(default)]
    pub log_rate_limit: Option<String>,
    /// The allow-list's CEL condition, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_where: Option<String>,
    /// The patterns of the schema file in force, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_patterns: Option<Vec<String>>,
}

impl RuntimeSettings {
    /// Checks every field; returns one message per problem, each naming its field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Some(n) = self.history_size {
            if n as u64 > MAX_HISTORY_SIZE {
                problems.push(format!(
                    "history_size: {n} is too large; expected a whole number from 0 to {MAX_HISTORY_SIZE}"
                ));
            }
        }
        if let Some(filters) = &self.filters {
            if filters.len() > MAX_PATTERNS {
                problems.push(format!(
                    "filters: {} patterns; at most {MAX_PATTERNS} are accepted (use wildcards such as hook.*)",
                    filters.len()
                ));
            }
            for (i, f) in filters.iter().enumerate() {
                if let Err(e) = Pattern::new(f) {
                    problems.push(format!("filters[{i}]: {e}"));
                }
            }
        }
        problems.extend(crate::runtime_limits::problems(self));
        if let Some(source) = &self.filter_where
            && !source.trim().is_empty()
            && let Err(expected) = crate::config::compile_condition(source, "filter_where")
        {
            problems.push(format!("filter_where: expected {expected}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Like [`apply`](Self::apply), with the content rules: `filter_where` through them
    /// (so `GET /stats` shows its figures) and `reload_schemas`. The reload comes first: when
    /// it fails nothing at all is changed.
    pub fn apply_with_rules(
        &self,
        bus: &EventBus,
        debug: &DebugSwitch,
        rules: Option<&crate::rules::Rules>,
    ) -> Result<CurrentSettings, Vec<String>> {
        self.apply_with(bus, debug, rules, &[])
    }

    /// Applies everything: the content rules (see [`apply_with_rules`](Self::apply_with_rules))
    /// and the consumers' rate limits (see [`apply_with_consumers`](Self::apply_with_consumers)).
    /// Every field is checked before any is applied.
    pub fn apply_with(
        &self,
        bus: &EventBus,
        debug: &DebugSwitch,
        rules: Option<&crate::rules::Rules>,
        consumers: &[Arc<dyn bus_core::Attached>],
    ) -> Result<CurrentSettings, Vec<String>> {
        self.validate()?;
        crate::runtime_limits::check_consumers(self, consumers)?;
        if self.reload_schemas == Some(true) {
            let Some(rules) = rules else {
                return Err(vec!["reload_schemas: this bus has no content rules".into()]);
            };
            rules
                .reload(bus)
                .map_err(|e| vec![format!("reload_schemas: {e}")])?;
        }
        if let Some(source) = &self.filter_where {
            let condition = if source.trim().is_empty() {
                None
            } else {
                let compiled = crate::config::compile_condition(source, "filter_where")
                    .map_err(|e| vec![format!("filter_where: expected {e}")])?;
                Some(Arc::new(compiled))
            };
            match rules {
                Some(rules) => rules.set_filter_where(bus, condition),
                None => bus.set_filter_where(condition.map(|c| c as Arc<dyn bus_core::Condition>)),
            }
        }
        let plain = RuntimeSettings {
            filter_where: None,
            reload_schemas: None,
            ..self.clone()
        };
        let mut now = plain.apply_with_consumers(bus, debug, consumers)?;
        now.schema_patterns = rules
            .and_then(|r| r.validator())
            .map(|v| v.set().patterns().into_iter().map(str::to_owned).collect());
        Ok(now)
    }

    /// Validates, then applies every set field; on any problem nothing is changed. A rate
    /// limit needs its consumer: see [`apply_with_consumers`](Self::apply_with_consumers).
    pub fn apply(
        &self,
        bus: &EventBus,
        debug: &DebugSwitch,
    ) -> Result<CurrentSettings, Vec<String>> {
        self.apply_with_consumers(bus, debug, &[])
    }

    /// [`apply`](Self::apply), with the consumers whose rate limits it may change.
    pub fn apply_with_consumers(
        &self,
        bus: &EventBus,
        debug: &DebugSwitch,
        consumers: &[Arc<dyn bus_core::Attached>],
    ) -> Result<CurrentSettings, Vec<String>> {
        self.validate()?;
        if self.reload_schemas.is_some() || self.filter_where.is_some() {
            return self.apply_with(bus, debug, None, consumers);
        }
        crate::runtime_limits::check_consumers(self, consumers)?;
        if let Some(filters) = &self.filters {
            // Validated above, so this replaces the list in one step.
            bus.set_filters(filters)
                .map_err(|e| vec![format!("filters: {e}")])?;
        }
        if let Some(n) = self.history_size {
            bus.set_history_size(n);
        }
        if let Some(on) = self.debug {
            debug.set(on);
        }
        if let Some(on) = self.enabled {
            bus.set_enabled(on);
        }
        crate::runtime_limits::apply(self, consumers)?;
        Ok(crate::runtime_limits::current_with_consumers(
            bus, debug, consumers,
        ))
    }
}

/// The settings a running bus has now.
pub fn current(bus: &EventBus, debug: &DebugSwitch) -> CurrentSettings {
    CurrentSettings {
        enabled: bus.is_enabled(),
        debug: debug.is_on(),
        history_size: bus.stats().history_capacity,
        filters: bus.filters(),
        relay_rate_limit: None,
        log_rate_limit: None,
        filter_where: bus.filter_where(),
        schema_patterns: None,
    }
}
