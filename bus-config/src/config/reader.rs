//! [`Reader`]: takes each variable's raw text, checks it, remembers the value it settled on
//! (for `eventbus config`) and collects every error of the pass.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bus_core::Pattern;
use serde_json::Value;

use crate::error::VarError;
use crate::parse;
use crate::runtime::MAX_PATTERNS;
use crate::vars::spec;

/// One pass over the raw values: each `read_*` call checks one variable.
pub(crate) struct Reader {
    raw: BTreeMap<String, String>,
    pub(crate) errors: Vec<VarError>,
    pub(crate) explicit: BTreeSet<&'static str>,
    pub(crate) shown: BTreeMap<&'static str, Value>,
}

impl Reader {
    /// A reader over `raw`, keyed by full variable name.
    pub(crate) fn new(raw: BTreeMap<String, String>) -> Self {
        Reader {
            raw,
            errors: Vec::new(),
            explicit: BTreeSet::new(),
            shown: BTreeMap::new(),
        }
    }

    /// The raw text of `var`, when set.
    pub(crate) fn raw(&self, var: &str) -> Option<&str> {
        self.raw.get(var).map(String::as_str)
    }

    /// Checks `var` with `check` when it is set, else takes `default`; on an error the
    /// default stands in, so the rest of the pass goes on. `show` is how the value appears in
    /// `eventbus config`.
    pub(crate) fn value<T>(
        &mut self,
        var: &'static str,
        default: T,
        check: impl FnOnce(&str) -> Result<T, String>,
        show: impl FnOnce(&T) -> Value,
    ) -> T {
        debug_assert!(spec(var).is_some(), "{var} is missing from vars.rs");
        let value = match self.raw.get(var) {
            None => default,
            Some(raw) => {
                self.explicit.insert(var);
                match check(raw) {
                    Ok(v) => v,
                    Err(expected) => {
                        self.errors.push(VarError::new(var, raw.clone(), expected));
                        default
                    }
                }
            }
        };
        self.shown.insert(var, show(&value));
        value
    }

    /// A boolean: true/false, 1/0, yes/no, on/off in any case.
    pub(crate) fn flag(&mut self, var: &'static str, default: bool) -> bool {
        self.value(var, default, parse::boolean, |v| Value::Bool(*v))
    }

    /// A whole number from `min` to `max`.
    pub(crate) fn number(&mut self, var: &'static str, default: u64, min: u64, max: u64) -> u64 {
        self.value(
            var,
            default,
            |s| parse::whole_number(s, min, max),
            |v| Value::from(*v),
        )
    }

    /// A duration up to `max` (zero allowed).
    pub(crate) fn duration(
        &mut self,
        var: &'static str,
        default: Duration,
        max: Duration,
    ) -> Duration {
        self.value(var, default, |s| parse::duration(s, max), show_duration)
    }

    /// A duration above zero, up to `max`.
    pub(crate) fn positive_duration(
        &mut self,
        var: &'static str,
        default: Duration,
        max: Duration,
    ) -> Duration {
        self.value(
            var,
            default,
            |s| parse::positive_duration(s, max),
            show_duration,
        )
    }

    /// Comma-separated event-type patterns, each checked by bus-core's rules.
    pub(crate) fn patterns(
        &mut self,
        var: &'static str,
        default: Vec<String>,
        at_least_one: bool,
    ) -> Vec<String> {
        self.value(
            var,
            default,
            |s| {
                let items = parse::list(s);
                if at_least_one && items.is_empty() {
                    return Err(
                        "at least one comma-separated event-type pattern, such as hook.*".into(),
                    );
                }
                // `,,` is a list that lost its patterns, not a wish to allow everything.
                if items.is_empty() && !s.trim().is_empty() {
                    return Err("comma-separated event-type patterns, but there is no pattern between the commas (leave the variable empty or unset it to allow all)".into());
                }
                if items.len() > MAX_PATTERNS {
                    return Err(format!(
                        "at most {MAX_PATTERNS} comma-separated event-type patterns, not {} (every event is matched against each; use wildcards such as hook.*)",
                        items.len()
                    ));
                }
                let bad: Vec<String> = items
                    .iter()
                    .filter_map(|p| Pattern::new(p).err().map(|e| e.to_string()))
                    .collect();
                if bad.is_empty() {
                    Ok(items)
                } else {
                    Err(format!(
                        "comma-separated event-type patterns ({})",
                        bad.join("; ")
                    ))
                }
            },
            |v| Value::from(v.clone()),
        )
    }

    /// Marks `var` as read without checking it (its section is not in this build), so that
    /// `eventbus config` shows its raw text.
    #[allow(dead_code)] // unused when every feature is on
    pub(crate) fn unchecked(&mut self, var: &'static str) {
        if let Some(raw) = self.raw.get(var) {
            self.explicit.insert(var);
            self.shown.insert(var, Value::String(raw.clone()));
        }
    }

    /// Reports `var` as bad after the fact (a cross-check of several values), unless it was
    /// reported already.
    #[allow(dead_code)] // unused without the relay feature
    pub(crate) fn refuse(&mut self, var: &'static str, expected: String) {
        if self.errors.iter().any(|e| e.variable == var) {
            return;
        }
        let value = self
            .raw(var)
            .map(str::to_owned)
            .unwrap_or_else(|| spec(var).map_or("", |s| s.default).to_owned());
        self.errors.push(VarError::new(var, value, expected));
    }
}

/// Durations appear as humantime text (`500ms`, `5s`).
pub(crate) fn show_duration(d: &Duration) -> Value {
    Value::String(humantime::format_duration(*d).to_string())
}
