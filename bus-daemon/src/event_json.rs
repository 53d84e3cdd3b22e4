//! Stored events as the JSON text every read route serves (`GET /events`, `/events/recent`,
//! SSE `data:`): the read path's inner loop, so it writes straight into the caller's buffer,
//! copies the data verbatim from the log and formats each second's date only once.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use bus_store::{EventLog, EventRef, StoredEvent};

/// Writes stored events as `{"id", "type", "data", "timestamp"}` (and `"priority"` when the
/// publisher gave one). Keep one per page: events of one second share its date text.
#[derive(Debug, Default)]
pub struct EventJson {
    /// The whole second last formatted, and its text without the `Z` (`2026-12-03T13:58:08`).
    second: Option<(u64, String)>,
}

impl EventJson {
    /// A writer with nothing cached yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `event`'s JSON to `out`, its id as `log` writes ids.
    pub fn write(&mut self, log: &dyn EventLog, event: EventRef<'_>, out: &mut String) {
        out.push_str("{\"id\":\"");
        let start = out.len();
        log.write_id(event.id, out);
        if !plain(&out[start..]) {
            // Never for the built-in backends' ids; a backend's own id text might need it.
            let id = out.split_off(start);
            out.pop();
            json_string(&id, out);
        } else {
            out.push('"');
        }
        out.push_str(",\"type\":");
        json_string(event.event_type, out);
        out.push_str(",\"data\":");
        out.push_str(event.data);
        out.push_str(",\"timestamp\":\"");
        self.timestamp(event.timestamp, out);
        out.push('"');
        if let Some(priority) = event.priority {
            out.push_str(",\"priority\":\"");
            out.push_str(priority.as_str());
            out.push('"');
        }
        out.push('}');
    }

    /// RFC 3339 in UTC to the microsecond, exactly as `humantime::format_rfc3339_micros`
    /// writes it, which formats only the first event of each second here.
    fn timestamp(&mut self, at: SystemTime, out: &mut String) {
        let Ok(since_epoch) = at.duration_since(SystemTime::UNIX_EPOCH) else {
            let _ = write!(out, "{}", humantime::format_rfc3339_micros(at));
            return;
        };
        let whole = since_epoch.as_secs();
        let date = match &self.second {
            Some((second, date)) if *second == whole => date,
            _ => {
                let text = humantime::format_rfc3339_seconds(
                    SystemTime::UNIX_EPOCH + Duration::from_secs(whole),
                )
                .to_string();
                let date = text.strip_suffix('Z').unwrap_or(&text).to_owned();
                &self.second.insert((whole, date)).1
            }
        };
        out.push_str(date);
        let micros = since_epoch.subsec_micros();
        let mut fraction = *b".000000Z";
        for (i, digit) in fraction[1..7].iter_mut().rev().enumerate() {
            *digit = b'0' + (micros / 10u32.pow(i as u32) % 10) as u8;
        }
        // Only ASCII digits, a dot and a Z were written.
        out.push_str(std::str::from_utf8(&fraction).unwrap_or(".000000Z"));
    }
}

/// About how many bytes [`EventJson::write`] writes for `events`: their data, type and a
/// generous fixed part (id, timestamp, keys), so a page's text is allocated once.
pub(crate) fn json_size<'e>(events: impl IntoIterator<Item = &'e StoredEvent>) -> usize {
    events
        .into_iter()
        .map(|e| e.data.as_str().len() + e.event_type.len() + 96)
        .sum()
}

/// `text` as a JSON string literal; ids and event types rarely need escapes, so the common
/// case is a plain copy.
pub(crate) fn json_string(text: &str, out: &mut String) {
    if plain(text) {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::String(text.to_owned()).to_string());
    }
}

/// Whether `text` is its own JSON string body (nothing to escape).
fn plain(text: &str) -> bool {
    text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped_only_when_needed() {
        for text in [
            "hook.pre_tool",
            "",
            "a\"b",
            "back\\slash",
            "line\nbreak",
            "tab\t",
            "é✓",
        ] {
            let mut out = String::new();
            json_string(text, &mut out);
            let back: String = serde_json::from_str(&out).unwrap();
            assert_eq!(back, text, "{out}");
        }
    }

    #[test]
    fn timestamps_match_humantime_across_seconds_and_dates() {
        let mut writer = EventJson::new();
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_763_199);
        // Within one second, across it, across midnight and a year, and far apart.
        let offsets_micros = [
            0,
            1,
            999_999,
            1_000_000,
            1_000_001,
            5_123_456,
            86_400_000_000,
            1,
            0,
            29_030_400_000_000,
            3_000_000_000_000_000,
        ];
        for micros in offsets_micros {
            let at = base + Duration::from_micros(micros);
            let mut out = String::new();
            writer.timestamp(at, &mut out);
            assert_eq!(out, humantime::format_rfc3339_micros(at).to_string());
        }
    }
}
