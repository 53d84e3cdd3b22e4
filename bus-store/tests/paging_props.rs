//! Property: paging with any limit, `after`, `since` and pattern returns exactly the events
//! a plain filter over everything appended would, in order, on both backends.

mod common;

use std::time::{Duration, SystemTime};

use bus_store::{LogId, ReadQuery, RetentionPolicy};
use common::{BACKENDS, event_at, subject};
use proptest::prelude::*;
use wildmatch::WildMatch;

const TYPES: [&str; 4] = ["hook.pre", "hook.post", "agent", "hook"];
const PATTERNS: [&str; 5] = ["*", "hook.*", "hook?", "agent", "h*k"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn paging_matches_a_plain_filter(
        events in prop::collection::vec((0..TYPES.len(), 0u64..100), 0..120),
        limit in 1usize..40,
        after in prop::option::of(0u64..130),
        since in prop::option::of(0u64..100),
        pattern in prop::option::of(0..PATTERNS.len()),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let t0 = SystemTime::now() - Duration::from_secs(3600);
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        for backend in BACKENDS {
            let subject = subject(backend, RetentionPolicy { max_events: u64::MAX, max_age: Duration::MAX });
            let log = &*subject.log;
            let got: Vec<u64> = rt.block_on(async {
                let batch = events.iter().enumerate().map(|(n, &(t, secs))| event_at(TYPES[t], n as u64, at(secs))).collect();
                log.append(batch).await.unwrap();
                let mut query = ReadQuery {
                    after: after.map(LogId),
                    since: since.map(at),
                    pattern: pattern.map(|p| PATTERNS[p].to_owned()),
                    limit,
                };
                let mut got = Vec::new();
                loop {
                    let page = log.read(query.clone()).await.unwrap();
                    assert!(page.events.len() <= limit);
                    assert_eq!(page.missed, 0);
                    if page.next.is_some() {
                        assert_eq!(page.events.len(), limit, "a page with more after it is full");
                        assert_eq!(page.next, page.events.last().map(|e| e.id));
                    }
                    got.extend(page.events.iter().map(|e| e.id.0));
                    match page.next {
                        Some(next) => query.after = Some(next),
                        None => return got,
                    }
                }
            });
            let expected: Vec<u64> = events.iter().enumerate()
                .map(|(n, &(t, secs))| (n as u64 + 1, TYPES[t], secs))
                .filter(|&(id, _, _)| after.is_none_or(|a| id > a))
                .filter(|&(_, _, secs)| since.is_none_or(|s| secs >= s))
                .filter(|&(_, t, _)| pattern.is_none_or(|p| WildMatch::new(PATTERNS[p]).matches(t)))
                .map(|(id, _, _)| id)
                .collect();
            prop_assert_eq!(&got, &expected, "{}", backend);
        }
    }
}
