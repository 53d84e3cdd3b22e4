//! [`SocketIoRelay`]: the public handle and its [`Subscriber`] implementation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bus_core::{Event, EventBus, HandlerResult, Subscriber, SubscriptionId};
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared as SharedFuture};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::shared::Shared;
use crate::stats::Counters;
use crate::{RelayConfig, RelayError, RelayStats};

/// The relay's name in logs and in the bus's stats rows.
pub const RELAY_NAME: &str = "socketio-relay";

/// The most of a stop's time kept for disconnecting the client.
const MAX_DISCONNECT_TIME: Duration = Duration::from_secs(1);

/// What [`SocketIoRelay::stop`] achieved.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StopReport {
    /// Events the server confirmed over the relay's life.
    pub relayed: u64,
    /// Events still buffered, unconfirmed, when the relay stopped.
    pub undelivered: u64,
    /// Events dropped over the relay's life because the buffer was full.
    pub dropped: u64,
    /// True when every buffered event was confirmed and the client disconnected in time.
    pub complete: bool,
}

struct Running {
    done: SharedFuture<BoxFuture<'static, ()>>,
    abort: AbortHandle,
}

enum Lifecycle {
    Idle,
    Running(Running),
    Stopped,
}

/// A [`Subscriber`] that relays matching bus events to a Socket.IO server, such as the
/// claude-mpm dashboard.
///
/// [`handle`](Subscriber::handle) only appends the event to the relay's bounded buffer; a
/// background task owns the single Socket.IO client, emits the buffer in order once the
/// server has acknowledged the connection, confirms delivery with acknowledged checkpoints
/// and, after any failure, reconnects with backoff and resends what was not confirmed.
/// Delivery is at-least-once within the buffer; every payload carries the bus `event_id`.
pub struct SocketIoRelay {
    pub(crate) shared: Arc<Shared>,
    started: AtomicBool,
    lifecycle: Mutex<Lifecycle>,
}

