//! JSON payloads to CEL values, built directly as the interpreter's own values (going
//! through `cel::Value` would build every map and string twice).

use std::collections::HashMap;

use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use serde_json::Value as Json;

/// A boxed CEL value.
pub(crate) type Boxed = Box<dyn Val + 'static>;

/// The CEL value of a JSON value: integers that fit stay `int` (or `uint` past `i64`),
/// other numbers become `double`.
pub(crate) fn to_cel(value: &Json) -> Boxed {
    match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => Box::new(CelString::from(s.clone())),
        Json::Array(items) => Box::new(CelList::from(items.iter().map(to_cel).collect::<Vec<_>>())),
        Json::Object(map) => {
            let mut out: HashMap<CelMapKey<'static>, Boxed> = HashMap::with_capacity(map.len());
            for (k, v) in map {
                out.insert(CelMapKey::from(k.clone()), to_cel(v));
            }
            Box::new(CelMap::from(out))
        }
    }
}

/// The CEL map of only `fields` of a JSON object (those it has): what an expression that
/// reads nothing else of `data` can see.
pub(crate) fn to_cel_fields(map: &serde_json::Map<String, Json>, fields: &[String]) -> Boxed {
    let mut out: HashMap<CelMapKey<'static>, Boxed> = HashMap::with_capacity(fields.len());
    for field in fields {
        if let Some(v) = map.get(field) {
            out.insert(CelMapKey::from(field.clone()), to_cel(v));
        }
    }
    Box::new(CelMap::from(out))
}
