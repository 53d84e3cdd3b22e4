//! String equality for the hot path's event types.

/// `a == b`, without a call to `memcmp` for the 8 to 32 bytes most event types have
/// (`hook.pre_tool` is 13): two or four overlapping word compares cover them. A publish
/// compares its event type with the route it used last, and a library call for 13 bytes
/// cost more than the compare itself.
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_ne_bytes(s[at..at + 8].try_into().expect("8"));
    let same_at = |at: usize| word(a, at) == word(b, at);
    match n {
        8..=16 => same_at(0) && same_at(n - 8),
        17..=32 => same_at(0) && same_at(8) && same_at(n - 16) && same_at(n - 8),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_str_equality(a in "[a-c.]{0,40}", flip in 0usize..40) {
            prop_assert_eq!(same_text(&a, &a), true);
            // The same length, one byte changed: where a word compare could miss it.
            let mut b = a.clone().into_bytes();
            if !b.is_empty() {
                let at = flip % b.len();
                b[at] = if b[at] == b'a' { b'b' } else { b'a' };
            }
            let b = String::from_utf8(b).unwrap();
            prop_assert_eq!(same_text(&a, &b), a == b);
            prop_assert_eq!(same_text(&a, &format!("{a}x")), false);
        }
    }

    #[test]
    fn every_length_up_to_40_and_every_position() {
        for n in 0..=40 {
            let a = "x".repeat(n);
            assert!(same_text(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'y';
                assert!(!same_text(&a, std::str::from_utf8(&b).unwrap()), "{n} {at}");
            }
        }
    }
}
