//! [`LogFeed`]: the fan-out of a shared log into one process's bus, in log order, from a
//! saved cursor (the type's docs say how).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bus_core::reconnect::Backoff;
use bus_core::{Event, EventBus, Refusal};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::{EventLog, LogId, ReadQuery, StoreError, StoredEvent};

/// The most often a feed saves its cursor while it moves.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// Events read from the log per step.
const BATCH: usize = 1000;

/// A feed's counters, for `GET /stats` (see [`LogFeed::to_json`]).
#[derive(Debug, Default)]
struct Figures {
    position: AtomicU64,
    dispatched: AtomicU64,
    refused: AtomicU64,
    missed: AtomicU64,
    failures: AtomicU64,
}

fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// What a stopped feed left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedReport {
    /// The cursor saved last: everything up to it was dispatched.
    pub position: LogId,
    /// Events of the log after it that were not dispatched (deadline reached, log down).
    pub behind: u64,
}

/// A running feed: the fan-out of a log that other writers share (several daemons on one
/// Redis stream) into one process's [`EventBus`]. Every event of the log, whichever writer
/// appended it, is dispatched to the local bus in log order, once each, from a cursor saved
/// under the feed's name, so that a restart resumes where the last run stopped.
///
/// The feed is the only dispatcher of a [shared](crate::DurableBus::shared)
/// [`DurableBus`](crate::DurableBus): its own publishes are appended and reach the bus through
/// the feed like everyone else's, so the local consumers see one order, the log's.
///
/// The log keeps a publisher's priority with its event, so events reach the bus with it, as
/// with durable consumers and replays; the others get the priority the consumers' rules give.
///
/// After a crash (no final save) the feed resumes from the cursor it saved last, at most
/// [`FEED_SAVE_INTERVAL`](crate::FEED_SAVE_INTERVAL) behind: those events are dispatched
/// again (at least once).
///
/// Dropping it aborts the task without a final save; [`stop`](Self::stop) drains and saves.
pub struct LogFeed {
    status: FeedStatus,
    stop: watch::Sender<Option<Instant>>,
    task: Option<JoinHandle<LogId>>,
}

impl std::fmt::Debug for LogFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogFeed")
            .field("name", &self.status.name())
            .field("position", &self.status.position())
            .finish_non_exhaustive()
    }
}

/// Where a running feed is, for stats: a cheap clone that outlives neither the log nor
/// anything else it names.
#[derive(Clone)]
pub struct FeedStatus {
    name: Arc<str>,
    log: Arc<dyn EventLog>,
    figures: Arc<Figures>,
}

impl std::fmt::Debug for FeedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_json().to_string())
    }
}

impl FeedStatus {
    /// The cursor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Everything up to this id has been dispatched (or skipped as trimmed).
    pub fn position(&self) -> LogId {
        LogId(self.figures.position.load(Ordering::Relaxed))
    }

    /// How many ids the feed is behind the log's newest.
    pub fn lag(&self) -> u64 {
        let last = self.log.last_id().map_or(0, |id| id.0);
        last.saturating_sub(self.position().0)
    }

    /// The feed's figures: `position` (formatted as the log's ids), `lag` (ids behind the
    /// log's newest), `dispatched`, `refused` (by the bus's filters, or while it is off),
    /// `missed` (trimmed before the feed read them), `failures` (failed reads and saves).
    pub fn to_json(&self) -> Value {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "name": &*self.name,
            "position": self.log.format_id(self.position()),
            "lag": self.lag(),
            "dispatched": load(&self.figures.dispatched),
            "refused": load(&self.figures.refused),
            "missed": load(&self.figures.missed),
            "failures": load(&self.figures.failures),
        })
    }
}

/// What the task needs.
struct Runner {
    name: String,
    log: Arc<dyn EventLog>,
    bus: EventBus,
    wait_for_room: bool,
    figures: Arc<Figures>,
    /// Whether the last read failed (so a long outage warns once).
    failing: AtomicBool,
}

impl LogFeed {
    /// Starts feeding `bus` from `log` under the cursor `name`: from its saved cursor, or, the
    /// first time, from the log's current end (saved at once, so nothing appended after the
    /// first start is skipped by a crash). Must be called inside a tokio runtime.
    pub(crate) async fn start(
        name: &str,
        log: Arc<dyn EventLog>,
        bus: EventBus,
        wait_for_room: bool,
    ) -> Result<LogFeed, StoreError> {
        let resume = match log.cursor(name).await? {
            Some(saved) => saved,
            None => {
                let end = log.last_id().unwrap_or(LogId(0));
                log.save_cursor(name, end).await?;
                end
            }
        };
        tracing::info!(feed = name, position = %log.format_id(resume), "the bus follows the shared event log");
        let figures = Arc::new(Figures::default());
        figures.position.store(resume.0, Ordering::Relaxed);
        let runner = Runner {
            name: name.to_owned(),
            log: log.clone(),
            bus,
            wait_for_room,
            figures: figures.clone(),
            failing: AtomicBool::new(false),
        };
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(runner.run(resume, stopped));
        Ok(LogFeed {
            status: FeedStatus {
                name: Arc::from(name),
                log,
                figures,
            },
            stop,
            task: Some(task),
        })
    }

    /// Where the feed is (a clone that stays valid after the feed stopped).
    pub fn status(&self) -> FeedStatus {
        self.status.clone()
    }

