//! State shared by the relay's handle (the bus side) and its background task.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::RelayConfig;
use crate::buffer::SendBuffer;
use crate::stats::Counters;

pub(crate) struct Shared {
    pub(crate) config: RelayConfig,
    buffer: Mutex<SendBuffer>,
    pub(crate) counters: Counters,
    /// The rate limit on emits (new events and resends alike).
    pub(crate) gate: bus_core::RateGate,
    /// Rung when an event is buffered.
    pub(crate) wake: Notify,
    /// Rung when the server confirmed events (room freed, acknowledgement advanced): what a
    /// durable relay's follower waits on.
    pub(crate) progress: Notify,
    /// Rung once, when a stop is asked for.
    pub(crate) stop_signal: Notify,
    /// Set once by `stop` (or drop): flush until the first instant, be gone by the second.
    stop_deadline: OnceLock<(Instant, Instant)>,
}

impl Shared {
    pub(crate) fn new(config: RelayConfig) -> Self {
        Shared {
            buffer: Mutex::new(SendBuffer::new(
                config.buffer_capacity,
                config.priorities.clone(),
            )),
            gate: bus_core::RateGate::new(config.rate_limit),
            config,
            counters: Counters::default(),
            wake: Notify::new(),
            progress: Notify::new(),
            stop_signal: Notify::new(),
            stop_deadline: OnceLock::new(),
        }
    }

    /// The buffer. Never held across an await; a panic while holding it cannot leave it
    /// half-changed in a way that matters, so a poisoned lock is taken over.
    pub(crate) fn buffer(&self) -> MutexGuard<'_, SendBuffer> {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks the task to flush until `flush_until` and to have disconnected by `end`; only
    /// the first call counts.
    pub(crate) fn request_stop(&self, flush_until: Instant, end: Instant) {
        let _ = self.stop_deadline.set((flush_until, end.max(flush_until)));
        self.stop_signal.notify_one();
        self.wake.notify_one();
    }

    /// Until when to keep flushing, once stopping.
    pub(crate) fn stop_deadline(&self) -> Option<Instant> {
        self.stop_deadline
            .get()
            .map(|(flush_until, _)| *flush_until)
    }

    /// How long a disconnect may take now: up to a second, less when a stop's end is near.
    pub(crate) fn disconnect_time(&self) -> Duration {
        let most = Duration::from_secs(1);
        match self.stop_deadline.get() {
            Some((_, end)) => end.saturating_duration_since(Instant::now()).min(most),
            None => most,
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop_deadline.get().is_some()
    }

    /// True once stopping and either everything is confirmed or the time is up.
    pub(crate) fn should_exit(&self) -> bool {
        self.stop_deadline()
            .is_some_and(|deadline| Instant::now() >= deadline || self.buffer().is_empty())
    }
}
