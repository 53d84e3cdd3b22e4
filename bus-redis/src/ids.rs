//! Stream ids <-> [`LogId`]s.
//!
//! The log appends with `XADD <key> 0-*`: Redis picks the next sequence number under the
//! millisecond part 0, atomically for every daemon on the stream. The entries' ids are thus
//! `0-1`, `0-2`, ...: still the stream's own ids, and dense like the [`LogId`] contract wants
//! (a trimmed consumer learns exactly how many events it missed). `0-N` is `LogId(N)`.
//! Time-based ids (`XADD ... *`, written by another program) cannot follow and are refused.

use bus_store::{LogId, StoreError};

/// The stream id of `id`.
pub(crate) fn format(id: LogId) -> String {
    format!("0-{}", id.0)
}

/// The [`LogId`] of a stream id `0-N`; `None` for any other text.
pub(crate) fn parse(text: &str) -> Option<LogId> {
    let seq = text.strip_prefix("0-")?;
    if seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    seq.parse().ok().map(LogId)
}

/// [`parse`] for an id Redis answered: anything else means another program wrote the stream.
pub(crate) fn from_redis(text: &str) -> Result<LogId, StoreError> {
    parse(text).ok_or_else(|| {
        StoreError::unavailable(format!(
            "stream entry id {text:?} was not written by eventbus (its ids are 0-N); \
             use a stream of its own (CLAUDE_MPM_EVENTBUS_REDIS_STREAM)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ids_are_refused() {
        for n in [0, 1, 42, u64::MAX] {
            assert_eq!(parse(&format(LogId(n))), Some(LogId(n)));
        }
        assert_eq!(format(LogId(7)), "0-7");
        for bad in [
            "",
            "7",
            "0-",
            "1-7",
            "0-+1",
            "0--1",
            "0-1.5",
            "0-99999999999999999999",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
        assert!(from_redis("1700000000000-0").is_err());
    }
}
