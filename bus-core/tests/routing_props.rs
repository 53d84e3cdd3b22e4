//! Property tests: routing (indexes plus per-thread caches) agrees with a brute-force scan.

use std::sync::{Arc, Mutex};

use bus_core::{Event, EventBus};
use proptest::prelude::*;
use serde_json::Value;
use wildmatch::WildMatch;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn routing_matches_a_brute_force_scan(
        patterns in prop::collection::vec("[ab]{0,2}[.*?]?[ab*]{0,2}", 1..12),
        filters in prop::collection::vec("[ab]{0,1}[*]?", 0..3),
        removed in prop::collection::vec(any::<bool>(), 12),
        events in prop::collection::vec("[ab.]{0,5}", 1..30),
    ) {
        let patterns: Vec<String> = patterns.into_iter().filter(|p| !p.is_empty()).collect();
        let filters: Vec<String> = filters.into_iter().filter(|p| !p.is_empty()).collect();
        let bus = EventBus::builder().filters(filters.clone()).build().unwrap();
        let log: Arc<Mutex<Vec<(usize, String)>>> = Arc::new(Mutex::new(Vec::new()));
        let mut live = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let l = log.clone();
            let id = bus.on(p, move |e: &Event| l.lock().unwrap().push((i, e.event_type().to_owned()))).unwrap();
            if removed[i] {
                prop_assert!(bus.unsubscribe(id));
            } else {
                live.push(i);
            }
        }
        let mut expected = Vec::new();
        for e in &events {
            let allowed = filters.is_empty() || filters.iter().any(|f| WildMatch::new(f).matches(e));
            prop_assert_eq!(bus.publish(e, Value::Null), allowed);
            if allowed {
                for &i in &live {
                    if WildMatch::new(&patterns[i]).matches(e) {
                        expected.push((i, e.clone()));
                    }
                }
            }
        }
        prop_assert_eq!(&*log.lock().unwrap(), &expected);
    }
}
