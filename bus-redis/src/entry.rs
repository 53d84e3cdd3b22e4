//! One event as one stream entry: fields `type`, `data` (the JSON text as given), `ts`
//! (microseconds since the Unix epoch, negative before it) and, only when the publisher gave
//! one, `priority` (`high`, `normal` or `low`).

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use bus_store::{JsonText, NewEvent, StoreError, StoredEvent};
use redis::Value;
use redis::streams::StreamId;

use crate::ids;

/// The field names, in the order they are written.
pub(crate) const TYPE: &str = "type";
pub(crate) const DATA: &str = "data";
pub(crate) const TS: &str = "ts";
pub(crate) const PRIORITY: &str = "priority";

/// Microseconds since the Unix epoch (negative before it), saturating.
pub(crate) fn to_micros(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_micros()).map_or(i64::MIN, |m| -m),
    }
}

/// The inverse of [`to_micros`].
pub(crate) fn from_micros(micros: i64) -> SystemTime {
    let magnitude = Duration::from_micros(micros.unsigned_abs());
    if micros >= 0 {
        SystemTime::UNIX_EPOCH + magnitude
    } else {
        SystemTime::UNIX_EPOCH - magnitude
    }
}

/// The `XADD` arguments after the id for `event`.
pub(crate) fn fields(event: &NewEvent) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        (TYPE, event.event_type.clone()),
        (DATA, event.data.as_str().to_owned()),
        (TS, to_micros(event.timestamp).to_string()),
    ];
    if let Some(priority) = event.priority {
        fields.push((PRIORITY, priority.as_str().to_owned()));
    }
    fields
}

fn text(map: &HashMap<String, Value>, id: &str, field: &str) -> Result<String, StoreError> {
    let foreign = |what: &str| {
        StoreError::unavailable(format!(
            "stream entry {id} {what} field `{field}`: not written by eventbus"
        ))
    };
    match map.get(field) {
        Some(Value::BulkString(bytes)) => {
            String::from_utf8(bytes.clone()).map_err(|_| foreign("has a non-UTF-8"))
        }
        Some(Value::SimpleString(s)) => Ok(s.clone()),
        Some(_) => Err(foreign("has an odd")),
        None => Err(foreign("has no")),
    }
}

/// Decodes an entry that [`fields`] wrote.
pub(crate) fn decode(entry: &StreamId) -> Result<StoredEvent, StoreError> {
    let id = ids::from_redis(&entry.id)?;
    let event_type = text(&entry.map, &entry.id, TYPE)?;
    let data = JsonText::parse(&text(&entry.map, &entry.id, DATA)?)?;
    let ts = text(&entry.map, &entry.id, TS)?;
    let micros = ts.parse::<i64>().map_err(|_| {
        StoreError::unavailable(format!(
            "stream entry {} has ts {ts:?}, not micros",
            entry.id
        ))
    })?;
    let priority = match entry.map.get(PRIORITY) {
        None => None,
        Some(_) => {
            let text = text(&entry.map, &entry.id, PRIORITY)?;
            Some(text.parse().map_err(|_| {
                StoreError::unavailable(format!(
                    "stream entry {} has priority {text:?}, not high, normal or low",
                    entry.id
                ))
            })?)
        }
    };
    Ok(StoredEvent {
        id,
        event_type,
        data,
        timestamp: from_micros(micros),
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_trip_both_sides_of_the_epoch() {
        for micros in [0, 1, -1, 1_700_000_000_123_456, -86_400_000_000] {
            assert_eq!(to_micros(from_micros(micros)), micros);
        }
    }

    #[test]
    fn entries_decode_and_foreign_entries_are_refused() {
        let event = NewEvent::new("hook.pre_tool", JsonText::parse("{\"a\":1}").unwrap());
        let map: HashMap<String, Value> = fields(&event)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::BulkString(v.into_bytes())))
            .collect();
        let entry = StreamId {
            id: "0-3".into(),
            map,
            ..StreamId::default()
        };
        let stored = decode(&entry).unwrap();
        assert_eq!(stored.priority, None);
        assert_eq!(stored.id.0, 3);
        assert_eq!(stored.event_type, "hook.pre_tool");
        assert_eq!(stored.data.as_str(), "{\"a\":1}");
        assert_eq!(stored.timestamp, from_micros(to_micros(event.timestamp)));

        let urgent = event.clone().with_priority(bus_store::Priority::High);
        let mut with_priority = entry.clone();
        with_priority.map = fields(&urgent)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::BulkString(v.into_bytes())))
            .collect();
        assert_eq!(
            decode(&with_priority).unwrap().priority,
            Some(bus_store::Priority::High)
        );

        let mut missing = entry.clone();
        missing.map.remove(TS);
        let err = decode(&missing).unwrap_err().to_string();
        assert!(err.contains("has no field `ts`"), "{err}");
    }
}
