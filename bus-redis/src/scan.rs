//! How much a scan (`XRANGE`/`XREVRANGE` in chunks) fetches per round trip.

use bus_store::PAGE_MAX_BYTES;

/// The most entries fetched per round trip while scanning.
pub(crate) const SCAN_CHUNK: usize = 128;

/// The first fetch of a scan, before the entries' size is known.
pub(crate) const FIRST_CHUNK: usize = 16;

/// How many entries the next fetch of a scan asks for: as many as fit in what is left of the
/// page's byte budget at the average size seen so far (plus one, to learn whether there is
/// more), so that scanning events of megabytes each never pulls far more than one page.
pub(crate) fn next_chunk(seen: usize, seen_bytes: usize, page_bytes: usize) -> usize {
    if seen == 0 {
        return FIRST_CHUNK;
    }
    let average = (seen_bytes / seen).max(1);
    (PAGE_MAX_BYTES.saturating_sub(page_bytes) / average + 1).clamp(1, SCAN_CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_fetch_about_one_page_of_bytes() {
        assert_eq!(next_chunk(0, 0, 0), FIRST_CHUNK);
        assert_eq!(
            next_chunk(16, 16 * 100, 0),
            SCAN_CHUNK,
            "small events: full chunks"
        );
        let mib = 1 << 20;
        assert_eq!(next_chunk(2, 6 * mib, 6 * mib), 1, "3 MiB each, 2 MiB left");
        assert_eq!(next_chunk(1, 3 * mib, 0), 3, "3 MiB each, 8 MiB left");
        assert_eq!(
            next_chunk(3, 9 * mib, 9 * mib),
            1,
            "over budget: one, to see the end"
        );
    }
}
