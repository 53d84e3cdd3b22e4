//! The content rules on a running bus: the schema validator (reloadable from its file), the
//! allow-list's condition and the relay's, and the figures they add to `GET /stats`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use bus_cel::CelCondition;
use bus_core::{Attached, Condition, EventBus};
use bus_schema::{InvalidCounts, SchemaMode, SchemaSet, SchemaValidator};
use serde_json::{Value, json};

use crate::config::RulesSettings;

/// The content rules installed on one bus. Shared by the daemon's `PATCH /config` and SIGHUP
/// (which reload the schema file) and `GET /stats`.
#[derive(Debug)]
pub struct Rules {
    file: Option<PathBuf>,
    mode: SchemaMode,
    counts: Arc<InvalidCounts>,
    current: Mutex<Option<Arc<SchemaValidator>>>,
    relay_where: Option<Arc<CelCondition>>,
    filter_where: Mutex<Option<Arc<CelCondition>>>,
}

impl Rules {
    /// The rules `settings` describe, not yet installed.
    pub fn new(settings: &RulesSettings) -> Arc<Rules> {
        let counts = Arc::new(InvalidCounts::default());
        let current = settings.schemas.as_ref().map(|(_, set)| {
            Arc::new(SchemaValidator::with_counts(
                set.clone(),
                settings.schema_mode,
                counts.clone(),
            ))
        });
        Arc::new(Rules {
            file: settings.schemas.as_ref().map(|(path, _)| path.clone()),
            mode: settings.schema_mode,
            counts,
            current: Mutex::new(current),
            relay_where: settings.relay_where.clone(),
            filter_where: Mutex::new(settings.filter_where.clone()),
        })
    }

    /// Installs the validator and the allow-list's condition on `bus`.
    pub fn install(&self, bus: &EventBus) {
        let validator = self.validator().map(|v| v as Arc<dyn bus_core::Validator>);
        bus.set_validator(validator);
        let condition = self.filter_where().map(|c| c as Arc<dyn Condition>);
        bus.set_filter_where(condition);
    }

    /// The schema validator in force, if schemas are configured.
    pub fn validator(&self) -> Option<Arc<SchemaValidator>> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The allow-list's condition in force.
    pub fn filter_where(&self) -> Option<Arc<CelCondition>> {
        self.filter_where
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the allow-list's condition on `bus` (`None` removes it).
    pub fn set_filter_where(&self, bus: &EventBus, condition: Option<Arc<CelCondition>>) {
        *self
            .filter_where
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = condition.clone();
        bus.set_filter_where(condition.map(|c| c as Arc<dyn Condition>));
    }

    /// The relay's condition (`CLAUDE_MPM_RELAY_WHERE`).
    pub fn relay_where(&self) -> Option<Arc<CelCondition>> {
        self.relay_where.clone()
    }

    /// Reads the schema file again and installs it on `bus`; on any problem the schemas in
    /// force stay and the error says why (naming the file, the pattern and the problem).
    pub fn reload(&self, bus: &EventBus) -> Result<Value, String> {
        let Some(file) = &self.file else {
            return Err(
                "no schema file to reload: start the daemon with CLAUDE_MPM_EVENTBUS_SCHEMAS=FILE"
                    .into(),
            );
        };
        let set = SchemaSet::load(file)
            .map_err(|e| format!("the schemas in force stay unchanged: {e}"))?;
        let validator = Arc::new(SchemaValidator::with_counts(
            Arc::new(set),
            self.mode,
            self.counts.clone(),
        ));
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(validator.clone());
        bus.set_validator(Some(validator));
        Ok(self.schemas_json())
    }

    /// Invalid events so far (every mode), in total and per type.
    pub fn invalid(&self) -> bus_schema::InvalidSummary {
        self.counts.summary()
    }

    fn schemas_json(&self) -> Value {
        match self.validator() {
            None => Value::Null,
            Some(v) => json!({
                "file": v.set().file().display().to_string(),
                "mode": v.mode().as_str(),
                "patterns": v.set().patterns(),
            }),
        }
    }
}

fn condition_json(c: Option<&Arc<CelCondition>>) -> Value {
    match c {
        None => Value::Null,
        Some(c) => json!({
            "expression": c.source(),
            "errors": c.errors(),
            "last_error": c.last_error(),
        }),
    }
}

/// What [`Rules`] shows the daemon: `"rules"` in `GET /stats`.
#[derive(Debug)]
pub struct RulesAttached(pub Arc<Rules>);

impl Attached for RulesAttached {
    fn describe(&self) -> String {
        match (&self.0.file, self.0.mode) {
            (Some(file), mode) => {
                format!("schema validation ({}, {})", file.display(), mode.as_str())
            }
            (None, _) => "content rules".to_owned(),
        }
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        let rules = &self.0;
        let invalid = rules.invalid();
        Some((
            "rules",
            json!({
                "schemas": rules.schemas_json(),
                "events_invalid": invalid.total,
                "events_invalid_by_type": invalid.by_type,
                "filter_where": condition_json(rules.filter_where().as_ref()),
                "relay_where": condition_json(rules.relay_where.as_ref()),
            }),
        ))
    }
}

/// The metrics consumer with the invalid-event counters added to its `GET /metrics` text:
/// consumer-metrics renders the bus's own stats, and these live in the rules.
pub(crate) struct WithRuleMetrics {
    pub(crate) inner: Arc<dyn Attached>,
    pub(crate) rules: Arc<Rules>,
}

impl Attached for WithRuleMetrics {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        self.inner.stats()
    }

    fn durable(&self) -> Option<Arc<dyn bus_core::DurableSubscriber>> {
        self.inner.durable()
    }

    fn endpoints(&self) -> Vec<bus_core::Endpoint> {
        self.inner
            .endpoints()
            .into_iter()
            .map(|mut endpoint| {
                if endpoint.path == "/metrics" {
                    let render = endpoint.render.clone();
                    let rules = self.rules.clone();
                    endpoint.render = Arc::new(move || {
                        let mut text = render();
                        text.push_str(&invalid_metrics(&rules.invalid()));
                        text
                    });
                }
                endpoint
            })
            .collect()
    }
}

/// The invalid-event counters in the Prometheus text format.
fn invalid_metrics(invalid: &bus_schema::InvalidSummary) -> String {
    let mut out = String::from(
        "# HELP eventbus_events_invalid_total Events that broke their schema (CLAUDE_MPM_EVENTBUS_SCHEMAS), refused or (in warn mode) accepted.\n\
         # TYPE eventbus_events_invalid_total counter\n",
    );
    out.push_str(&format!(
        "eventbus_events_invalid_total {}\n",
        invalid.total
    ));
    out.push_str(
        "# HELP eventbus_events_invalid_by_type_total Invalid events per event type.\n\
         # TYPE eventbus_events_invalid_by_type_total counter\n",
    );
    for (event_type, n) in &invalid.by_type {
        let label = event_type
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        out.push_str(&format!(
            "eventbus_events_invalid_by_type_total{{event_type=\"{label}\"}} {n}\n"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_metrics_escape_their_labels() {
        let mut by_type = std::collections::BTreeMap::new();
        by_type.insert("a\"b\\c".to_owned(), 2);
        let text = invalid_metrics(&bus_schema::InvalidSummary { total: 2, by_type });
        assert!(text.contains("eventbus_events_invalid_total 2\n"), "{text}");
        assert!(
            text.contains(r#"eventbus_events_invalid_by_type_total{event_type="a\"b\\c"} 2"#),
            "{text}"
        );
    }
}
