//! Event-type patterns: exact names or wildmatch globs.

use wildmatch::WildMatch;

use crate::BusError;

/// A validated subscription or filter pattern.
///
/// A pattern without `*` or `?` matches one event type exactly. Otherwise it is a glob
/// with [wildmatch](https://docs.rs/wildmatch) semantics: `*` matches any run of
/// characters (dots included), `?` exactly one; matching is case-sensitive.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: Box<str>,
    glob: Option<WildMatch>,
}

impl Pattern {
    /// Parses a pattern, refusing an empty one or one with surrounding whitespace.
    pub fn new(text: &str) -> Result<Self, BusError> {
        let invalid = |reason| BusError::InvalidPattern {
            pattern: text.to_owned(),
            reason,
        };
        if text.is_empty() {
            return Err(invalid("a pattern must not be empty"));
        }
        if text.trim() != text {
            return Err(invalid("a pattern must not start or end with whitespace"));
        }
        let glob = text.contains(['*', '?']).then(|| WildMatch::new(text));
        Ok(Pattern {
            text: text.into(),
            glob,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True when the pattern has no wildcard and so names one event type.
    pub fn is_exact(&self) -> bool {
        self.glob.is_none()
    }

    /// True when `event_type` matches this pattern.
    pub fn matches(&self, event_type: &str) -> bool {
        match &self.glob {
            None => &*self.text == event_type,
            Some(glob) => glob.matches(event_type),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Pattern {}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Pattern {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pattern::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn globs_follow_wildmatch() {
        let p = Pattern::new("hook.*").unwrap();
        assert!(p.matches("hook.pre_tool"));
        assert!(p.matches("hook.a.b"));
        assert!(p.matches("hook."));
        assert!(!p.matches("hook"));
        assert!(!p.matches("Hook.pre_tool"), "case-sensitive");
        assert!(Pattern::new("*").unwrap().matches(""));
        assert!(Pattern::new("a?c").unwrap().matches("abc"));
        assert!(!Pattern::new("a?c").unwrap().matches("ac"));
    }

    #[test]
    fn exact_patterns_match_only_themselves() {
        let p = Pattern::new("hook.pre_tool").unwrap();
        assert!(p.is_exact());
        assert!(p.matches("hook.pre_tool"));
        assert!(!p.matches("hook.pre_tool2"));
    }

    #[test]
    fn bad_patterns_name_themselves() {
        let err = Pattern::new("").unwrap_err().to_string();
        assert!(err.contains("\"\""), "{err}");
        let err = Pattern::new(" hook.*").unwrap_err().to_string();
        assert!(err.contains("\" hook.*\""), "{err}");
    }

    /// A deliberately naive glob: the specification the matcher is checked against.
    fn reference_glob(p: &[char], s: &[char]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some(('*', rest)) => (0..=s.len()).any(|i| reference_glob(rest, &s[i..])),
            Some(('?', rest)) => !s.is_empty() && reference_glob(rest, &s[1..]),
            Some((c, rest)) => s.first() == Some(c) && reference_glob(rest, &s[1..]),
        }
    }

    proptest! {
        #[test]
        fn matcher_agrees_with_reference_glob(
            pattern in "[ab.*?]{1,8}",
            subject in "[ab.]{0,10}",
        ) {
            let p = Pattern::new(&pattern).unwrap();
            let pc: Vec<char> = pattern.chars().collect();
            let sc: Vec<char> = subject.chars().collect();
            prop_assert_eq!(p.matches(&subject), reference_glob(&pc, &sc));
        }
    }
}
