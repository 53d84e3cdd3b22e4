//! The immutable view of subscriptions and filters that a publish reads, and its match index.
//!
//! A registry change builds a new [`Snapshot`] rather than editing one in place, so a publish
//! never takes the registry lock; the index is built lazily because a burst of changes would
//! otherwise pay for indexes nobody reads.

use std::sync::{Arc, OnceLock};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::Pattern;
use crate::content::Gates;
use crate::history::History;
use crate::subscription::Subscription;

/// Everything a publish reads, immutable once built.
pub(crate) struct Snapshot {
    pub(crate) subs: Vec<Arc<Subscription>>,
    pub(crate) filters: Vec<Pattern>,
    pub(crate) history: Arc<History>,
    pub(crate) gates: Gates,
    /// Built on the first route miss, so a burst of subscriptions costs no index builds.
    index: OnceLock<Index>,
}

struct Index {
    exact: FxHashMap<Box<str>, Vec<usize>>,
    wild: Vec<(usize, Pattern)>,
    filter_exact: FxHashSet<Box<str>>,
    filter_wild: Vec<Pattern>,
}

impl Snapshot {
    pub(crate) fn new(
        subs: Vec<Arc<Subscription>>,
        filters: Vec<Pattern>,
        history: Arc<History>,
        gates: Gates,
    ) -> Self {
        Snapshot {
            subs,
            filters,
            history,
            gates,
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> &Index {
        self.index.get_or_init(|| {
            let mut exact: FxHashMap<Box<str>, Vec<usize>> = FxHashMap::default();
            let mut wild = Vec::new();
            for (i, sub) in self.subs.iter().enumerate() {
                for p in &sub.patterns {
                    if p.is_exact() {
                        exact.entry(p.as_str().into()).or_default().push(i);
                    } else {
                        wild.push((i, p.clone()));
                    }
                }
            }
            let (exact_filters, wild_filters): (Vec<_>, Vec<_>) =
                self.filters.iter().cloned().partition(Pattern::is_exact);
            Index {
                exact,
                wild,
                filter_exact: exact_filters.iter().map(|p| p.as_str().into()).collect(),
                filter_wild: wild_filters,
            }
        })
    }

    /// True when the filters let `event_type` through (no filters: everything passes).
    pub(crate) fn allows(&self, event_type: &str) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        let index = self.index();
        index.filter_exact.contains(event_type)
            || index.filter_wild.iter().any(|p| p.matches(event_type))
    }

    /// Indexes into `subs` of the subscriptions `event_type` reaches, in subscription order.
    pub(crate) fn matching(&self, event_type: &str) -> Vec<usize> {
        let index = self.index();
        let mut hits: Vec<usize> = index.exact.get(event_type).cloned().unwrap_or_default();
        hits.extend(
            index
                .wild
                .iter()
                .filter(|(_, p)| p.matches(event_type))
                .map(|(i, _)| *i),
        );
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}
