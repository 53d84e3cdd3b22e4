//! Integers too large for 64 bits: serde_json reads them as floats, which silently drops
//! digits (`123456789012345678901234567890` becomes `1.2345678901234568e29`). They are
//! refused instead, naming where they are, so that nothing is stored other than it was sent.
//!
//! The check costs nothing on ordinary bodies: the raw text is scanned only when a parsed
//! value holds a float that could have come from such an integer.

use serde_json::Value;

/// True when `value` holds a whole float outside the 64-bit integer range: either a float
/// literal such as `1e30`, or an integer that did not fit.
pub(crate) fn may_hold_huge_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|x| {
            !n.is_i64()
                && !n.is_u64()
                && x.fract() == 0.0
                && !(-9.223_372_036_854_776e18..1.844_674_407_370_955_2e19).contains(&x)
        }),
        Value::Array(items) => items.iter().any(may_hold_huge_integer),
        Value::Object(map) => map.values().any(may_hold_huge_integer),
        _ => false,
    }
}

/// The JSON pointer of the first integer literal in `text` (valid JSON) that fits neither
/// `i64` nor `u64`.
pub(crate) fn find_huge_integer(text: &[u8]) -> Option<String> {
    enum Frame {
        Object { key: String, expect_key: bool },
        Array { index: usize },
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'{' => stack.push(Frame::Object {
                key: String::new(),
                expect_key: true,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Array { index }) => *index += 1,
                Some(Frame::Object { expect_key, .. }) => *expect_key = true,
                None => {}
            },
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, expect_key }) = stack.last_mut()
                    && *expect_key
                {
                    *key = serde_json::from_slice(&text[start..=i.min(text.len() - 1)])
                        .unwrap_or_default();
                    *expect_key = false;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < text.len()
                    && matches!(text[i + 1], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let literal = std::str::from_utf8(&text[start..=i]).unwrap_or("");
                let integer = !literal.contains(['.', 'e', 'E']);
                if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                    let mut pointer = String::new();
                    for frame in &stack {
                        pointer.push('/');
                        match frame {
                            Frame::Object { key, .. } => {
                                pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                            }
                            Frame::Array { index } => pointer.push_str(&index.to_string()),
                        }
                    }
                    return Some(pointer);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The message for a huge integer at `pointer` (relative to the event).
pub(crate) fn refusal(pointer: &str) -> String {
    format!(
        "the integer at {pointer} does not fit in 64 bits and would lose digits as a float; send it as a string"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_pointer_of_a_huge_integer_only() {
        let text =
            br#"{"type":"a","data":{"x/y":[1, 2.5, {"n~":-123456789012345678901234567890}]}}"#;
        let value: Value = serde_json::from_slice(text).unwrap();
        assert!(may_hold_huge_integer(&value));
        assert_eq!(find_huge_integer(text).as_deref(), Some("/data/x~1y/2/n~0"));
        for fine in [
            &br#"{"a":18446744073709551615,"b":-9223372036854775808,"s":"123456789012345678901234567890"}"#[..],
            br#"{"a":1e30,"b":1.5e300,"c":[0.1]}"#,
        ] {
            assert_eq!(find_huge_integer(fine), None, "{}", String::from_utf8_lossy(fine));
        }
        let small: Value =
            serde_json::from_slice(br#"{"a":[1,2.5,18446744073709551615]}"#).unwrap();
        assert!(!may_hold_huge_integer(&small));
    }
}
