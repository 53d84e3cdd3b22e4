//! Run-time administration: filters, the on/off switch, the history and the stats.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::history::History;
use crate::stats::{BusStats, SubscriberStats};
use crate::subscription::Delivery;
use crate::{BusError, Condition, Event, EventBus, Pattern, Validator};

impl EventBus {
    /// Adds a pattern to the allow-list; once any is set, only matching events are accepted.
    pub fn add_filter(&self, pattern: &str) -> Result<(), BusError> {
        let pattern = Pattern::new(pattern)?;
        let mut reg = self.inner.lock();
        if !reg.filters.contains(&pattern) {
            reg.filters.push(pattern);
            self.inner.republish(&mut reg);
        }
        Ok(())
    }

    /// Removes a pattern from the allow-list; false if it was not there.
    pub fn remove_filter(&self, pattern: &str) -> bool {
        let mut reg = self.inner.lock();
        let before = reg.filters.len();
        reg.filters.retain(|p| p.as_str() != pattern);
        let removed = reg.filters.len() != before;
        if removed {
            self.inner.republish(&mut reg);
        }
        removed
    }

    /// Empties the allow-list: every event is accepted again.
    pub fn clear_filters(&self) {
        let mut reg = self.inner.lock();
        reg.filters.clear();
        self.inner.republish(&mut reg);
    }

    /// Replaces the allow-list in one step; on a bad pattern nothing changes.
    pub fn set_filters<I, S>(&self, patterns: I) -> Result<(), BusError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let filters = patterns
            .into_iter()
            .map(|p| Pattern::new(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut reg = self.inner.lock();
        reg.filters = filters;
        self.inner.republish(&mut reg);
        Ok(())
    }

    /// Gives the allow-list a content condition (see [`EventBusBuilder::filter_where`]), or
    /// takes it away with `None`.
    ///
    /// [`EventBusBuilder::filter_where`]: crate::EventBusBuilder::filter_where
    pub fn set_filter_where(&self, condition: Option<Arc<dyn Condition>>) {
        let mut reg = self.inner.lock();
        reg.gates.filter_where = condition;
        self.inner.republish(&mut reg);
    }

    /// The allow-list's condition as written, if it has one.
    pub fn filter_where(&self) -> Option<String> {
        let reg = self.inner.lock();
        reg.gates
            .filter_where
            .as_ref()
            .map(|c| c.source().to_owned())
    }

    /// Installs (or with `None` removes) the payload check every published event passes
    /// first (see [`EventBusBuilder::validator`]); in one step, as a schema reload needs.
    ///
    /// [`EventBusBuilder::validator`]: crate::EventBusBuilder::validator
    pub fn set_validator(&self, validator: Option<Arc<dyn Validator>>) {
        let mut reg = self.inner.lock();
        reg.gates.validator = validator;
        self.inner.republish(&mut reg);
    }

    /// The allow-list, as written.
    pub fn filters(&self) -> Vec<String> {
        self.inner
            .lock()
            .filters
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect()
    }

    /// Turns the bus on or off; while off, `publish` returns false and records nothing.
    pub fn set_enabled(&self, enabled: bool) {
        self.inner.flags.enabled.store(enabled, Ordering::SeqCst);
    }

    /// Whether the bus accepts events.
    pub fn is_enabled(&self) -> bool {
        self.inner.flags.enabled.load(Ordering::SeqCst)
    }

    // ----- history ----------------------------------------------------------------------

    /// Up to `limit` of the most recent accepted events, oldest first (0 gives none).
    pub fn recent_events(&self, limit: usize) -> Vec<Event> {
        let history = self.inner.lock().history.clone();
        let mut events = history.events();
        let skip = events.len().saturating_sub(limit);
        events.drain(..skip);
        events
    }

    /// Forgets the recorded events.
    pub fn clear_history(&self) {
        let history = self.inner.lock().history.clone();
        history.clear();
    }

    /// Bounds the history by bytes too (0: by count only): each event counts as the size of
    /// its JSON text (type included), and recording past the budget drops the oldest events.
    /// An event larger than the whole budget is not kept. Takes effect at once.
    pub fn set_history_max_bytes(&self, bytes: usize) {
        let history = self.inner.lock().history.clone();
        history.set_max_bytes(bytes);
    }

    /// The bytes the history holds now, as its byte budget counts them (0 without one).
    pub fn history_bytes(&self) -> usize {
        self.inner.lock().history.bytes()
    }

    /// Changes how many events the history keeps (0 turns it off), keeping the newest ones.
    pub fn set_history_size(&self, n: usize) {
        let fresh = Arc::new(History::new(n, self.inner.id_order));
        let old = {
            let mut reg = self.inner.lock();
            if reg.history.capacity() == n {
                return;
            }
            let old = std::mem::replace(&mut reg.history, fresh.clone());
            self.inner.republish(&mut reg);
            old
        };
        fresh.set_max_bytes(old.max_bytes());
        let kept = old.events();
        let ring = fresh.ring(crate::shard::SHARED_SLOT);
        for event in &kept[kept.len().saturating_sub(n)..] {
            fresh.record(&ring, event);
        }
    }

    // ----- stats ------------------------------------------------------------------------

    /// A snapshot of the counters, with one row per subscription.
    pub fn stats(&self) -> BusStats {
        let (subs, filter_count, history, retired_failed, retired_dropped) = {
            let reg = self.inner.lock();
            (
                reg.subs.clone(),
                reg.filters.len(),
                reg.history.clone(),
                reg.retired_failed,
                reg.retired_dropped,
            )
        };
        let (mut published, mut filtered, mut last) = (0, 0, 0);
        self.inner.totals.for_each(|c| {
            published += c.published.load(Ordering::Relaxed);
            filtered += c.filtered.load(Ordering::Relaxed);
            last = last.max(c.last_event_nanos.load(Ordering::Relaxed));
        });
        let subscribers: Vec<SubscriberStats> = subs.iter().map(|s| s.stats_row()).collect();
        BusStats {
            events_published: published,
            events_filtered: filtered,
            events_failed: retired_failed + subscribers.iter().map(|r| r.failed).sum::<u64>(),
            last_event_time: crate::time::from_unix_nanos(last).map(crate::time::rfc3339),
            enabled: self.is_enabled(),
            filters_active: filter_count > 0,
            filter_count,
            history_size: history.len(),
            history_capacity: history.capacity(),
            events_dropped: retired_dropped + subscribers.iter().map(|r| r.dropped).sum::<u64>(),
            stats_resets: self.inner.resets.load(Ordering::Relaxed),
            subscribers,
        }
    }

    /// Zeroes every counter (`stats_resets` counts the resets).
    pub fn reset_stats(&self) {
        let mut reg = self.inner.lock();
        reg.retired_failed = 0;
        reg.retired_dropped = 0;
        self.inner.totals.for_each(|c| {
            c.published.store(0, Ordering::Relaxed);
            c.filtered.store(0, Ordering::Relaxed);
            c.last_event_nanos.store(0, Ordering::Relaxed);
        });
        for sub in &reg.subs {
            match &sub.delivery {
                Delivery::Sync(h) => h.counters.for_each(|c| {
                    c.delivered.store(0, Ordering::Relaxed);
                    c.failed.store(0, Ordering::Relaxed);
                }),
                Delivery::Queued { queue, .. } => queue.reset_counters(),
            }
        }
        self.inner.resets.fetch_add(1, Ordering::Relaxed);
    }
}
