//! The end of a bus's life: waiting for queues to drain ([`EventBus::flush`]) and
//! [`EventBus::shutdown`] with its report of what stayed undelivered.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::queue::SubQueue;
use crate::subscription::Delivery;
use crate::{BusError, EventBus, Subscriber};

/// What [`EventBus::shutdown`] could not deliver.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ShutdownReport {
    /// True when every queue drained and every subscriber finished within the timeout.
    pub complete: bool,
    /// Events that stayed undelivered, over all subscribers.
    pub undelivered: u64,
    /// One row per queued subscriber that left events undelivered.
    pub subscribers: Vec<Undelivered>,
}

/// Undelivered events of one subscriber at shutdown.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Undelivered {
    /// The subscriber's name.
    pub name: String,
    /// Events still in its bus queue when the time ran out, the one in its handler's hands
    /// included: a handler still running may yet finish that one, but the worker, which
    /// checks before each event, starts none of the others.
    pub queued: u64,
    /// Events the subscriber itself still held (its [`Subscriber::on_shutdown`] count).
    pub held: u64,
}

/// A queued subscription's name, queue and (for `subscribe`) the subscriber itself.
type QueuedSub = (Arc<str>, Arc<SubQueue>, Option<Arc<dyn Subscriber>>);

impl EventBus {
    fn queues(&self) -> Vec<QueuedSub> {
        self.inner
            .lock()
            .subs
            .iter()
            .filter_map(|s| match &s.delivery {
                Delivery::Queued { queue, subscriber } => {
                    Some((s.name.clone(), queue.clone(), subscriber.clone()))
                }
                Delivery::Sync(_) => None,
            })
            .collect()
    }

    /// Waits until every event queued before the call has been handled by its consumer.
    pub async fn flush(&self) {
        for (_, queue, _) in self.queues() {
            queue.flush().await;
        }
    }

    /// [`flush`](Self::flush) for code without a runtime; true if done within `timeout`.
    ///
    /// Fails with [`BusError::BlockingInAsync`] when called from async code.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<bool, BusError> {
        if Handle::try_current().is_ok() {
            return Err(BusError::BlockingInAsync("flush_blocking"));
        }
        Ok(crate::runtime::owned()
            .block_on(async { tokio::time::timeout(timeout, self.flush()).await.is_ok() }))
    }

    /// Stops accepting events and subscriptions, lets every consumer drain its queue and then
    /// finish its own work ([`Subscriber::on_shutdown`]) within `timeout`, and reports what
    /// stayed undelivered. Workers still busy at the deadline are stopped.
    pub async fn shutdown(&self, timeout: Duration) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + timeout;
        let workers: Vec<(u64, JoinHandle<()>)> = {
            let mut reg = self.inner.lock();
            self.inner.flags.closed.store(true, Ordering::SeqCst);
            reg.workers.drain().collect()
        };
        let queues = self.queues();
        queues.iter().for_each(|(_, q, _)| q.close());
        let mut aborts = Vec::new();
        for (_, worker) in workers {
            aborts.push(worker.abort_handle());
            let _ = tokio::time::timeout_at(deadline, worker).await;
        }
        let mut report = ShutdownReport {
            complete: true,
            ..ShutdownReport::default()
        };
        let mut held_futures = Vec::new();
        for (name, queue, subscriber) in &queues {
            let queued = queue.abandon();
            let name = name.to_string();
            let subscriber = subscriber.clone();
            held_futures.push(async move {
                let held = match subscriber {
                    Some(s) => {
                        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                        match tokio::time::timeout_at(deadline, s.on_shutdown(left)).await {
                            Ok(held) => (held, true),
                            Err(_) => (0, false),
                        }
                    }
                    None => (0, true),
                };
                (name, queued, held)
            });
        }
        for (name, queued, (held, finished)) in futures_util::future::join_all(held_futures).await {
            report.complete &= finished && queued == 0 && held == 0;
            if queued + held > 0 {
                report.undelivered += queued + held;
                report.subscribers.push(Undelivered { name, queued, held });
            }
        }
        aborts.iter().for_each(|a| a.abort());
        report
    }
}
