//! A durable consumer in a Redis consumer group (`CLAUDE_MPM_RELAY_GROUP`): the relays of
//! several daemons share the stream, each event handed to one of them.
//!
//! The follower of one member:
//! - first hands over its own pending entries (delivered to it in an earlier run, never
//!   acknowledged: it died), then new ones (`XREADGROUP >`), at most the consumer's
//!   [`room`](DurableSubscriber::room) at a time; entries its patterns do not want are
//!   acknowledged at once;
//! - acknowledges (`XACK`) what the consumer confirmed: the ids up to its
//!   [`confirmed`](DurableSubscriber::confirmed) id, or everything handed over once the
//!   consumer holds nothing (its room is back to what it was at the start);
//! - while it holds nothing, claims (`XAUTOCLAIM`) entries pending with any member for longer
//!   than `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER` and hands them over alone: their ids are
//!   older than what it handed before, so it takes nothing new until the consumer holds
//!   nothing again (a confirmed id says nothing about older ids handed later).
//!
//! At shutdown it stops reading, gives the consumer its drain, acknowledges what was
//! confirmed, and leaves the rest pending: a live member claims it, or this member takes it
//! again on its next start. Delivery is at least once: an entry claimed from a member that
//! was only slow may reach the dashboard twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bus_core::{Attached, DurableSubscriber, Event, Pattern, Undelivered};
use bus_redis::{GroupBatch, GroupRead, RedisGroup, RedisOptions};
use bus_store::{LogId, StoredEvent};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

/// Where the group is and who this member is.
#[derive(Debug, Clone)]
pub struct GroupSetup {
    /// The Redis log's connection and stream.
    pub options: RedisOptions,
    /// `CLAUDE_MPM_RELAY_GROUP`.
    pub group: String,
    /// This daemon's member name (`CLAUDE_MPM_EVENTBUS_REDIS_MEMBER`).
    pub member: String,
    /// `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER`.
    pub claim_after: Duration,
}

/// How long a read of new entries waits when nothing is outstanding (and while something is:
/// acknowledgements are due sooner).
const IDLE_WAIT: Duration = Duration::from_millis(500);
const BUSY_WAIT: Duration = Duration::from_millis(20);
/// The pause after the consumer refused a batch (a failed Redis call waits by
/// [`bus_store::LOG_RECONNECT`] instead).
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// The most often pending entries are looked at for claiming.
const MAX_CLAIM_INTERVAL: Duration = Duration::from_secs(5);

/// The follower's figures, `GET /stats` `"group"`.
#[derive(Debug, Default)]
pub(crate) struct GroupFigures {
    handed: AtomicU64,
    acked: AtomicU64,
    claimed: AtomicU64,
    missed: AtomicU64,
    outstanding: AtomicU64,
    failures: AtomicU64,
}

fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// `"group": {"group", "member", "consumer", "handed", "acked", "claimed", "missed",
/// "outstanding", "failures"}`.
pub(crate) struct GroupStats {
    group: String,
    member: String,
    consumer: String,
    figures: Arc<GroupFigures>,
}

impl Attached for GroupStats {
    fn describe(&self) -> String {
        format!("consumer group {} as {}", self.group, self.member)
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let f = &self.figures;
        Some((
            "group",
            json!({
                "group": self.group,
                "member": self.member,
                "consumer": self.consumer,
                "handed": load(&f.handed),
                "acked": load(&f.acked),
                "claimed": load(&f.claimed),
                "missed": load(&f.missed),
                "outstanding": load(&f.outstanding),
                "failures": load(&f.failures),
            }),
        ))
    }
}

/// One durable consumer's follower in the group.
pub(crate) struct GroupFollower {
    redis: RedisGroup,
    consumer: Arc<dyn DurableSubscriber>,
    name: String,
    patterns: Vec<Pattern>,
    claim_after: Duration,
    figures: Arc<GroupFigures>,
}

/// What is handed over and not acknowledged yet.
#[derive(Default)]
struct Outstanding {
    ids: BTreeSet<u64>,
    /// A claimed batch is out (see the module docs).
    claimed: bool,
}

