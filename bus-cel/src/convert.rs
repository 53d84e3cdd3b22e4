//! JSON payloads to CEL values, built directly as the interpreter's own values (going
//! through `cel::Value` would build every map and string twice). Strings and map keys
//! borrow from the payload: an event's values live only while its condition runs.

use std::collections::HashMap;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use serde_json::Value as Json;

/// A boxed CEL value that may borrow from the payload for `'a`.
pub(crate) type Boxed<'a> = Box<dyn Val + 'a>;

/// The CEL value of a JSON value, held inline: a scalar (the common case of a field an
/// expression reads) needs no allocation, a list or map is built and boxed.
#[derive(Debug)]
pub(crate) enum Converted<'a> {
    /// `null`.
    Null(CelNull),
    /// `true` or `false`.
    Bool(CelBool),
    /// An integer that fits `i64`.
    Int(CelInt),
    /// An integer past `i64`.
    UInt(CelUInt),
    /// Any other number.
    Double(CelDouble),
    /// A string, borrowed from the payload.
    String(CelString<'a>),
    /// A list or map.
    Boxed(Boxed<'a>),
}

impl<'a> Converted<'a> {
    /// Integers that fit stay `int` (or `uint` past `i64`), other numbers become `double`.
    pub(crate) fn of(value: &'a Json) -> Self {
        match value {
            Json::Null => Converted::Null(CelNull),
            Json::Bool(b) => Converted::Bool(CelBool::from(*b)),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Converted::Int(CelInt::from(i))
                } else if let Some(u) = n.as_u64() {
                    Converted::UInt(CelUInt::from(u))
                } else {
                    Converted::Double(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
                }
            }
            Json::String(s) => Converted::String(CelString::from(s.as_str())),
            Json::Array(items) => Converted::Boxed(Box::new(CelList::from(
                items.iter().map(to_cel).collect::<Vec<_>>(),
            ))),
            Json::Object(map) => {
                let mut out: HashMap<CelMapKey<'_>, Boxed<'_>> = HashMap::with_capacity(map.len());
                for (k, v) in map {
                    out.insert(CelMapKey::from(k.as_str()), to_cel(v));
                }
                Converted::Boxed(Box::new(CelMap::from(out)))
            }
        }
    }

    /// The value, for the interpreter.
    pub(crate) fn as_val(&self) -> &(dyn Val + 'a) {
        match self {
            Converted::Null(v) => v,
            Converted::Bool(v) => v,
            Converted::Int(v) => v,
            Converted::UInt(v) => v,
            Converted::Double(v) => v,
            Converted::String(v) => v,
            Converted::Boxed(v) => v.as_ref(),
        }
    }

    /// The value, boxed.
    fn boxed(self) -> Boxed<'a> {
        match self {
            Converted::Null(v) => Box::new(v),
            Converted::Bool(v) => Box::new(v),
            Converted::Int(v) => Box::new(v),
            Converted::UInt(v) => Box::new(v),
            Converted::Double(v) => Box::new(v),
            Converted::String(v) => Box::new(v),
            Converted::Boxed(v) => v,
        }
    }
}

/// The CEL value of a JSON value, boxed (see [`Converted::of`]).
pub(crate) fn to_cel(value: &Json) -> Boxed<'_> {
    Converted::of(value).boxed()
}

/// The CEL map of only `fields` of a JSON object (those it has): what an expression that
/// reads nothing else of `data` can see.
pub(crate) fn to_cel_fields<'a>(
    map: &'a serde_json::Map<String, Json>,
    fields: &[String],
) -> Boxed<'a> {
    let mut out: HashMap<CelMapKey<'a>, Boxed<'a>> = HashMap::with_capacity(fields.len());
    for field in fields {
        if let Some((k, v)) = map.get_key_value(field.as_str()) {
            out.insert(CelMapKey::from(k.as_str()), to_cel(v));
        }
    }
    Box::new(CelMap::from(out))
}
