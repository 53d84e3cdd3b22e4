//! [`MemoryLog`]: the contract kept in memory, for `CLAUDE_MPM_EVENTBUS_STORE=memory` and tests.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::PAGE_MAX_BYTES;
use crate::filter::Filter;
use crate::log::check_consumer_name;
use crate::types::{from_micros, missed_after, to_micros};
use crate::{
    EventLog, LogId, NewEvent, Page, ReadQuery, RetentionPolicy, StoreError, StoreStats,
    StoredEvent,
};

/// How often age-based retention looks at the oldest events.
const AGE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// An [`EventLog`] in memory: ids from 1, bounded by its [`RetentionPolicy`], lost on exit.
pub struct MemoryLog {
    retention: RetentionPolicy,
    state: Mutex<State>,
    appends: watch::Sender<Option<LogId>>,
}

struct State {
    events: VecDeque<StoredEvent>,
    last_id: u64,
    cursors: HashMap<String, LogId>,
    appended: u64,
    commits: u64,
    trimmed: u64,
    last_age_check: Instant,
    closed: bool,
}

impl State {
    fn first_id(&self) -> Option<LogId> {
        self.events.front().map(|event| event.id)
    }

    fn last_id(&self) -> Option<LogId> {
        (self.last_id > 0).then_some(LogId(self.last_id))
    }

    fn trim(&mut self, retention: &RetentionPolicy, now: Instant) {
        let max = usize::try_from(retention.max_events).unwrap_or(usize::MAX);
        let excess = self.events.len().saturating_sub(max);
        self.events.drain(..excess);
        self.trimmed += excess as u64;
        if now.duration_since(self.last_age_check) >= AGE_CHECK_INTERVAL {
            self.last_age_check = now;
            let cutoff = SystemTime::now()
                .checked_sub(retention.max_age)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            while self.events.front().is_some_and(|e| e.timestamp < cutoff) {
                self.events.pop_front();
                self.trimmed += 1;
            }
        }
    }
}

impl MemoryLog {
    /// An empty log.
    pub fn new(retention: RetentionPolicy) -> Self {
        let (appends, _) = watch::channel(None);
        Self {
            retention,
            state: Mutex::new(State {
                events: VecDeque::new(),
                last_id: 0,
                cursors: HashMap::new(),
                appended: 0,
                commits: 0,
                trimmed: 0,
                // Let the first append check ages at once.
                last_age_check: Instant::now()
                    .checked_sub(AGE_CHECK_INTERVAL)
                    .unwrap_or_else(Instant::now),
                closed: false,
            }),
            appends,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned log is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new(RetentionPolicy::default())
    }
}

#[async_trait]
impl EventLog for MemoryLog {
    fn write_id(&self, id: LogId, out: &mut String) {
        // Decimal, as the default `format_id`, without the String.
        out.push_str(itoa::Buffer::new().format(id.0));
    }

    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<LogId>, StoreError> {
        let mut state = self.state();
        if state.closed {
            return Err(StoreError::Closed);
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(batch.len());
        for event in batch {
            state.last_id += 1;
            let id = LogId(state.last_id);
            ids.push(id);
            state.events.push_back(StoredEvent {
                id,
                event_type: event.event_type,
                data: event.data,
                // The SQLite backend keeps microseconds: behave the same.
                timestamp: from_micros(to_micros(event.timestamp)),
                priority: event.priority,
            });
        }
        state.appended += ids.len() as u64;
        state.commits += 1;
        state.trim(&self.retention, Instant::now());
        let last = state.last_id();
        drop(state);
        self.appends.send_replace(last);
        Ok(ids)
    }

    async fn read(&self, query: ReadQuery) -> Result<Page, StoreError> {
        let filter = Filter::new(&query);
        let limit = query.limit.max(1);
        let state = self.state();
        let missed = missed_after(query.after, state.first_id(), state.last_id());
        let start = match (query.after, state.first_id()) {
            (Some(after), Some(first)) => {
                usize::try_from((after.0 + 1).saturating_sub(first.0)).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let mut events = Vec::new();
        let mut more = false;
        let mut bytes = 0usize;
        for event in state.events.iter().skip(start) {
            if events.len() == limit || bytes >= PAGE_MAX_BYTES {
                more = true;
                break;
            }
            if filter.accepts_at(&event.event_type, event.timestamp) {
                bytes += event.data.as_str().len();
                events.push(event.clone());
            }
        }
        Ok(Page::scanned(events, more, missed))
    }

    async fn read_last(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let state = self.state();
        let mut bytes = 0usize;
        let mut events: Vec<StoredEvent> = state
            .events
            .iter()
            .rev()
            .take(limit)
            .take_while(|event| {
                let fits = bytes < PAGE_MAX_BYTES;
                bytes += event.data.as_str().len();
                fits
            })
            .cloned()
            .collect();
        events.reverse();
        Ok(events)
    }

    fn first_id(&self) -> Option<LogId> {
        self.state().first_id()
    }

    fn last_id(&self) -> Option<LogId> {
        self.state().last_id()
    }

    fn subscribe_appends(&self) -> watch::Receiver<Option<LogId>> {
        self.appends.subscribe()
    }

    async fn save_cursor(&self, consumer: &str, id: LogId) -> Result<(), StoreError> {
        check_consumer_name(consumer)?;
        let mut state = self.state();
        if state.closed {
            return Err(StoreError::Closed);
        }
        state.cursors.insert(consumer.to_owned(), id);
        Ok(())
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<LogId>, StoreError> {
        check_consumer_name(consumer)?;
        Ok(self.state().cursors.get(consumer).copied())
    }

    fn stats(&self) -> StoreStats {
        let state = self.state();
        StoreStats {
            backend: "memory".to_owned(),
            appended: state.appended,
            commits: state.commits,
            trimmed: state.trimmed,
            stored: state.events.len() as u64,
            first_id: state.first_id(),
            last_id: state.last_id(),
            bytes_on_disk: None,
        }
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.state().closed = true;
        Ok(())
    }
}
