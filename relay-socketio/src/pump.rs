//! The relay's background task: owns the one client, emits the buffer in order, confirms with
//! checkpoint acknowledgements and reconnects with backoff.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::{Instant, sleep_until};

use bus_core::Verdict;

use crate::buffer::{Marked, NextUnsent};
use crate::connection::{Connection, ConnectionError, Signal};
use crate::shared::Shared;
use crate::stats::Counters;
use crate::wire::wire_payload;

/// How a session (one connection's life) ended.
enum SessionEnd {
    /// A stop was asked for and everything was confirmed, or its time ran out.
    Stopped,
    /// The connection failed. `healthy` when it had been working (it confirmed something,
    /// or never had anything to confirm), so the backoff starts again from the beginning.
    Lost { healthy: bool },
}

/// Runs until a stop is asked for and everything is confirmed or its deadline passes.
pub(crate) async fn run(shared: Arc<Shared>) {
    let config = &shared.config;
    let counters = &shared.counters;
    let mut backoff = config.reconnect_policy().backoff();
    let mut failing = false;
    while !shared.should_exit() {
        Counters::bump(&counters.connection_attempts, 1);
        match Connection::open(config).await {
            Ok(mut connection) => {
                tracing::info!(url = %config.url, namespace = %config.namespace, "socket.io relay connected");
                failing = false;
                counters.connected.store(true, Ordering::Relaxed);
                let end = Session::new(&shared).run(&mut connection).await;
                counters.connected.store(false, Ordering::Relaxed);
                connection.close(shared.disconnect_time()).await;
                match end {
                    SessionEnd::Stopped => break,
                    SessionEnd::Lost { healthy: true } => backoff.reset(),
                    SessionEnd::Lost { healthy: false } => {}
                }
            }
            Err(error) => {
                Counters::bump(&counters.connection_failures, 1);
                // One warning per outage; the retries after it are debug noise.
                if failing {
                    tracing::debug!(url = %config.url, %error, "socket.io relay still cannot connect");
                } else {
                    tracing::warn!(url = %config.url, %error, "socket.io relay cannot connect; events are buffered");
                }
                failing = true;
            }
        }
        if shared.should_exit() {
            break;
        }
        let mut wake_at = Instant::now() + backoff.next_delay();
        if let Some(deadline) = shared.stop_deadline() {
            wake_at = wake_at.min(deadline);
        }
        tokio::select! {
            _ = sleep_until(wake_at) => {}
            _ = shared.stop_signal.notified() => {}
        }
    }
    let left = shared.buffer().len();
    tracing::debug!(undelivered = left, "socket.io relay task finished");
}

/// What the rate limit says about the next emit.
enum Gate {
    Go,
    /// Over the rate (`delay`): try again after this long.
    Wait(std::time::Duration),
    /// Over the rate (`drop`): the event was dropped; look for the next.
    Skipped,
}

/// One connection's worth of emitting and confirming.
struct Session<'a> {
    shared: &'a Shared,
    /// The checkpoint in flight: its sequence number and when its ack is overdue.
    checkpoint: Option<(u64, Instant)>,
    emitted_since_checkpoint: usize,
    last_checkpoint: Instant,
    emitted_any: bool,
    confirmed_any: bool,
    /// The emit being held back by the rate limit was counted as delayed.
    delay_counted: bool,
}

impl<'a> Session<'a> {
    fn new(shared: &'a Shared) -> Self {
        Session {
            shared,
            checkpoint: None,
            emitted_since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            emitted_any: false,
            confirmed_any: false,
            delay_counted: false,
        }
    }

    fn lost(&self, reason: &dyn std::fmt::Display) -> SessionEnd {
        Counters::bump(&self.shared.counters.connection_failures, 1);
        let unconfirmed = self.shared.buffer().unconfirmed();
        tracing::warn!(%reason, unconfirmed, "socket.io relay connection lost; unconfirmed events will be resent");
        SessionEnd::Lost {
            healthy: self.confirmed_any || !self.emitted_any,
        }
    }

    /// Handles a signal; `Some` when it ends the session.
    fn on_signal(&mut self, signal: Signal) -> Option<SessionEnd> {
        match signal {
            Signal::Ack(seq) if self.checkpoint.is_some_and(|(s, _)| s == seq) => {
                self.checkpoint = None;
                let confirmed = self.shared.buffer().confirm_through(seq);
                self.shared.counters.record_relayed(confirmed);
                self.shared.progress.notify_one();
                self.confirmed_any = true;
                None
            }
            Signal::Ack(seq) => {
                tracing::debug!(
                    seq,
                    "ignoring an acknowledgement of no checkpoint in flight"
                );
                None
            }
            Signal::Open => None,
            Signal::Closed => Some(self.lost(&"the server closed the connection")),
            Signal::Error(error) => Some(self.lost(&error)),
        }
    }

