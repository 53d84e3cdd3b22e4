//! Per-type event counts, under a cardinality cap, made on the publishing thread.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use metrics::{Counter, Key, Label, Recorder};
use metrics_exporter_prometheus::PrometheusRecorder;

use crate::names::EVENTS_BY_TYPE;

/// The `event_type` label of events past the cardinality cap (and of over-long type names).
pub const OTHER_EVENT_TYPE: &str = "other";

/// Event types longer than this are counted as [`OTHER_EVENT_TYPE`], so one absurd name
/// cannot bloat every scrape.
pub const MAX_EVENT_TYPE_LABEL_BYTES: usize = 200;

/// Per-type counters, registered with the recorder the first time a type is seen.
///
/// [`count`](Self::count) runs inline on every publish (a sync subscription), so the counts
/// are exact at any rate: no queue can drop them. Known types take only the read lock and an
/// atomic add, so concurrent publishers do not serialize on it.
pub(crate) struct EventTypeCounters {
    recorder: Arc<PrometheusRecorder>,
    pub(crate) max_types: usize,
    known: RwLock<HashMap<Box<str>, Counter>>,
    other: Counter,
}

impl EventTypeCounters {
    pub(crate) fn new(recorder: Arc<PrometheusRecorder>, max_types: usize) -> Self {
        let other = register(&recorder, OTHER_EVENT_TYPE);
        EventTypeCounters {
            recorder,
            max_types,
            known: RwLock::new(HashMap::new()),
            other,
        }
    }

    pub(crate) fn count(&self, event_type: &str) {
        if let Some(counter) = self
            .known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(event_type)
        {
            counter.increment(1);
            return;
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        // Another publisher may have registered it between the two locks.
        if let Some(counter) = known.get(event_type) {
            counter.increment(1);
            return;
        }
        if known.len() >= self.max_types
            || event_type.len() > MAX_EVENT_TYPE_LABEL_BYTES
            || event_type == OTHER_EVENT_TYPE
        {
            drop(known);
            self.other.increment(1);
            return;
        }
        let counter = register(&self.recorder, event_type);
        counter.increment(1);
        known.insert(event_type.into(), counter);
    }

    /// Distinct types with a series of their own.
    pub(crate) fn distinct(&self) -> usize {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

fn register(recorder: &PrometheusRecorder, event_type: &str) -> Counter {
    let key = Key::from_parts(
        EVENTS_BY_TYPE.0,
        vec![Label::new("event_type", event_type.to_owned())],
    );
    recorder.register_counter(&key, &crate::METADATA)
}
