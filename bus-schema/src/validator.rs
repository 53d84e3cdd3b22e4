//! The [`Validator`] the bus calls: a [`SchemaSet`], a mode and the counters.

use std::sync::Arc;

use bus_core::{Invalid, Validator};
use serde_json::Value;

use crate::{InvalidCounts, SchemaSet};

/// What happens to an event that breaks its schema.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SchemaMode {
    /// Refused, with every broken rule (the default once schemas are set).
    #[default]
    Reject,
    /// Accepted, but counted and logged.
    Warn,
}

impl SchemaMode {
    /// `reject` or `warn`.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaMode::Reject => "reject",
            SchemaMode::Warn => "warn",
        }
    }
}

impl std::str::FromStr for SchemaMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "reject" => Ok(SchemaMode::Reject),
            "warn" => Ok(SchemaMode::Warn),
            _ => Err(format!("{s:?}: expected reject or warn")),
        }
    }
}

/// A [`SchemaSet`] as bus-core's pre-dispatch check. Every invalid event is counted (in
/// either mode) in the shared [`InvalidCounts`], which a reload keeps.
#[derive(Debug)]
pub struct SchemaValidator {
    set: Arc<SchemaSet>,
    mode: SchemaMode,
    counts: Arc<InvalidCounts>,
}

impl SchemaValidator {
    /// A validator with counters of its own.
    pub fn new(set: impl Into<Arc<SchemaSet>>, mode: SchemaMode) -> Self {
        Self::with_counts(set.into(), mode, Arc::default())
    }

    /// A validator counting into `counts` (a reloaded file keeps counting where the old one
    /// left off).
    pub fn with_counts(set: Arc<SchemaSet>, mode: SchemaMode, counts: Arc<InvalidCounts>) -> Self {
        SchemaValidator { set, mode, counts }
    }

    /// The schemas.
    pub fn set(&self) -> &SchemaSet {
        &self.set
    }

    /// The mode.
    pub fn mode(&self) -> SchemaMode {
        self.mode
    }

    /// The invalid-event counters.
    pub fn counts(&self) -> crate::InvalidSummary {
        self.counts.summary()
    }

    /// The shared counters themselves.
    pub fn shared_counts(&self) -> &Arc<InvalidCounts> {
        &self.counts
    }
}

impl Validator for SchemaValidator {
    fn validate(&self, event_type: &str, data: &Value) -> Result<(), Invalid> {
        let violations = self.set.check(event_type, data);
        if violations.is_empty() {
            return Ok(());
        }
        self.counts.record(event_type);
        let invalid = Invalid {
            event_type: event_type.to_owned(),
            violations,
        };
        match self.mode {
            SchemaMode::Reject => Err(invalid),
            SchemaMode::Warn => {
                tracing::warn!(event_type, problem = %invalid, "invalid event accepted (CLAUDE_MPM_EVENTBUS_SCHEMA_MODE=warn)");
                Ok(())
            }
        }
    }
}