    async fn run(mut self, connection: &mut Connection) -> SessionEnd {
        let shared = self.shared;
        let config = &shared.config;
        shared.buffer().rewind();
        loop {
            while let Some(signal) = connection.try_signal() {
                if let Some(end) = self.on_signal(signal) {
                    return end;
                }
            }
            if self
                .checkpoint
                .is_some_and(|(_, overdue)| Instant::now() >= overdue)
            {
                Counters::bump(&shared.counters.ack_timeouts, 1);
                return self.lost(&format_args!(
                    "no acknowledgement within {:?}",
                    config.ack_timeout
                ));
            }
            if shared.should_exit() {
                return SessionEnd::Stopped;
            }
            match self.next_emit() {
                Some((next, with_ack)) => {
                    match self.rate_check(&next) {
                        Gate::Go => {}
                        Gate::Skipped => continue,
                        Gate::Wait(pause) => {
                            // Acks keep coming meanwhile, and a higher-priority event that
                            // arrives is the one emitted when the limit allows.
                            tokio::select! {
                                signal = connection.signal() => {
                                    if let Some(end) = signal.and_then(|s| self.on_signal(s)) {
                                        return end;
                                    }
                                }
                                _ = tokio::time::sleep(pause) => {}
                                _ = shared.stop_signal.notified() => {}
                            }
                            continue;
                        }
                    }
                    if let Err(error) = self.emit(connection, next, with_ack).await {
                        if matches!(error, ConnectionError::EmitTimeout(_)) {
                            Counters::bump(&shared.counters.ack_timeouts, 1);
                        }
                        return self.lost(&error);
                    }
                }
                None => {
                    let overdue = self.checkpoint.map(|(_, at)| at);
                    let deadline = shared.stop_deadline();
                    tokio::select! {
                        signal = connection.signal() => {
                            if let Some(end) = signal.and_then(|s| self.on_signal(s)) {
                                return end;
                            }
                        }
                        _ = shared.wake.notified() => {}
                        _ = shared.stop_signal.notified() => {}
                        _ = sleep_until(overdue.unwrap_or_else(Instant::now)), if overdue.is_some() => {}
                        _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
                    }
                }
            }
        }
    }

    /// Asks the rate limit about emitting `next`. Resends are limited too (the server receives
    /// them), but never dropped: under `drop` only new events are.
    fn rate_check(&mut self, next: &NextUnsent) -> Gate {
        let gate = &self.shared.gate;
        if !gate.is_active() {
            return Gate::Go;
        }
        match gate.check() {
            Verdict::Go => {
                self.delay_counted = false;
                Gate::Go
            }
            Verdict::Wait(pause) => {
                if !std::mem::replace(&mut self.delay_counted, true) {
                    gate.count_delayed();
                }
                Gate::Wait(pause.max(std::time::Duration::from_micros(100)))
            }
            Verdict::Drop if next.is_resend() => Gate::Go,
            Verdict::Drop => {
                if self.shared.buffer().skip(next) {
                    gate.count_drop(next.event.event_type());
                    // The durable acknowledgement may have moved, and there is room.
                    self.shared.progress.notify_one();
                }
                Gate::Skipped
            }
        }
    }

    /// The next event to emit and whether it carries a checkpoint; `None` when the relay
    /// must wait (nothing to send, or the checkpoint in flight must come back first).
    fn next_emit(&self) -> Option<(crate::buffer::NextUnsent, bool)> {
        let config = &self.shared.config;
        let buffer = self.shared.buffer();
        let next = buffer.next_unsent()?;
        if self.checkpoint.is_some() {
            // The last event must carry a checkpoint of its own, and a dead connection must
            // not swallow more than `max_unconfirmed` events: both wait for the ack.
            let may_emit = !next.is_last && buffer.unconfirmed() < config.max_unconfirmed;
            return may_emit.then_some((next, false));
        }
        let with_ack = next.is_last
            || self.emitted_since_checkpoint + 1 >= config.ack_every
            || self.last_checkpoint.elapsed() >= config.ack_interval;
        Some((next, with_ack))
    }

    async fn emit(
        &mut self,
        connection: &Connection,
        next: crate::buffer::NextUnsent,
        with_ack: bool,
    ) -> Result<(), ConnectionError> {
        let config = &self.shared.config;
        let counters = &self.shared.counters;
        let payload = wire_payload(&next.event, &config.event_name);
        if with_ack {
            connection
                .emit_checkpoint(payload, next.seq, config.ack_timeout)
                .await?;
            let now = Instant::now();
            self.checkpoint = Some((next.seq, now + config.ack_timeout));
            self.last_checkpoint = now;
            self.emitted_since_checkpoint = 0;
        } else {
            connection.emit(payload).await?;
            self.emitted_since_checkpoint += 1;
        }
        self.emitted_any = true;
        Counters::bump(&counters.sent, 1);
        if self.shared.buffer().mark_sent(&next) == Marked::Resent {
            Counters::bump(&counters.resent, 1);
        }
        Ok(())
    }
}
