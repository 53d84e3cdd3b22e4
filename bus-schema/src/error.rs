//! Why a schema file could not be loaded.

use std::path::PathBuf;

/// A schema file that cannot be used; every variant names the file, and the pattern where
/// there is one.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The file (or a file a `$ref` names) could not be read.
    #[error("{}: cannot read it: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not JSON.
    #[error("{}: not JSON: {source}", file.display())]
    NotJson {
        /// The file.
        file: PathBuf,
        /// The parse error, with its line and column.
        source: serde_json::Error,
    },
    /// The file is JSON but not an object of pattern -> schema.
    #[error("{}: expected a JSON object whose keys are event-type patterns and whose values are schemas, found {found}", file.display())]
    NotAnObject {
        /// The file.
        file: PathBuf,
        /// What the top level was.
        found: &'static str,
    },
    /// A key is not a valid event-type pattern.
    #[error("{}: pattern {pattern:?}: {reason}", file.display())]
    BadPattern {
        /// The file.
        file: PathBuf,
        /// The key as written.
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A value is not a valid JSON Schema, or a `$ref` in it does not resolve.
    #[error("{}: pattern {pattern:?}: {reason}", file.display())]
    BadSchema {
        /// The file.
        file: PathBuf,
        /// The pattern whose schema is bad.
        pattern: String,
        /// The problem, as the JSON Schema compiler states it (a remote `$ref` is named).
        reason: String,
    },
}
