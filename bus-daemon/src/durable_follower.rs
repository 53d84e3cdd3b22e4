//! One durable consumer's follower: its loop over the event log, its cursor saves, and its
//! shutdown drain (see the parent module's docs for what it guarantees).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bus_config::WiringError;
use bus_core::{DurableSubscriber, Event, Pattern, StartPosition, Undelivered};
use bus_store::{EventLog, LogId, Page, ReadQuery, StoredEvent};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::{Figures, Running, SAVE_INTERVAL, hand_over, patterns_of};

/// How long a follower waits before offering a refused batch again, or reading again after the
/// log failed.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// The most time the count of undelivered events at shutdown may take; beyond it the id
/// distance to the log's end (an upper bound) is reported.
const COUNT_TIME: Duration = Duration::from_secs(1);

/// One durable consumer's follower, before it runs.
pub(crate) struct Follower {
    log: Arc<dyn EventLog>,
    consumer: Arc<dyn DurableSubscriber>,
    pub(super) name: String,
    /// The name its cursor is saved under.
    cursor: String,
    patterns: Vec<Pattern>,
    figures: Arc<Figures>,
    /// The position it resumed from.
    resume: LogId,
}

impl Follower {
    /// Reads (or, for a new consumer, sets and saves) the start position.
    #[cfg(test)]
    pub(crate) async fn prepare(
        log: Arc<dyn EventLog>,
        consumer: Arc<dyn DurableSubscriber>,
    ) -> Result<(Follower, Arc<Figures>), WiringError> {
        let cursor = consumer.name().to_owned();
        Self::prepare_as(log, consumer, cursor).await
    }

    /// [`prepare`](Self::prepare) with the cursor saved under `cursor`.
    pub(crate) async fn prepare_as(
        log: Arc<dyn EventLog>,
        consumer: Arc<dyn DurableSubscriber>,
        cursor: String,
    ) -> Result<(Follower, Arc<Figures>), WiringError> {
        let name = consumer.name().to_owned();
        let failed = |reason: String| WiringError {
            what: "a durable consumer",
            reason: format!("{name}: {reason}"),
        };
        let patterns = patterns_of(consumer.as_ref()).map_err(|e| failed(e.to_string()))?;
        let saved = log
            .cursor(&cursor)
            .await
            .map_err(|e| failed(format!("cannot read its cursor: {e}")))?;
        let resume = match saved {
            Some(position) => position,
            None => {
                let position = match consumer.start_position() {
                    StartPosition::End => log.last_id().unwrap_or(LogId(0)),
                    StartPosition::Beginning => log
                        .first_id()
                        .map_or_else(|| log.last_id().unwrap_or(LogId(0)), |f| LogId(f.0 - 1)),
                };
                log.save_cursor(&cursor, position)
                    .await
                    .map_err(|e| failed(format!("cannot save its first cursor: {e}")))?;
                position
            }
        };
        let figures = Arc::new(Figures::default());
        figures.position.store(resume.0, Ordering::Relaxed);
        figures.read.store(resume.0, Ordering::Relaxed);
        tracing::info!(consumer = %name, %cursor, position = resume.0, new = saved.is_none(), "durable consumer follows the event log");
        let follower = Follower {
            log,
            consumer,
            name,
            cursor,
            patterns,
            figures: figures.clone(),
            resume,
        };
        Ok((follower, figures))
    }

    pub(super) fn spawn(self) -> Running {
        Running::spawn(self.name.clone(), |stopped| self.run(stopped))
    }

