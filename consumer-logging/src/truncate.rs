//! Compact JSON of an event's payload, cut to a byte budget.

use std::io::{self, Write};

use serde_json::Value;

/// Writes the first `limit` bytes it is given and counts every byte, so a huge payload is
/// serialized once without being held in memory.
struct Capped {
    kept: Vec<u8>,
    limit: usize,
    total: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.kept.len());
        self.kept.extend_from_slice(&buf[..buf.len().min(room)]);
        self.total += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `data` as compact JSON, at most `limit` bytes of it (cut on a character boundary),
/// followed by a marker naming the full size when anything was cut.
pub(crate) fn compact_json(data: &Value, limit: usize) -> String {
    let mut out = Capped {
        kept: Vec::with_capacity(limit.min(4096)),
        limit,
        total: 0,
    };
    // Serializing a `Value` into a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut out, data);
    let mut text = match String::from_utf8(out.kept) {
        Ok(text) => text,
        Err(error) => {
            // The cut fell inside a multi-byte character: keep the valid prefix.
            let valid = error.utf8_error().valid_up_to();
            let mut bytes = error.into_bytes();
            bytes.truncate(valid);
            String::from_utf8(bytes).unwrap_or_default()
        }
    };
    if out.total > text.len() {
        text.push_str(&format!(
            "…[truncated: {} of {} bytes]",
            text.len(),
            out.total
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn short_payloads_are_whole_and_compact() {
        assert_eq!(compact_json(&json!({"a": [1, 2]}), 1024), r#"{"a":[1,2]}"#);
        let exact = compact_json(&json!("abc"), 5);
        assert_eq!(exact, r#""abc""#, "exactly at the limit is not cut");
    }

    #[test]
    fn long_payloads_are_cut_with_a_marker() {
        let text = compact_json(&json!({"k": "x".repeat(100)}), 10);
        assert_eq!(text, r#"{"k":"xxxx…[truncated: 10 of 108 bytes]"#);
    }

    #[test]
    fn cuts_never_split_a_character() {
        // `"é` is 3 bytes: a 2-byte budget falls inside the é.
        let text = compact_json(&json!("éé"), 2);
        assert_eq!(text, "\"…[truncated: 1 of 6 bytes]");
    }
}