impl GroupFollower {
    /// Joins the group (creating it at the stream's end when new).
    pub(crate) async fn prepare(
        setup: &GroupSetup,
        consumer: Arc<dyn DurableSubscriber>,
    ) -> Result<(GroupFollower, Arc<dyn Attached>), bus_config::WiringError> {
        let name = consumer.name().to_owned();
        let failed = |reason: String| bus_config::WiringError {
            what: "a durable consumer in a Redis consumer group",
            reason: format!("{name} in group {}: {reason}", setup.group),
        };
        let patterns =
            crate::durable::patterns_of(consumer.as_ref()).map_err(|e| failed(e.to_string()))?;
        let redis = RedisGroup::join(&setup.options, &setup.group, &setup.member)
            .await
            .map_err(|e| failed(format!("cannot join it: {e}")))?;
        tracing::info!(consumer = %name, group = %setup.group, member = %setup.member, "durable consumer shares the stream in a consumer group");
        let figures = Arc::new(GroupFigures::default());
        let stats = Arc::new(GroupStats {
            group: setup.group.clone(),
            member: setup.member.clone(),
            consumer: name.clone(),
            figures: figures.clone(),
        });
        let follower = GroupFollower {
            redis,
            consumer,
            name,
            patterns,
            claim_after: setup.claim_after,
            figures,
        };
        Ok((follower, stats))
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Follows the group until `stop` holds a deadline; returns what stayed undelivered.
    pub(crate) async fn run(self, mut stop: watch::Receiver<Option<Instant>>) -> Undelivered {
        let full_room = self.consumer.room();
        let claim_every =
            (self.claim_after / 4).clamp(Duration::from_millis(50), MAX_CLAIM_INTERVAL);
        let mut out = Outstanding::default();
        // Own pending entries first, paged by id; `None` once they are all handed over.
        let mut pending_after = Some(LogId(0));
        let mut next_claim = Instant::now();
        let mut retry_at: Option<Instant> = None;
        let mut backoff = bus_store::LOG_RECONNECT.backoff();
        let mut offer: Vec<StoredEvent> = Vec::new();
        let mut drain_end: Option<Instant> = None;
        let mut deadline: Option<Instant> = None;
        loop {
            if deadline.is_none()
                && let Some(d) = *stop.borrow_and_update()
            {
                let left = d.saturating_duration_since(Instant::now());
                deadline = Some(d);
                drain_end = Some(d - (left / 4).min(Duration::from_secs(5)));
            }
            self.ack(&mut out, full_room).await;
            if drain_end.is_some_and(|end| out.ids.is_empty() || Instant::now() >= end) {
                break;
            }
            let now = Instant::now();
            let paused = retry_at.is_some_and(|t| now < t);
            if !paused && drain_end.is_none() {
                retry_at = None;
                let room = self.consumer.room();
                if !offer.is_empty() && room > 0 {
                    let batch = std::mem::take(&mut offer);
                    if let Err(back) = self.hand(batch, &mut out).await {
                        offer = back;
                        retry_at = Some(now + RETRY_PAUSE);
                    }
                    continue;
                }
                if offer.is_empty()
                    && out.ids.is_empty()
                    && pending_after.is_none()
                    && now >= next_claim
                {
                    next_claim = now + claim_every;
                    match self.redis.claim(self.claim_after, room.max(1)).await {
                        Ok(batch) => {
                            backoff.reset();
                            let got = batch.events.len() as u64;
                            if got > 0 {
                                add(&self.figures.claimed, got);
                                tracing::info!(consumer = %self.name, group = %self.redis.group(), claimed = got, "claimed events pending too long with another member");
                            }
                            self.drop_gone(&batch).await;
                            out.claimed = got > 0;
                            if let Err(back) = self.hand(batch.events, &mut out).await {
                                offer = back;
                                retry_at = Some(now + RETRY_PAUSE);
                            }
                            if got > 0 {
                                continue;
                            }
                        }
                        Err(error) => {
                            self.failed("cannot claim pending events", &error);
                            retry_at = Some(now + backoff.next_delay());
                            continue;
                        }
                    }
                }
                if offer.is_empty() && !out.claimed && room > 0 {
                    let what = match pending_after {
                        Some(after) => GroupRead::Pending { after },
                        None if out.ids.is_empty() => GroupRead::New(
                            IDLE_WAIT
                                .min(next_claim.saturating_duration_since(now))
                                .max(BUSY_WAIT),
                        ),
                        None => GroupRead::New(BUSY_WAIT),
                    };
                    match self.redis.read(what, room).await {
                        Ok(batch) => {
                            backoff.reset();
                            if let GroupRead::Pending { .. } = what {
                                let last = batch
                                    .events
                                    .iter()
                                    .map(|e| e.id)
                                    .chain(batch.gone.iter().copied())
                                    .max();
                                pending_after = last;
                            }
                            self.drop_gone(&batch).await;
                            let got = !batch.events.is_empty();
                            if let Err(back) = self.hand(batch.events, &mut out).await {
                                offer = back;
                                retry_at = Some(Instant::now() + RETRY_PAUSE);
                            }
                            if got || pending_after.is_some() {
                                continue;
                            }
                            // A read that waited and got nothing: look at acks and claims again.
                            continue;
                        }
                        Err(error) => {
                            self.failed("cannot read the consumer group", &error);
                            retry_at = Some(Instant::now() + backoff.next_delay());
                            continue;
                        }
                    }
                }
            }
            // Waiting on the consumer (room, confirmations), a retry, or the stop.
            let wake = match (retry_at, drain_end) {
                (Some(t), _) => t,
                (None, Some(end)) => end.min(Instant::now() + BUSY_WAIT),
                (None, None) => Instant::now() + BUSY_WAIT.max(Duration::from_millis(50)),
            };
            tokio::select! {
                () = self.consumer.progressed() => {}
                () = sleep_until(wake) => {}
                _ = stop.changed(), if deadline.is_none() => {}
            }
        }
        let deadline = deadline.unwrap_or_else(Instant::now);
        let held = self
            .consumer
            .on_shutdown(deadline.saturating_duration_since(Instant::now()))
            .await;
        self.ack(&mut out, full_room).await;
        let queued = (out.ids.len() as u64).saturating_sub(held);
        tracing::info!(consumer = %self.name, group = %self.redis.group(), unacknowledged = out.ids.len(), "durable consumer left its consumer group; what it did not acknowledge stays pending, for a live member to claim or for its next start");
        Undelivered {
            name: self.name.clone(),
            queued,
            held,
        }
    }

    fn failed(&self, what: &str, error: &bus_store::StoreError) {
        add(&self.figures.failures, 1);
        tracing::warn!(consumer = %self.name, group = %self.redis.group(), %error, "durable consumer: {what}; trying again with backoff");
    }

    /// Acknowledges trimmed pending entries (nothing left to deliver) and counts them.
    async fn drop_gone(&self, batch: &GroupBatch) {
        if batch.gone.is_empty() {
            return;
        }
        let n = batch.gone.len() as u64;
        add(&self.figures.missed, n);
        tracing::warn!(consumer = %self.name, missed = n, "durable consumer missed {n} pending events: retention trimmed them before they were delivered");
        if let Err(error) = self.redis.ack(&batch.gone).await {
            self.failed("cannot acknowledge trimmed events", &error);
        }
    }

    /// Hands `events` over (those of the patterns; the others are acknowledged at once).
    /// `Err` gives them back when the consumer refused them.
    async fn hand(
        &self,
        events: Vec<StoredEvent>,
        out: &mut Outstanding,
    ) -> Result<(), Vec<StoredEvent>> {
        if events.is_empty() {
            return Ok(());
        }
        let (wanted, unwanted): (Vec<_>, Vec<_>) = events
            .into_iter()
            .partition(|e| self.patterns.iter().any(|p| p.matches(&e.event_type)));
        let unwanted: Vec<LogId> = unwanted.iter().map(|e| e.id).collect();
        if !unwanted.is_empty() {
            match self.redis.ack(&unwanted).await {
                Ok(n) => add(&self.figures.acked, n),
                Err(error) => self.failed("cannot acknowledge skipped events", &error),
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let batch: Vec<Event> = wanted
            .iter()
            .filter_map(|e| match e.to_event() {
                Ok(event) => Some(event),
                Err(error) => {
                    tracing::warn!(consumer = %self.name, id = e.id.0, %error, "durable consumer: skipping a stored event whose data is not JSON");
                    None
                }
            })
            .collect();
        let count = batch.len() as u64;
        if let Some(reason) = crate::durable::hand_over(&self.consumer, batch).await {
            add(&self.figures.failures, 1);
            tracing::warn!(consumer = %self.name, %reason, "durable consumer refused a batch of {count}; offering it again in {RETRY_PAUSE:?}");
            return Err(wanted);
        }
        out.ids.extend(wanted.iter().map(|e| e.id.0));
        add(&self.figures.handed, count);
        self.figures
            .outstanding
            .store(out.ids.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Acknowledges what the consumer has delivered (see the module docs).
    async fn ack(&self, out: &mut Outstanding, full_room: usize) {
        if out.ids.is_empty() {
            out.claimed = false;
            return;
        }
        let holds_nothing = self.consumer.room() >= full_room;
        let done: Vec<u64> = if holds_nothing {
            out.ids.iter().copied().collect()
        } else if out.claimed {
            return;
        } else {
            match self.consumer.confirmed() {
                Some(confirmed) => out.ids.range(..=confirmed).copied().collect(),
                None => return,
            }
        };
        if done.is_empty() {
            return;
        }
        let ids: Vec<LogId> = done.iter().map(|&id| LogId(id)).collect();
        match self.redis.ack(&ids).await {
            Ok(n) => {
                add(&self.figures.acked, n);
                for id in done {
                    out.ids.remove(&id);
                }
                if out.ids.is_empty() {
                    out.claimed = false;
                }
                self.figures
                    .outstanding
                    .store(out.ids.len() as u64, Ordering::Relaxed);
            }
            Err(error) => self.failed("cannot acknowledge delivered events", &error),
        }
    }
}

#[cfg(test)]
#[path = "group_tests.rs"]
mod tests;
