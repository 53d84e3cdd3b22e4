//! eventbus itself through the channels' harness, so that `cargo xtask bench` can run ours
//! and each channel in alternating rounds: `EventBus::publish` into async handlers behind
//! `Overflow::Block` queues, history of 100 and stats on (as bus-core's own benches), the
//! workers on the harness's two-thread runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bus_core::{Event, EventBus, Overflow};
use tokio::runtime::Runtime;

use crate::handled::Handled;
use crate::{CAPACITY, Message};

const EVENT: &str = "hook.pre_tool";

/// What one handler saw. Only its queue's worker writes it, so plain loads and stores do.
#[derive(Default)]
struct Receipt {
    last: AtomicU64,
    wrong: AtomicU64,
}

/// The bus and what each of its handlers saw.
pub(crate) struct BusSide {
    bus: EventBus,
    receipts: Vec<Arc<Receipt>>,
}

impl BusSide {
    /// A bus with `receivers` async handlers on the one event type.
    pub(crate) fn open(
        receivers: u64,
        runtime: &Runtime,
        handled: &Arc<Handled>,
    ) -> Result<BusSide, String> {
        let bus = EventBus::builder()
            .history_size(100)
            .overflow(Overflow::Block)
            .queue_capacity(CAPACITY)
            .runtime(runtime.handle().clone())
            .build()
            .map_err(|e| e.to_string())?;
        let mut receipts = Vec::new();
        for _ in 0..receivers {
            let (receipt, handled) = (Arc::new(Receipt::default()), handled.clone());
            receipts.push(receipt.clone());
            // Ids count 1, 2, 3, ... in publish order: the sequence the channels carry.
            bus.on_async(EVENT, move |event: Event| {
                let seq = event.id();
                if seq != receipt.last.load(Ordering::Relaxed) + 1 {
                    receipt
                        .wrong
                        .store(receipt.wrong.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                }
                receipt.last.store(seq, Ordering::Relaxed);
                handled.hit();
                async {}
            })
            .map_err(|e| e.to_string())?;
        }
        Ok(BusSide { bus, receipts })
    }

    /// Publishes the message's payload, waiting for room in full queues.
    pub(crate) fn send(&self, message: Message) {
        assert!(self.bus.publish(EVENT, message.1), "the bus accepts events");
    }

    /// Waits until every handler has handled everything; returns the events that some
    /// handler missed, saw twice or saw out of order, given that `total` were published.
    pub(crate) fn close(self, total: u64) -> u64 {
        let flushed = self.bus.flush_blocking(Duration::from_secs(60));
        assert!(
            matches!(flushed, Ok(true)),
            "every queue drains: {flushed:?}"
        );
        self.receipts
            .iter()
            .map(|r| {
                r.wrong.load(Ordering::Relaxed) + total.abs_diff(r.last.load(Ordering::Relaxed))
            })
            .sum()
    }
}
