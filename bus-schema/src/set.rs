//! A loaded schema file: event-type patterns, each with its compiled schema.

use std::path::{Path, PathBuf};

use bus_core::{Pattern, Violation};
use serde_json::Value;

use crate::SchemaError;
use crate::retrieve::LocalOnly;

/// The schemas of one file, compiled; cheap to check against, immutable once loaded.
pub struct SchemaSet {
    file: PathBuf,
    entries: Vec<Entry>,
}

struct Entry {
    pattern: Pattern,
    schema: jsonschema::Validator,
}

impl std::fmt::Debug for SchemaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaSet")
            .field("file", &self.file)
            .field("patterns", &self.patterns())
            .finish()
    }
}

impl SchemaSet {
    /// Reads and compiles the schema file at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<SchemaSet, SchemaError> {
        let file = file.as_ref();
        let map = read_json(file)?;
        SchemaSet::from_value(&map, file)
    }

    /// Compiles a schema file's content; `file` names it in errors and anchors relative
    /// `$ref`s (a relative `file` is taken from the current directory).
    pub fn from_value(map: &Value, file: &Path) -> Result<SchemaSet, SchemaError> {
        let file = std::path::absolute(file).map_err(|source| SchemaError::Read {
            file: file.to_owned(),
            source,
        })?;
        let Value::Object(map) = map else {
            return Err(SchemaError::NotAnObject {
                file,
                found: kind(map),
            });
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, value) in map {
            let pattern = Pattern::new(key).map_err(|e| SchemaError::BadPattern {
                file: file.clone(),
                pattern: key.clone(),
                reason: bad_pattern_reason(&e),
            })?;
            let schema = compile(&file, key, value)?;
            entries.push(Entry { pattern, schema });
        }
        Ok(SchemaSet { file, entries })
    }

    /// The file the set was loaded from (absolute).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The patterns, in the file's order.
    pub fn patterns(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.pattern.as_str()).collect()
    }

    /// Every rule `data` breaks in the schemas whose pattern matches `event_type`; empty
    /// when it is valid (or no pattern matches).
    pub fn check(&self, event_type: &str, data: &Value) -> Vec<Violation> {
        let mut violations = Vec::new();
        for entry in &self.entries {
            if !entry.pattern.matches(event_type) || entry.schema.is_valid(data) {
                continue;
            }
            violations.extend(entry.schema.iter_errors(data).map(|e| Violation {
                pointer: e.instance_path().as_str().to_owned(),
                message: e.to_string(),
            }));
        }
        violations
    }
}

fn read_json(file: &Path) -> Result<Value, SchemaError> {
    let body = std::fs::read(file).map_err(|source| SchemaError::Read {
        file: file.to_owned(),
        source,
    })?;
    serde_json::from_slice(&body).map_err(|source| SchemaError::NotJson {
        file: file.to_owned(),
        source,
    })
}

/// A value that is only `{"$ref": "path"}` with a path that is neither a fragment nor a
/// URL: a schema kept in a file of its own.
fn file_ref(value: &Value) -> Option<&str> {
    let object = value.as_object()?;
    let target = object.get("$ref")?.as_str()?;
    (object.len() == 1 && !target.starts_with('#') && !target.contains("://")).then_some(target)
}

fn compile(
    file: &Path,
    pattern: &str,
    value: &Value,
) -> Result<jsonschema::Validator, SchemaError> {
    let bad = |reason: String| SchemaError::BadSchema {
        file: file.to_owned(),
        pattern: pattern.to_owned(),
        reason,
    };
    let (schema, base) = match file_ref(value) {
        Some(target) => {
            let dir = file.parent().unwrap_or(Path::new("/"));
            let path = dir.join(target);
            let schema = match read_json(&path) {
                Ok(schema) => schema,
                Err(e) => return Err(bad(format!("$ref {target:?} does not resolve: {e}"))),
            };
            (schema, path)
        }
        None => (value.clone(), file.to_owned()),
    };
    if !(schema.is_object() || schema.is_boolean()) {
        return Err(bad(format!(
            "expected a schema (an object or true/false), found {}",
            kind(&schema)
        )));
    }
    let base = url::Url::from_file_path(&base)
        .map_err(|()| bad(format!("{} is not an absolute path", base.display())))?;
    jsonschema::options()
        .with_retriever(LocalOnly)
        .with_base_uri(base.to_string())
        .build(&schema)
        .map_err(|e| bad(format!("not a valid JSON Schema: {e}")))
}

fn bad_pattern_reason(e: &bus_core::BusError) -> String {
    match e {
        bus_core::BusError::InvalidPattern { reason, .. } => (*reason).to_owned(),
        other => other.to_string(),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
