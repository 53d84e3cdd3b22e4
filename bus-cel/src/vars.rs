//! An event's variables, answered when the interpreter asks for them.
//!
//! No payload is converted whole unless the expression needs it whole: `type` borrows the
//! event's type, and a field chain (`data.tool_name`, or its slot, see `rewrite`) is
//! answered with that one JSON value, converted alone, strings borrowed. The first few
//! slots are looked up as the variables are made (a scalar converted in place, a list or
//! map when read). `data` itself (for `has(data.x)`, `size(data)`, a missing field) is
//! converted at most once per event.

use std::sync::OnceLock;
use std::time::SystemTime;

use bus_core::EventView;
use cel::common::types::{CelString, CelUInt};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use serde_json::Value as Json;

use crate::convert::{Boxed, Converted, to_cel, to_cel_fields};
use crate::rewrite::{CONSTANT, MARK, SLOT};

/// What a compiled condition knows that each event's variables need.
pub(crate) struct Plan {
    /// The top-level `data` fields read, when it reads nothing else of `data`.
    pub(crate) fields: Option<Vec<String>>,
    /// The rewritten expression's constants.
    pub(crate) constants: Vec<Box<dyn Val + 'static>>,
    /// The rewritten expression's slots: paths inside `data`.
    pub(crate) slots: Vec<Vec<String>>,
}

/// How many slots are looked up when the event's variables are made, their scalars
/// converted in place (no allocation, no lock); later ones (an expression reading more
/// fields) are looked up and boxed each time they are read.
const EAGER_SLOTS: usize = 4;

/// A slot's value, looked up in advance.
enum Slot<'a> {
    /// The path is missing.
    Missing,
    /// A scalar, converted.
    Scalar(Converted<'a>),
    /// A list or map, converted when read.
    Compound(&'a Json),
}

/// One event's `type`, `id`, `timestamp` and `data`, and the condition's constants.
pub(crate) struct EventVars<'a> {
    event: EventView<'a>,
    plan: &'a Plan,
    data: OnceLock<Boxed<'a>>,
    slots: [Slot<'a>; EAGER_SLOTS],
}

impl<'a> EventVars<'a> {
    pub(crate) fn new(event: EventView<'a>, plan: &'a Plan) -> Self {
        let slot = |i: usize| match plan.slots.get(i).and_then(|path| at(event.data, path)) {
            None => Slot::Missing,
            Some(v @ (Json::Array(_) | Json::Object(_))) => Slot::Compound(v),
            Some(v) => Slot::Scalar(Converted::of(v)),
        };
        EventVars {
            event,
            plan,
            data: OnceLock::new(),
            slots: std::array::from_fn(slot),
        }
    }

    /// `data`, as much of it as the expression can see.
    fn data(&self) -> &(dyn Val + 'a) {
        self.data
            .get_or_init(|| match (&self.plan.fields, self.event.data) {
                (Some(fields), Json::Object(map)) => to_cel_fields(map, fields),
                _ => to_cel(self.event.data),
            })
            .as_ref()
    }

    /// A rewritten name: `@c3` (a constant) or `@s0` (a slot).
    fn rewritten(&self, kind: u8, index: &str) -> Option<CowVal<'_, 'a>> {
        let index: usize = match index.as_bytes() {
            [digit] => usize::from(digit.wrapping_sub(b'0')),
            _ => index.parse().ok()?,
        };
        match kind {
            CONSTANT => Some(CowVal::Borrowed(self.plan.constants.get(index)?.as_ref())),
            SLOT => match self.slots.get(index) {
                Some(Slot::Missing) => None,
                Some(Slot::Scalar(v)) => Some(CowVal::Borrowed(v.as_val())),
                Some(Slot::Compound(v)) => Some(CowVal::Owned(to_cel(v))),
                None => {
                    let path = self.plan.slots.get(index)?;
                    Some(CowVal::Owned(to_cel(at(self.event.data, path)?)))
                }
            },
            _ => None,
        }
    }
}

impl VariableResolver for EventVars<'_> {
    fn resolve<'b>(&'b self, name: &str) -> Option<CowVal<'b, 'b>> {
        match name.as_bytes() {
            [MARK, kind, ..] => self.rewritten(*kind, &name[2..]),
            b"type" => Some(CowVal::owned(CelString::from(self.event.event_type))),
            b"id" => Some(CowVal::owned(CelUInt::from(self.event.id))),
            b"timestamp" => Some(CowVal::owned(CelString::from(rfc3339(
                self.event.timestamp,
            )))),
            b"data" => Some(CowVal::Borrowed(self.data())),
            _ => {
                let path = name.strip_prefix("data.")?;
                Some(CowVal::Owned(to_cel(at(self.event.data, path.split('.'))?)))
            }
        }
    }
}

/// The value at `path` inside `data`, if every step is an object that has the next field;
/// otherwise the interpreter resolves a shorter name and selects from it, meeting the same
/// value or failing with its own error.
fn at<P: AsRef<str>>(data: &Json, path: impl IntoIterator<Item = P>) -> Option<&Json> {
    path.into_iter()
        .try_fold(data, |value, field| get(value.as_object()?, field.as_ref()))
}

/// `map[name]`. A payload's object has a few keys: comparing lengths first and then bytes
/// finds one in far fewer instructions than the ordered search, whose every step is a
/// call to compare bytes.
fn get<'a>(map: &'a serde_json::Map<String, Json>, name: &str) -> Option<&'a Json> {
    if map.len() <= 16 {
        map.iter().find_map(|(k, v)| (k == name).then_some(v))
    } else {
        map.get(name)
    }
}

/// As the event's JSON shows it: RFC 3339, UTC, microseconds.
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}
