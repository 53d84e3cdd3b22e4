//! Durable consumers: one follower task per [`DurableSubscriber`] that feeds it from the event
//! log, from its saved cursor, so that an event whose `POST /events` got a 2xx reaches it even
//! if the daemon is SIGKILLed before it was delivered (at least once; `event_id` is the log id).
//!
//! A follower:
//! - starts at the consumer's saved cursor ([`EventLog::cursor`]). A consumer that never saved
//!   one starts where its [`StartPosition`](bus_core::StartPosition) says (by default the
//!   log's current end: a new dashboard relay is not flooded with a week of history), and that
//!   position is saved at once, so that nothing appended after the first start is skipped by
//!   a crash before the first acknowledgement;
//! - reads the log in pages of at most [`room`](DurableSubscriber::room) events, keeps those
//!   matching the consumer's patterns, and hands them over in log order with
//!   [`handle_batch`](DurableSubscriber::handle_batch); while the room is 0 it hands over
//!   nothing (backpressure) and waits for [`progressed`](DurableSubscriber::progressed);
//! - when caught up, waits on [`EventLog::subscribe_appends`]: no polling;
//! - saves the cursor at most every [`SAVE_INTERVAL`] while it moves, and at shutdown. The cursor
//!   is the consumer's [`confirmed`](DurableSubscriber::confirmed) id, or, when everything
//!   handed over is confirmed, the last id read (so events the consumer does not want move it
//!   on too);
//! - warns, with the exact count, when retention trimmed events before it read them, and counts
//!   them (`missed` in `GET /stats`, under `"durable"`).
//!
//! At shutdown ([`Followers::stop`]) each follower goes on handing over what the log holds until
//! it is caught up (or most of the time is used), then calls
//! [`on_shutdown`](DurableSubscriber::on_shutdown), saves its cursor a last time and reports what
//! stayed undelivered; the daemon closes the log only after that.
//!
//! The followers' figures and their `GET /stats` object are in `durable_figures.rs`; one
//! follower (its loop, its save cadence and its shutdown drain, which share one state machine)
//! is in `durable_follower.rs`. This module starts and stops them.

use std::sync::Arc;
use std::time::Duration;

use bus_config::{Config, WiringError};
use bus_core::{Attached, DurableSubscriber, Event, Pattern, ShutdownReport, Undelivered};
use bus_store::{EventLog, LogId};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The most often a follower saves its consumer's cursor while it moves.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(100);

/// The configuration the daemon wires: the relay, when on, as a durable consumer (fed from
/// the log, not subscribed to the bus).
pub fn with_durable_consumers(config: &Config) -> Config {
    #[allow(unused_mut)] // without the relay feature there is nothing to change
    let mut config = config.clone();
    #[cfg(feature = "relay")]
    {
        config.relay.config.durable = true;
    }
    config
}

/// A running follower.
struct Running {
    name: String,
    stop: watch::Sender<Option<Instant>>,
    task: JoinHandle<Undelivered>,
}

impl Running {
    /// Spawns `run` (a follower's loop, given the channel its stop deadline comes on).
    fn spawn<F>(name: String, run: impl FnOnce(watch::Receiver<Option<Instant>>) -> F) -> Self
    where
        F: std::future::Future<Output = Undelivered> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(run(stopped));
        Running { name, stop, task }
    }
}

/// The followers of every durable consumer the daemon wired.
pub struct Followers {
    running: Vec<Running>,
    stats: Arc<FollowerStats>,
    /// The consumer groups' figures.
    extra: Vec<Arc<dyn Attached>>,
}

impl std::fmt::Debug for Followers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.running.iter().map(|r| r.name.as_str()).collect();
        f.debug_struct("Followers").field("names", &names).finish()
    }
}

/// Before per-member cursors a consumer on a shared log kept its position under its bare
/// name (`socketio-relay`): when the member's cursor `new` is missing and that `old` one
/// exists, the member starts from it (saved under `new`) instead of from its start position,
/// so an upgrade neither skips nor replays the stream. Answers the adopted position.
pub(crate) async fn adopt_old_cursor(
    log: &dyn EventLog,
    old: &str,
    new: &str,
) -> Result<Option<LogId>, bus_store::StoreError> {
    if log.cursor(new).await?.is_some() {
        return Ok(None);
    }
    let Some(position) = log.cursor(old).await? else {
        return Ok(None);
    };
    log.save_cursor(new, position).await?;
    tracing::info!(cursor = %new, from = %old, position = position.0, "durable consumer takes over the cursor saved before cursors were per member");
    Ok(Some(position))
}

