//! Content rules: `CLAUDE_MPM_EVENTBUS_SCHEMAS`, `_SCHEMA_MODE`, `_FILTER_WHERE` and
//! `CLAUDE_MPM_RELAY_WHERE`. The schema file is loaded and every condition compiled while the
//! configuration is read, so a bad one stops startup with the variable, file and position.

use std::path::PathBuf;
use std::sync::Arc;

use bus_cel::{CelCondition, CelError};
use bus_schema::{SchemaMode, SchemaSet};
use serde_json::Value;

use super::reader::Reader;

/// The content rules as read: the schema file (loaded) and the compiled conditions.
#[derive(Clone, Debug, Default)]
pub struct RulesSettings {
    /// `CLAUDE_MPM_EVENTBUS_SCHEMAS`: the file and its schemas, loaded.
    pub schemas: Option<(PathBuf, Arc<SchemaSet>)>,
    /// `CLAUDE_MPM_EVENTBUS_SCHEMA_MODE`.
    pub schema_mode: SchemaMode,
    /// `CLAUDE_MPM_EVENTBUS_FILTER_WHERE`, compiled.
    pub filter_where: Option<Arc<CelCondition>>,
    /// `CLAUDE_MPM_RELAY_WHERE`, compiled.
    pub relay_where: Option<Arc<CelCondition>>,
}

impl RulesSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        RulesSettings {
            schemas: r.value(
                "CLAUDE_MPM_EVENTBUS_SCHEMAS",
                None,
                |s| {
                    let path = PathBuf::from(s.trim());
                    if s.trim().is_empty() {
                        return Ok(None);
                    }
                    SchemaSet::load(&path)
                        .map(|set| Some((path, Arc::new(set))))
                        .map_err(|e| format!("a usable schema file; {e}"))
                },
                |v| {
                    v.as_ref()
                        .map_or(Value::Null, |(p, _)| Value::from(p.display().to_string()))
                },
            ),
            schema_mode: r.value(
                "CLAUDE_MPM_EVENTBUS_SCHEMA_MODE",
                SchemaMode::Reject,
                |s| s.parse::<SchemaMode>().map_err(|_| "reject or warn".into()),
                |m| Value::from(m.as_str()),
            ),
            filter_where: condition(r, "CLAUDE_MPM_EVENTBUS_FILTER_WHERE"),
            relay_where: condition(r, "CLAUDE_MPM_RELAY_WHERE"),
        }
    }
}

fn condition(r: &mut Reader, var: &'static str) -> Option<Arc<CelCondition>> {
    r.value(
        var,
        None,
        |s| {
            if s.trim().is_empty() {
                return Ok(None);
            }
            compile(s, var).map(|c| Some(Arc::new(c)))
        },
        |c| {
            c.as_ref().map_or(Value::Null, |c| {
                Value::from(bus_core::Condition::source(&**c))
            })
        },
    )
}

/// Compiles `source`, with the problem phrased as what was expected (for [`VarError`]).
///
/// [`VarError`]: crate::VarError
pub(crate) fn compile(source: &str, what: &str) -> Result<CelCondition, String> {
    CelCondition::compile(source, what).map_err(|e| match e {
        CelError::Syntax {
            line,
            column,
            message,
            ..
        } => format!(
            "a CEL condition over type, id, timestamp and data; line {line}, column {column}: {message}"
        ),
        CelError::UnknownVariable { name, .. } => format!(
            "a CEL condition over type, id, timestamp and data; {name:?} is none of them (a payload field is data.{name})"
        ),
    })
}