impl std::fmt::Debug for SocketIoRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketIoRelay")
            .field("url", &self.shared.config.url)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl SocketIoRelay {
    /// A relay with `config`, checked first. Nothing connects until it is started.
    pub fn new(config: RelayConfig) -> Result<Self, RelayError> {
        config.validate()?;
        Ok(SocketIoRelay {
            shared: Arc::new(Shared::new(config)),
            started: AtomicBool::new(false),
            lifecycle: Mutex::new(Lifecycle::Idle),
        })
    }

    /// Subscribes the relay to `bus` and starts it when called inside a multi-threaded tokio
    /// runtime; otherwise it starts with the first event it handles, on the bus's worker
    /// runtime (a current-thread runtime would only run it while its owner is polling).
    pub fn attach(self: &Arc<Self>, bus: &EventBus) -> Result<SubscriptionId, RelayError> {
        let id = bus.subscribe(self.clone())?;
        let multi_threaded = Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !multi_threaded {
            return Ok(id);
        }
        match self.start() {
            Ok(()) | Err(RelayError::NoRuntime) => Ok(id),
            Err(error) => {
                bus.unsubscribe(id);
                Err(error)
            }
        }
    }

    /// The settings it runs with.
    pub fn config(&self) -> &RelayConfig {
        &self.shared.config
    }

    fn lifecycle(&self) -> MutexGuard<'_, Lifecycle> {
        self.lifecycle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts the background task on the current tokio runtime; a no-op when running.
    pub fn start(&self) -> Result<(), RelayError> {
        let handle = Handle::try_current().map_err(|_| RelayError::NoRuntime)?;
        self.start_on(&handle)
    }

    /// Starts the background task on `runtime`; a no-op when running.
    pub fn start_on(&self, runtime: &Handle) -> Result<(), RelayError> {
        let mut lifecycle = self.lifecycle();
        match *lifecycle {
            Lifecycle::Running(_) => Ok(()),
            Lifecycle::Stopped => Err(RelayError::Stopped),
            Lifecycle::Idle if self.shared.stopping() => Err(RelayError::Stopped),
            Lifecycle::Idle => {
                let task = runtime.spawn(crate::pump::run(self.shared.clone()));
                let abort = task.abort_handle();
                let done = task.map(|_| ()).boxed().shared();
                *lifecycle = Lifecycle::Running(Running { done, abort });
                self.started.store(true, Ordering::Release);
                tracing::debug!(url = %self.shared.config.url, "socket.io relay started");
                Ok(())
            }
        }
    }

    /// Buffers one event for relaying (what [`handle`](Subscriber::handle) does). When the
    /// buffer is full the oldest event is dropped and counted. Fails once stopped.
    pub fn push(&self, event: Event) -> Result<(), RelayError> {
        if self.shared.stopping() {
            return Err(RelayError::Stopped);
        }
        let evicted = self.shared.buffer().push(event);
        if let Some(old) = evicted {
            Counters::bump(&self.shared.counters.dropped, 1);
            tracing::debug!(
                event_id = old.event.id(),
                "socket.io relay buffer full: dropped the oldest event"
            );
        }
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Starts the task on the current runtime if it has not started yet (a relay attached
    /// outside a multi-threaded runtime starts with its first event).
    pub(crate) fn ensure_started(&self) -> Result<(), RelayError> {
        if !self.started.load(Ordering::Acquire) {
            match self.start() {
                Ok(()) | Err(RelayError::Stopped) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    /// The relay's own figures (see [`RelayStats`]).
    pub fn stats(&self) -> RelayStats {
        let buffered = self.shared.buffer().len();
        let mut stats = self
            .shared
            .counters
            .snapshot(buffered, self.shared.config.buffer_capacity);
        stats.rate_limit = self.shared.gate.stats();
        stats.priorities = self
            .shared
            .config
            .priorities
            .as_ref()
            .map(ToString::to_string);
        stats
    }

    /// Sets, changes or (with `None`) removes the limit on emits, from the next emit on.
    pub fn set_rate_limit(&self, limit: Option<bus_core::RateLimit>) {
        self.shared.gate.set(limit);
    }

    /// The limit on emits in force.
    pub fn rate_limit(&self) -> Option<bus_core::RateLimit> {
        self.shared.gate.limit()
    }

    /// Stops the relay: keeps delivering what it holds, disconnects the client and reports
    /// what stayed undelivered, all within `timeout` (the last fifth of it, at most a second,
    /// is kept for the disconnect). Later events are refused. Calling it again (or
    /// concurrently, say from [`EventBus::shutdown`]) waits for the same stop.
    pub async fn stop(&self, timeout: Duration) -> StopReport {
        let now = Instant::now();
        let hard_deadline = now + timeout;
        let disconnect_time = (timeout / 5).min(MAX_DISCONNECT_TIME);
        self.shared
            .request_stop(hard_deadline - disconnect_time, hard_deadline);
        let running = {
            let lifecycle = self.lifecycle();
            match &*lifecycle {
                Lifecycle::Running(running) => Some((running.done.clone(), running.abort.clone())),
                Lifecycle::Idle | Lifecycle::Stopped => None,
            }
        };
        let mut finished = true;
        if let Some((done, abort)) = running {
            if tokio::time::timeout_at(hard_deadline, done).await.is_err() {
                tracing::warn!("socket.io relay did not stop in time; its task was aborted");
                abort.abort();
                finished = false;
            }
        }
        *self.lifecycle() = Lifecycle::Stopped;
        let stats = self.stats();
        let report = StopReport {
            relayed: stats.relayed,
            undelivered: stats.buffered,
            dropped: stats.dropped,
            complete: finished && stats.buffered == 0,
        };
        if report.undelivered > 0 {
            tracing::warn!(
                undelivered = report.undelivered,
                "socket.io relay stopped with undelivered events"
            );
        } else {
            tracing::info!(relayed = report.relayed, "socket.io relay stopped");
        }
        report
    }
}

impl Drop for SocketIoRelay {
    fn drop(&mut self) {
        // The task holds only the shared state: tell it to disconnect and end now.
        let now = Instant::now();
        self.shared.request_stop(now, now + MAX_DISCONNECT_TIME);
    }
}

#[bus_core::async_trait]
impl Subscriber for SocketIoRelay {
    fn name(&self) -> &str {
        RELAY_NAME
    }

    fn patterns(&self) -> Vec<String> {
        self.shared.config.patterns.clone()
    }

    /// `CLAUDE_MPM_RELAY_WHERE`: checked by the bus before the event is queued.
    fn condition(&self) -> Option<Arc<dyn bus_core::Condition>> {
        self.shared.config.condition.0.clone()
    }

    async fn handle(&self, event: Event) -> HandlerResult {
        self.push(event)?;
        self.ensure_started()?;
        Ok(())
    }

    /// The relay's rules also order its bus queue (the bus path); its rate limit applies to
    /// emits, in the relay's own task, not to the queue.
    fn priorities(&self) -> Option<bus_core::PriorityRules> {
        self.shared.config.priorities.clone()
    }

    async fn on_shutdown(&self, timeout: Duration) -> u64 {
        // The bus stops waiting at the same deadline: answer a little before it.
        let margin = (timeout / 10).min(Duration::from_millis(50));
        self.stop(timeout - margin).await.undelivered
    }
}

impl bus_core::Attached for SocketIoRelay {
    fn describe(&self) -> String {
        format!("{RELAY_NAME} ({})", self.shared.config.url)
    }

    /// The relay's own figures (relayed, resent, buffered, connected, ...) under `"relay"`.
    fn stats(&self) -> Option<(&'static str, serde_json::Value)> {
        Some((
            "relay",
            serde_json::to_value(self.stats()).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// `"relay"`: the limit on emits.
    fn rate_limit_key(&self) -> Option<&'static str> {
        Some("relay")
    }

    fn rate_limit(&self) -> Option<bus_core::RateLimit> {
        SocketIoRelay::rate_limit(self)
    }

    fn set_rate_limit(&self, limit: Option<bus_core::RateLimit>) -> Result<(), String> {
        SocketIoRelay::set_rate_limit(self, limit);
        Ok(())
    }
}

/// Builds the relay and attaches it to the bus; with
/// [`durable`](RelayConfig::durable) set it is not subscribed to the bus but offered to the
/// host as a [`DurableSubscriber`](bus_core::DurableSubscriber) through
/// [`Attached::durable`](bus_core::Attached::durable).
impl bus_core::Consumer for SocketIoRelay {
    type Settings = RelayConfig;
    type Error = RelayError;

    fn install(
        bus: &EventBus,
        settings: RelayConfig,
    ) -> Result<Arc<dyn bus_core::Attached>, RelayError> {
        let durable = settings.durable;
        let relay = Arc::new(SocketIoRelay::new(settings)?);
        if durable {
            // Fed by the host from its log (`Attached::durable`), not by the bus.
            match relay.start() {
                Ok(()) | Err(RelayError::NoRuntime) => {}
                Err(error) => return Err(error),
            }
            return Ok(Arc::new(crate::durable::DurableRelay(relay)));
        }
        relay.attach(bus)?;
        Ok(relay)
    }
}
