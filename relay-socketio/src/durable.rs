//! The relay as a durable consumer: fed from the host's event log instead of the bus.
//!
//! [`handle_batch`](DurableSubscriber::handle_batch) puts the events into the same send buffer
//! the bus path uses, but never evicts: the host keeps within [`room`](DurableSubscriber::room).
//! The acknowledgement is the relay's own: events leave the buffer, in the order they came,
//! only when a checkpoint the server acknowledged covers them, so the last one that left is
//! the highest log id delivered with everything before it.

use std::sync::Arc;
use std::time::Duration;

use bus_core::{Attached, DurableSubscriber, Event, HandlerResult};

use crate::relay::RELAY_NAME;
use crate::{RelayError, SocketIoRelay};

#[bus_core::async_trait]
impl DurableSubscriber for SocketIoRelay {
    /// [`RELAY_NAME`]: the cursor's name in the log.
    fn name(&self) -> &str {
        RELAY_NAME
    }

    fn patterns(&self) -> Vec<String> {
        self.config().patterns.clone()
    }

    /// What the buffer can still take: its capacity
    /// ([`buffer_capacity`](crate::RelayConfig::buffer_capacity)) less what it holds.
    fn room(&self) -> usize {
        self.shared.buffer().room()
    }

    async fn handle_batch(&self, events: Vec<Event>) -> HandlerResult {
        if self.shared.stopping() {
            return Err(RelayError::Stopped.into());
        }
        {
            let mut buffer = self.shared.buffer();
            // The log hands over every event of the patterns; the condition is applied here.
            // A skipped event is never confirmed, so after a restart the relay's cursor may
            // re-read a stretch of skipped events, and skip them again.
            let condition = &self.config().condition;
            for event in events.into_iter().filter(|e| condition.admits(e)) {
                buffer.push_unbounded(event);
            }
        }
        self.shared.wake.notify_one();
        self.ensure_started()?;
        Ok(())
    }

    fn confirmed(&self) -> Option<u64> {
        self.shared.buffer().last_confirmed()
    }

    async fn progressed(&self) {
        self.shared.progress.notified().await;
    }

    async fn on_shutdown(&self, timeout: Duration) -> u64 {
        self.stop(timeout).await.undelivered
    }
}

/// What a durable relay shows its host: the relay's description and figures, and its
/// durable side.
pub(crate) struct DurableRelay(pub(crate) Arc<SocketIoRelay>);

impl Attached for DurableRelay {
    fn describe(&self) -> String {
        format!("{} (durable)", self.0.describe())
    }

    fn stats(&self) -> Option<(&'static str, serde_json::Value)> {
        Attached::stats(&*self.0)
    }

    fn durable(&self) -> Option<Arc<dyn DurableSubscriber>> {
        Some(self.0.clone())
    }

    fn rate_limit_key(&self) -> Option<&'static str> {
        Attached::rate_limit_key(&*self.0)
    }

    fn rate_limit(&self) -> Option<bus_core::RateLimit> {
        self.0.rate_limit()
    }

    fn set_rate_limit(&self, limit: Option<bus_core::RateLimit>) -> Result<(), String> {
        Attached::set_rate_limit(&*self.0, limit)
    }
}