    /// Follows the log until `stop` holds a deadline; returns what stayed undelivered.
    pub(crate) async fn run(self, mut stop: watch::Receiver<Option<Instant>>) -> Undelivered {
        let mut appends = self.log.subscribe_appends();
        let mut at = Place {
            read: self.resume,
            handed: None,
            saved: self.resume,
            last_save: Instant::now(),
            next_save: None,
        };
        let mut need_read = true;
        let mut retry_at: Option<Instant> = None;
        let mut log_open = true;
        // The deadline, and until when to go on handing over what the log holds.
        let mut stopping: Option<(Instant, Instant)> = None;
        loop {
            if stopping.is_none() {
                stopping = stop.borrow_and_update().map(|deadline| {
                    let left = deadline.saturating_duration_since(Instant::now());
                    (deadline, deadline - (left / 4).min(MAX_CONSUMER_SHUTDOWN))
                });
                // A read that found the log caught up before the stop may predate appends
                // made since: the drain ends only after a read begun once the stop is seen.
                need_read |= stopping.is_some();
            }
            self.save(&mut at, false).await;
            if let Some((_, drain_end)) = stopping
                && (!need_read || Instant::now() >= drain_end)
            {
                break;
            }
            if retry_at.is_some_and(|t| Instant::now() >= t) {
                retry_at = None;
            }
            let room = self.consumer.room();
            if need_read && room > 0 && retry_at.is_none() {
                // Marks the current end as seen before reading, so an append during the read
                // still wakes the wait below.
                appends.borrow_and_update();
                match self.step(&mut at, room).await {
                    Ok(more) => need_read = more,
                    Err(()) => retry_at = Some(Instant::now() + RETRY_PAUSE),
                }
                if need_read && retry_at.is_none() {
                    continue;
                }
            }
            // What the last step confirmed (or skipped) must get a save or a save timer.
            self.save(&mut at, false).await;
            let deadline = stopping.map(|(_, drain_end)| drain_end);
            tokio::select! {
                changed = appends.changed(), if log_open && !need_read => {
                    if changed.is_ok() { need_read = true } else { log_open = false }
                }
                () = self.consumer.progressed() => {}
                () = sleep_until(at.next_save.unwrap_or_else(Instant::now)), if at.next_save.is_some() => {}
                () = sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {}
                _ = stop.changed(), if deadline.is_none() => {}
                () = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            }
        }
        let deadline = stopping.map_or_else(Instant::now, |(deadline, _)| deadline);
        let held = self
            .consumer
            .on_shutdown(deadline.saturating_duration_since(Instant::now()))
            .await;
        self.save(&mut at, true).await;
        let queued = self.count_unread(at.read).await;
        if held + queued > 0 {
            tracing::info!(consumer = %self.name, held, queued, position = at.saved.0, "durable consumer stopped with undelivered events; they stay in the log and are delivered from its cursor on the next start");
        } else {
            tracing::info!(consumer = %self.name, position = at.saved.0, "durable consumer stopped, caught up");
        }
        Undelivered {
            name: self.name.clone(),
            queued,
            held,
        }
    }

    /// Reads one page after `at.read` and hands the matching events over. `Ok(true)` when
    /// the log holds more after it.
    async fn step(&self, at: &mut Place, room: usize) -> Result<bool, ()> {
        let page = match self.log.read(ReadQuery::after(Some(at.read), room)).await {
            Ok(page) => page,
            Err(error) => {
                Figures::add(&self.figures.failures, 1);
                tracing::warn!(consumer = %self.name, %error, "durable consumer: cannot read the event log; trying again in {RETRY_PAUSE:?}");
                return Err(());
            }
        };
        let Page {
            events,
            next,
            missed,
        } = page;
        if missed > 0 {
            Figures::add(&self.figures.missed, missed);
            tracing::warn!(
                consumer = %self.name,
                missed,
                after = at.read.0,
                "durable consumer missed {missed} events: retention trimmed them from the event log before they were delivered"
            );
        }
        // Ids are dense: the trimmed ones are the next `missed` after `at.read`.
        let mut read = LogId(at.read.0 + missed);
        if let Some(last) = events.last() {
            read = read.max(last.id);
        }
        let batch: Vec<Event> = events
            .iter()
            .filter(|e| self.patterns.iter().any(|p| p.matches(&e.event_type)))
            .filter_map(|e| self.to_event(e))
            .collect();
        if let Some(last) = batch.last().map(Event::id) {
            let count = batch.len() as u64;
            if let Some(reason) = hand_over(&self.consumer, batch).await {
                Figures::add(&self.figures.failures, 1);
                tracing::warn!(consumer = %self.name, %reason, "durable consumer refused a batch of {count}; offering it again in {RETRY_PAUSE:?}");
                return Err(());
            }
            at.handed = Some(last);
            Figures::add(&self.figures.handed, count);
            Figures::add(&self.figures.batches, 1);
        }
        at.read = read;
        self.figures.read.store(read.0, Ordering::Relaxed);
        Ok(next.is_some())
    }

