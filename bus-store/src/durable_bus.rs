//! [`DurableBus`]: an [`EventBus`] whose events go through an [`EventLog`] first, for
//! programs that embed the bus and want the daemon's guarantee: an event is dispatched only
//! once it is committed, with the log's id and timestamp.

use std::sync::Arc;
use std::time::SystemTime;

use bus_core::{Event, EventBus, Refusal};
use serde_json::Value;

use crate::{EventLog, JsonText, LogFeed, LogId, NewEvent, StoreError};

/// What became of one event handed to [`DurableBus::publish_batch`].
#[derive(Clone, Debug)]
pub enum Admission {
    /// Committed to the log under `id`. `event` is what the bus dispatched (with a
    /// [shared](DurableBus::shared) log: what its feed will dispatch); `None` when the
    /// bus refused it between the check and the dispatch (its filters changed, or it shut
    /// down): it stays in the log, for replay.
    Stored {
        /// The log id.
        id: LogId,
        /// The dispatched event, carrying the same id.
        event: Option<Event>,
    },
    /// Not admitted (bus disabled, filtered, shut down): not stored, not dispatched.
    Refused(Refusal),
}

/// Why [`DurableBus::publish`] did not dispatch an event.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// The bus does not admit the event (disabled, filtered, shut down); nothing was stored.
    #[error("the bus refused the event: {0}")]
    Refused(Refusal),
    /// The log could not commit it (disk full, say); nothing was dispatched.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An [`EventBus`] behind an [`EventLog`]: every admitted event is committed (one append per
/// batch, sharing the log's group commit), then dispatched with the log's id, so consumers,
/// `recent_events` and the log agree on ids, and nothing is dispatched that is not durable.
///
/// ```
/// use std::sync::Arc;
/// use bus_core::{Event, EventBus};
/// use bus_store::{DurableBus, EventLog, ReadQuery, SqliteLog, SqliteOptions};
/// use serde_json::json;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let log = Arc::new(SqliteLog::open(dir.path().join("events.db"), SqliteOptions::default())?);
/// let bus = EventBus::new();
/// let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
/// let sink = seen.clone();
/// bus.on("hook.*", move |e: &Event| sink.lock().unwrap().push(e.id()))?;
///
/// let durable = DurableBus::new(&bus, log.clone());
/// let event = durable.publish("hook.pre_tool", json!({"tool_name": "Read"})).await?;
/// assert_eq!(*seen.lock().unwrap(), [event.id()]); // dispatched with the log's id...
/// let page = log.read(ReadQuery::default()).await?;
/// assert_eq!(page.events[0].id.0, event.id()); // ...once committed
/// # log.close().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct DurableBus {
    bus: EventBus,
    log: Arc<dyn EventLog>,
    wait_for_room: bool,
    shared: bool,
}

impl std::fmt::Debug for DurableBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurableBus")
            .field("bus", &self.bus)
            .field("log", &self.log.stats().backend)
            .finish_non_exhaustive()
    }
}

impl DurableBus {
    /// `bus` behind `log`.
    pub fn new(bus: &EventBus, log: Arc<dyn EventLog>) -> Self {
        DurableBus {
            bus: bus.clone(),
            log,
            wait_for_room: false,
            shared: false,
        }
    }

    /// For a log that other writers append to as well (several daemons on one Redis stream):
    /// publishing only appends, and a [`LogFeed`] started with [`feed`](Self::feed)
    /// dispatches every event of the log, this process's and the others', to the bus in log
    /// order. [`Admission::Stored`] then carries the event as the feed will dispatch it.
    pub fn shared(mut self) -> Self {
        self.shared = true;
        self
    }

    /// Whether publishing leaves dispatch to a [`LogFeed`] (see [`shared`](Self::shared)).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Starts the [`LogFeed`] that dispatches the log to the bus, under the cursor `name`
    /// (one per process on the log: it resumes there after a restart). Must be called inside
    /// a tokio runtime; an error when the cursor cannot be read or first saved.
    pub async fn feed(&self, name: &str) -> Result<LogFeed, StoreError> {
        crate::log::check_consumer_name(name)?;
        LogFeed::start(name, self.log.clone(), self.bus.clone(), self.wait_for_room).await
    }

