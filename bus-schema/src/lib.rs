//! `bus-schema`: JSON Schema validation of eventbus events, checked before dispatch.
//!
//! A schema file is a JSON object whose keys are event-type patterns (as subscriptions
//! write them: `hook.pre_tool`, `hook.*`) and whose values are JSON Schemas (draft 2020-12,
//! or an earlier draft a schema declares with `$schema`), or `{"$ref": "relative/path.json"}`
//! naming a schema file relative to this one. An event is checked against every pattern that
//! matches its type. `$ref`s resolve to local files only: a remote one is refused (no network).
//!
//! [`SchemaValidator`] plugs the set into bus-core's pre-dispatch
//! [`Validator`](bus_core::Validator) hook; in [`SchemaMode::Reject`] an invalid event is
//! refused with its violations, in [`SchemaMode::Warn`] it is accepted, counted and logged.
//!
//! ```
//! use std::sync::Arc;
//! use bus_core::{EventBus, Refusal};
//! use bus_schema::{SchemaMode, SchemaSet, SchemaValidator};
//! use serde_json::json;
//!
//! let set = SchemaSet::from_value(
//!     &json!({"hook.*": {"type": "object", "properties": {"tool_name": {"type": "string"}}}}),
//!     std::path::Path::new("inline.json"),
//! )?;
//! let validator = Arc::new(SchemaValidator::new(set, SchemaMode::Reject));
//! let bus = EventBus::builder().validator(validator.clone()).build()?;
//! assert!(bus.publish("hook.pre_tool", json!({"tool_name": "Read"})));
//! let Err(Refusal::Invalid(why)) = bus.try_publish("hook.pre_tool", json!({"tool_name": 42})) else {
//!     panic!("refused")
//! };
//! assert_eq!(why.violations[0].to_string(), r#"/tool_name: 42 is not of type "string""#);
//! assert_eq!(validator.counts().total, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod counts;
mod error;
mod retrieve;
mod set;
mod validator;

pub use counts::{InvalidCounts, InvalidSummary};
pub use error::SchemaError;
pub use set::SchemaSet;
pub use validator::{SchemaMode, SchemaValidator};
