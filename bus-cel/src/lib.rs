//! `bus-cel`: content conditions for eventbus, written in CEL (the Common Expression
//! Language), compiled once and checked per event through bus-core's [`Condition`] hook.
//!
//! An expression sees four variables: `type` (string), `id` (int), `timestamp` (the
//! acceptance time as an RFC 3339 UTC string, such as `"2026-12-03T08:45:06.123Z"`, so
//! string comparison orders it) and `data` (the payload, JSON mapped to CEL maps, lists,
//! ints, doubles, strings, bools and null).
//!
//! An expression that fails on one event (a missing field, a wrong type) counts as no match
//! for that event and is counted in [`CelCondition::errors`]; it never panics.
//!
//! ```
//! use std::sync::Arc;
//! use bus_cel::CelCondition;
//! use bus_core::{Event, EventBus};
//! use serde_json::json;
//!
//! let edits = Arc::new(CelCondition::compile(
//!     r#"type.startsWith("hook.") && data.tool_name in ["Edit", "Write"]"#,
//!     "example",
//! )?);
//! let bus = EventBus::new();
//! let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
//! let counter = seen.clone();
//! bus.on_where("hook.*", edits.clone(), move |_: &Event| {
//!     counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//! })?;
//! bus.publish("hook.pre_tool", json!({"tool_name": "Edit"}));
//! bus.publish("hook.pre_tool", json!({"tool_name": "Read"}));
//! bus.publish("hook.pre_tool", json!({})); // no tool_name: no match, counted
//! assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 1);
//! assert_eq!(edits.errors(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]

mod condition;
mod convert;
mod fields;
mod rewrite;
mod vars;

pub use condition::{CelCondition, CelError};

/// Re-exported for implementors: the hook a [`CelCondition`] plugs into.
pub use bus_core::Condition;