    /// With consumer queues that block when full ([`Overflow::Block`](bus_core::Overflow)),
    /// dispatch waits for room asynchronously instead of blocking the calling thread.
    pub fn wait_for_room(mut self, wait: bool) -> Self {
        self.wait_for_room = wait;
        self
    }

    /// The bus.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The log.
    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Commits one event, then dispatches it with the log's id.
    pub async fn publish(&self, event_type: &str, data: Value) -> Result<Event, DurableError> {
        let mut outcome = self
            .publish_batch(vec![(event_type.to_owned(), data)])
            .await?;
        match outcome.pop() {
            Some(Admission::Stored {
                event: Some(event), ..
            }) => Ok(event),
            Some(Admission::Stored { event: None, .. }) => {
                Err(DurableError::Refused(if self.bus.is_enabled() {
                    Refusal::Filtered
                } else {
                    Refusal::Disabled
                }))
            }
            Some(Admission::Refused(refusal)) => Err(DurableError::Refused(refusal)),
            None => unreachable!("one event in, one outcome out"),
        }
    }

    /// Commits every event the bus admits in one append (nothing of the batch is stored or
    /// dispatched if the append fails), then dispatches them in order; one [`Admission`] per
    /// event, in order.
    pub async fn publish_batch(
        &self,
        events: Vec<(String, Value)>,
    ) -> Result<Vec<Admission>, StoreError> {
        let events = events.into_iter().map(|(t, d)| (t, d, None)).collect();
        self.publish_batch_with_priorities(events).await
    }

    /// [`publish_batch`](Self::publish_batch) with the priority each publisher gave its
    /// event (`None`: the consumers' rules decide). The log stores it with the event, so
    /// consumers fed from the log (durable ones, replays) see it too.
    pub async fn publish_batch_with_priorities(
        &self,
        events: Vec<(String, Value, Option<bus_core::Priority>)>,
    ) -> Result<Vec<Admission>, StoreError> {
        // `None` marks an admitted event until the append gives it an id.
        let mut outcome: Vec<Option<Admission>> = Vec::with_capacity(events.len());
        let mut admitted = Vec::with_capacity(events.len());
        for (i, (event_type, data, priority)) in events.into_iter().enumerate() {
            match self.bus.admit_event(&event_type, &data) {
                Ok(()) => {
                    outcome.push(None);
                    admitted.push((i, event_type, data, priority));
                }
                Err(refusal) => outcome.push(Some(Admission::Refused(refusal))),
            }
        }
        if !admitted.is_empty() {
            let now = SystemTime::now();
            let batch = admitted
                .iter()
                .map(|(_, event_type, data, priority)| NewEvent {
                    event_type: event_type.clone(),
                    data: JsonText::from_value(data),
                    timestamp: now,
                    priority: *priority,
                })
                .collect();
            let ids = self.log.append(batch).await?;
            for ((i, event_type, data, priority), id) in admitted.into_iter().zip(ids) {
                let mut event = Event::from_parts(id.0, &event_type, data, now);
                if let Some(priority) = priority {
                    event = event.with_priority(priority);
                }
                let event = if self.shared {
                    Some(event)
                } else {
                    self.redispatch(event).await.ok()
                };
                outcome[i] = Some(Admission::Stored { id, event });
            }
        }
        Ok(outcome.into_iter().flatten().collect())
    }

    /// Dispatches an event that is already in the log (a replay) to the live consumers,
    /// without storing it again.
    pub async fn redispatch(&self, event: Event) -> Result<Event, Refusal> {
        if self.wait_for_room {
            self.bus.try_publish_event_async(event).await
        } else {
            self.bus.try_publish_event(event)
        }
    }
}