impl Followers {
    /// Starts a follower for every consumer that offers a durable side. On a shared log
    /// (Redis) `member` is this daemon's name there: each consumer's cursor is then
    /// `<consumer>@<member>`, so the daemons on one stream keep their own positions; with a
    /// `group` the consumers share the stream in that consumer group instead (see
    /// [`group`](crate::group)).
    pub async fn start(
        log: &Arc<dyn EventLog>,
        consumers: &[Arc<dyn Attached>],
        member: Option<&str>,
        group: Option<&crate::group::GroupSetup>,
    ) -> Result<Followers, WiringError> {
        let mut running = Vec::new();
        let mut entries = Vec::new();
        let mut extra: Vec<Arc<dyn Attached>> = Vec::new();
        for consumer in consumers.iter().filter_map(|c| c.durable()) {
            if let Some(setup) = group {
                let (follower, stats) =
                    crate::group::GroupFollower::prepare(setup, consumer).await?;
                extra.push(stats);
                let name = follower.name().to_owned();
                running.push(Running::spawn(name, |stopped| follower.run(stopped)));
                continue;
            }
            let cursor = match member {
                Some(member) => {
                    let cursor = format!("{}@{member}", consumer.name());
                    adopt_old_cursor(log.as_ref(), consumer.name(), &cursor)
                        .await
                        .map_err(|e| WiringError {
                            what: "a durable consumer",
                            reason: format!("{}: cannot read its cursor: {e}", consumer.name()),
                        })?;
                    cursor
                }
                None => consumer.name().to_owned(),
            };
            let (follower, figures) = Follower::prepare_as(log.clone(), consumer, cursor).await?;
            entries.push((follower.name.clone(), figures));
            running.push(follower.spawn());
        }
        Ok(Followers {
            running,
            stats: Arc::new(FollowerStats {
                log: log.clone(),
                entries,
            }),
            extra,
        })
    }

    /// `consumers` with the followers' figures added (under `"durable"` in `GET /stats`) when
    /// there are any.
    pub fn with(&self, mut consumers: Vec<Arc<dyn Attached>>) -> Vec<Arc<dyn Attached>> {
        if !self.stats.entries.is_empty() {
            consumers.push(self.stats.clone());
        }
        consumers.extend(self.extra.iter().cloned());
        consumers
    }

    /// Stops every follower within `timeout` (see the module docs) and returns, per consumer,
    /// what stayed undelivered: `queued` still only in the log, `held` by the consumer.
    pub async fn stop(mut self, timeout: Duration) -> Vec<Undelivered> {
        let deadline = Instant::now() + timeout;
        for follower in &self.running {
            follower.stop.send_replace(Some(deadline));
        }
        let mut rows = Vec::new();
        for follower in std::mem::take(&mut self.running) {
            let abort = follower.task.abort_handle();
            // The follower keeps to the deadline itself; the grace covers its last save.
            match tokio::time::timeout_at(deadline + Duration::from_secs(1), follower.task).await {
                Ok(Ok(row)) => rows.push(row),
                Ok(Err(join)) => {
                    tracing::warn!(consumer = %follower.name, "durable follower failed: {join}");
                }
                Err(_) => {
                    abort.abort();
                    tracing::warn!(consumer = %follower.name, "durable follower did not stop in time; its cursor may be behind (events are resent on the next start)");
                }
            }
        }
        rows
    }

    /// Adds the rows of [`stop`](Self::stop) that left something undelivered to `report`.
    pub fn add_to(report: &mut ShutdownReport, rows: Vec<Undelivered>) {
        for row in rows {
            let left = row.queued + row.held;
            if left > 0 {
                report.undelivered += left;
                report.complete = false;
                report.subscribers.push(row);
            }
        }
    }
}

impl Drop for Followers {
    fn drop(&mut self) {
        for follower in &self.running {
            follower.task.abort();
        }
    }
}

#[path = "durable_figures.rs"]
mod figures;
#[path = "durable_follower.rs"]
mod follower;
#[cfg(test)]
#[path = "durable_tests.rs"]
mod tests;

pub use figures::Figures;
use figures::FollowerStats;
pub(crate) use follower::Follower;

/// Hands `batch` to `consumer` in a task of its own, so that a panic in the consumer is a
/// refusal, not the end of whoever feeds it; `Some(reason)` when the batch was refused.
pub(crate) async fn hand_over(
    consumer: &Arc<dyn DurableSubscriber>,
    batch: Vec<Event>,
) -> Option<String> {
    let consumer = consumer.clone();
    match tokio::spawn(async move { consumer.handle_batch(batch).await }).await {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(join) => Some(format!("it panicked: {join}")),
    }
}

/// The compiled type patterns a durable consumer asks for.
pub(crate) fn patterns_of(
    consumer: &dyn DurableSubscriber,
) -> Result<Vec<Pattern>, bus_core::BusError> {
    consumer
        .patterns()
        .iter()
        .map(|p| Pattern::new(p))
        .collect()
}
