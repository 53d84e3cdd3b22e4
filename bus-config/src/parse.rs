//! Strict parsers for environment values: each returns what was wrong in words a user reads.

use std::time::Duration;

/// Words accepted as true and as false, in any case.
pub(crate) const TRUE_WORDS: [&str; 4] = ["true", "1", "yes", "on"];
pub(crate) const FALSE_WORDS: [&str; 4] = ["false", "0", "no", "off"];

/// What a boolean variable accepts, for error messages.
pub(crate) const BOOL_EXPECTED: &str = "true/false, 1/0, yes/no or on/off (any case)";

/// Parses a boolean: true/false, 1/0, yes/no, on/off, in any case, surrounding spaces ignored.
pub fn boolean(raw: &str) -> Result<bool, String> {
    let word = raw.trim().to_ascii_lowercase();
    if TRUE_WORDS.contains(&word.as_str()) {
        Ok(true)
    } else if FALSE_WORDS.contains(&word.as_str()) {
        Ok(false)
    } else {
        Err(BOOL_EXPECTED.to_owned())
    }
}

/// Splits on commas, trims every item and drops the empty ones.
pub(crate) fn list(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Parses a whole number in `min..=max` (underscores allowed as digit separators).
pub(crate) fn whole_number(raw: &str, min: u64, max: u64) -> Result<u64, String> {
    let expected = || format!("a whole number from {min} to {max}");
    let digits: String = raw.trim().chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(expected());
    }
    match digits.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(expected()),
    }
}

/// Parses a duration: plain seconds (`0.5`, `5`) like the original, or a unit
/// (`500ms`, `2s`, `1m 30s`), from zero up to `max`.
pub fn duration(raw: &str, max: Duration) -> Result<Duration, String> {
    let expected = || {
        format!(
            "a duration from 0 to {}: seconds such as 0.5 or 5, or with a unit such as 500ms, 2s or 1m",
            humantime::format_duration(max)
        )
    };
    let text = raw.trim();
    let parsed = if text.chars().all(|c| c.is_ascii_digit() || c == '.') && !text.is_empty() {
        text.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
    } else {
        humantime::parse_duration(text).ok()
    };
    match parsed {
        Some(d) if d <= max => Ok(d),
        _ => Err(expected()),
    }
}

/// Parses a duration like [`duration`], but longer than zero: for delays that must pass.
pub(crate) fn positive_duration(raw: &str, max: Duration) -> Result<Duration, String> {
    match duration(raw, max) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(format!(
            "a duration longer than 0, up to {}: seconds such as 0.5 or 5, or with a unit such as 500ms, 2s or 1m",
            humantime::format_duration(max)
        )),
    }
}

/// Compares two secrets in time that does not depend on where they first differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Parses an absolute file path (a relative one would name different files for the hook and
/// the daemon, which run in different directories).
pub(crate) fn absolute_path(raw: &str) -> Result<Option<std::path::PathBuf>, String> {
    let path = std::path::Path::new(raw);
    if path.is_absolute() && path.file_name().is_some() {
        Ok(Some(path.to_path_buf()))
    } else {
        Err("an absolute file path, such as /home/me/.local/state/eventbus/spool.ndjson".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_in_any_case() {
        for w in ["true", "TRUE", "1", "Yes", "on", " On "] {
            assert_eq!(boolean(w), Ok(true), "{w}");
        }
        for w in ["false", "False", "0", "NO", "off"] {
            assert_eq!(boolean(w), Ok(false), "{w}");
        }
        for w in ["", "2", "enabled", "t", "y"] {
            assert!(boolean(w).is_err(), "{w}");
        }
    }

    #[test]
    fn lists_are_trimmed_and_empties_dropped() {
        assert_eq!(list(" a , b,,c ,"), vec!["a", "b", "c"]);
        assert!(list(" , ,").is_empty());
        assert!(list("").is_empty());
    }

    #[test]
    fn numbers_are_bounded() {
        assert_eq!(whole_number("100", 0, 1000), Ok(100));
        assert_eq!(whole_number("10_000", 0, 100_000), Ok(10_000));
        assert!(whole_number("-1", 0, 10).is_err());
        assert!(whole_number("11", 0, 10).is_err());
        assert!(whole_number("1.5", 0, 10).is_err());
        assert!(whole_number("99999999999999999999999", 0, 10).is_err());
        assert!(whole_number("", 0, 10).is_err());
    }

    #[test]
    fn durations_take_seconds_or_units() {
        let max = Duration::from_secs(3600);
        assert_eq!(duration("0.5", max), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5", max), Ok(Duration::from_secs(5)));
        assert_eq!(duration("250ms", max), Ok(Duration::from_millis(250)));
        assert_eq!(duration("1m 30s", max), Ok(Duration::from_secs(90)));
        for bad in ["", "-1", "abc", "1e3", "NaN", "inf", "2h", "1.2.3"] {
            assert!(duration(bad, max).is_err(), "{bad}");
        }
    }

    #[test]
    fn positive_durations_refuse_zero() {
        let max = Duration::from_secs(3600);
        assert_eq!(positive_duration("1ms", max), Ok(Duration::from_millis(1)));
        for bad in ["0", "0.0", "0s", "0ms", "-1", "2h", "soon"] {
            let err = positive_duration(bad, max).unwrap_err();
            assert!(err.contains("longer than 0, up to 1h"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_compare_by_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