    /// Dispatches what the log holds until caught up or `timeout` is over, saves the cursor
    /// and stops.
    pub async fn stop(mut self, timeout: Duration) -> FeedReport {
        let deadline = Instant::now() + timeout;
        self.stop.send_replace(Some(deadline));
        let position = match self.task.take() {
            Some(task) => {
                let abort = task.abort_handle();
                match tokio::time::timeout_at(deadline + Duration::from_secs(1), task).await {
                    Ok(Ok(position)) => position,
                    Ok(Err(join)) => {
                        tracing::warn!(feed = %self.status.name, "the bus feed failed: {join}");
                        self.status.position()
                    }
                    Err(_) => {
                        abort.abort();
                        self.status.position()
                    }
                }
            }
            None => self.status.position(),
        };
        let last = self.status.log.last_id().map_or(0, |id| id.0);
        FeedReport {
            position,
            behind: last.saturating_sub(position.0),
        }
    }
}

impl Drop for LogFeed {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Runner {
    /// Feeds until stopped; returns the position saved last.
    async fn run(self, resume: LogId, mut stop: watch::Receiver<Option<Instant>>) -> LogId {
        let mut appends = self.log.subscribe_appends();
        let mut at = resume;
        let mut saved = resume;
        let mut backoff = crate::LOG_RECONNECT.backoff();
        let mut last_save = Instant::now();
        loop {
            // Seen before reading: an append during the read still wakes the wait below.
            appends.borrow_and_update();
            // A read that began before the stop was asked for may have been caught up with
            // a log the publisher appended to afterwards: only a read begun after it ends
            // the drain.
            let stop_seen = stop.borrow_and_update().is_some();
            let more = match self.step(&mut at, &mut backoff, &mut stop).await {
                Ok(more) => more,
                Err(Stop) => break,
            };
            self.save_if_due(at, &mut saved, &mut last_save).await;
            let deadline = *stop.borrow_and_update();
            if deadline.is_some_and(|d| (stop_seen && !more) || Instant::now() >= d) {
                break;
            }
            if more || deadline.is_some() {
                continue;
            }
            let next_save = (at > saved).then_some(last_save + SAVE_INTERVAL);
            tokio::select! {
                changed = appends.changed() => {
                    if changed.is_err() { break }
                }
                _ = stop.changed() => {}
                () = sleep_until(next_save.unwrap_or_else(Instant::now)), if next_save.is_some() => {}
            }
        }
        if at > saved {
            match self.log.save_cursor(&self.name, at).await {
                Ok(()) => saved = at,
                Err(error) => {
                    add(&self.figures.failures, 1);
                    tracing::warn!(feed = %self.name, %error, "the bus feed cannot save its last cursor; the events after it are dispatched again on the next start");
                }
            }
        }
        saved
    }

    /// Reads one page after `at` and dispatches it. `Ok(true)` when the log holds more.
    /// A failed read waits by `backoff` ([`LOG_RECONNECT`](crate::LOG_RECONNECT)), or until
    /// a stop is asked for.
    async fn step(
        &self,
        at: &mut LogId,
        backoff: &mut Backoff,
        stop: &mut watch::Receiver<Option<Instant>>,
    ) -> Result<bool, Stop> {
        let page = match self.log.read(ReadQuery::after(Some(*at), BATCH)).await {
            Ok(page) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    backoff.reset();
                    tracing::info!(feed = %self.name, "the bus feed reads the event log again");
                }
                page
            }
            Err(error) => {
                add(&self.figures.failures, 1);
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(feed = %self.name, %error, "the bus feed cannot read the event log; trying again with backoff");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                    changed = stop.changed() => if changed.is_err() { return Err(Stop) },
                }
                return Ok(true);
            }
        };
        if page.missed > 0 {
            add(&self.figures.missed, page.missed);
            tracing::warn!(feed = %self.name, missed = page.missed, after = at.0, "the bus feed missed {} events: retention trimmed them before it read them", page.missed);
            *at = LogId(at.0 + page.missed);
        }
        for stored in &page.events {
            let Some(event) = self.to_event(stored) else {
                *at = stored.id;
                continue;
            };
            let outcome = if self.wait_for_room {
                self.bus.try_publish_event_async(event).await
            } else {
                self.bus.try_publish_event(event)
            };
            match outcome {
                Ok(_) => add(&self.figures.dispatched, 1),
                Err(Refusal::ShutDown) => return Err(Stop),
                Err(_) => add(&self.figures.refused, 1),
            }
            *at = stored.id;
            self.figures.position.store(at.0, Ordering::Relaxed);
        }
        self.figures.position.store(at.0, Ordering::Relaxed);
        Ok(page.next.is_some())
    }

    fn to_event(&self, stored: &StoredEvent) -> Option<Event> {
        match stored.to_event() {
            Ok(event) => Some(event),
            Err(error) => {
                add(&self.figures.failures, 1);
                tracing::warn!(feed = %self.name, id = stored.id.0, %error, "the bus feed skips a stored event whose data is not JSON");
                None
            }
        }
    }

    async fn save_if_due(&self, at: LogId, saved: &mut LogId, last_save: &mut Instant) {
        if at <= *saved || Instant::now() < *last_save + SAVE_INTERVAL {
            return;
        }
        *last_save = Instant::now();
        match self.log.save_cursor(&self.name, at).await {
            Ok(()) => *saved = at,
            Err(error) => {
                add(&self.figures.failures, 1);
                tracing::warn!(feed = %self.name, %error, "the bus feed cannot save its cursor");
            }
        }
    }
}

/// The bus was shut down: the feed has nowhere to dispatch to.
struct Stop;