    fn to_event(&self, stored: &StoredEvent) -> Option<Event> {
        match stored.to_event() {
            Ok(event) => Some(event),
            Err(error) => {
                // The log checks JSON on the way in: this means a damaged store.
                Figures::add(&self.figures.failures, 1);
                tracing::warn!(consumer = %self.name, id = stored.id.0, %error, "durable consumer: skipping a stored event whose data is not JSON");
                None
            }
        }
    }

    /// The position everything up to which is delivered (or not wanted).
    fn position(&self, at: &Place) -> LogId {
        let position = match at.handed {
            None => at.read,
            Some(handed) => match self.consumer.confirmed() {
                Some(confirmed) if confirmed >= handed => at.read,
                Some(confirmed) => LogId(confirmed),
                None => self.resume,
            },
        };
        position.max(at.saved)
    }

    /// Saves the position if it moved and the last save is [`SAVE_INTERVAL`] old (or `now`).
    async fn save(&self, at: &mut Place, now: bool) {
        let position = self.position(at);
        if position <= at.saved {
            at.next_save = None;
            return;
        }
        let due = at.last_save + SAVE_INTERVAL;
        if !now && Instant::now() < due {
            at.next_save = Some(due);
            return;
        }
        at.last_save = Instant::now();
        match self.log.save_cursor(&self.cursor, position).await {
            Ok(()) => {
                at.saved = position;
                at.next_save = None;
                self.figures.position.store(position.0, Ordering::Relaxed);
                Figures::add(&self.figures.saves, 1);
            }
            Err(error) => {
                Figures::add(&self.figures.save_errors, 1);
                at.next_save = Some(at.last_save + SAVE_INTERVAL);
                tracing::warn!(consumer = %self.name, %error, position = position.0, "durable consumer: cannot save its cursor");
            }
        }
    }

    /// How many wanted events the log holds after `read`: counted for up to [`COUNT_TIME`],
    /// then bounded by the id distance to the log's end.
    async fn count_unread(&self, read: LogId) -> u64 {
        let until = Instant::now() + COUNT_TIME;
        let mut after = read;
        let mut count = 0;
        loop {
            if Instant::now() >= until {
                let last = self.log.last_id().map_or(0, |id| id.0);
                return count + last.saturating_sub(after.0);
            }
            let Ok(page) = self.log.read(ReadQuery::after(Some(after), 10_000)).await else {
                let last = self.log.last_id().map_or(0, |id| id.0);
                return count + last.saturating_sub(after.0);
            };
            count += page
                .events
                .iter()
                .filter(|e| self.patterns.iter().any(|p| p.matches(&e.event_type)))
                .count() as u64;
            match page.next {
                Some(next) => after = next,
                None => return count,
            }
        }
    }
}

/// Of the shutdown time, a quarter, at most this, is kept for the consumer's own
/// [`on_shutdown`](DurableSubscriber::on_shutdown) after handing over the log's rest.
const MAX_CONSUMER_SHUTDOWN: Duration = Duration::from_secs(5);

/// Where a follower is.
struct Place {
    /// Everything up to here was read.
    read: LogId,
    /// The last id handed over in this run.
    handed: Option<u64>,
    /// The position saved last.
    saved: LogId,
    last_save: Instant,
    /// When a save that is not due yet will be.
    next_save: Option<Instant>,
}
