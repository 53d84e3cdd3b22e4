//! Durable consumers: consumers that read the host's event log from their own saved position
//! instead of receiving events from the bus, so that nothing acknowledged to a producer is lost
//! when the host dies before the consumer delivered it.
//!
//! The host (the eventbus daemon) runs one follower per [`DurableSubscriber`]: it reads the log
//! after the consumer's saved cursor, in log order, in batches no larger than
//! [`room`](DurableSubscriber::room), hands them over with
//! [`handle_batch`](DurableSubscriber::handle_batch), and saves
//! [`confirmed`](DurableSubscriber::confirmed) as the cursor. After a crash it resumes from the
//! cursor, so delivery is at least once: everything after the last saved position is handed
//! over again, and [`Event::id`] (the log id) lets the receiver drop duplicates.
//!
//! This is the contract only; bus-core knows no log. A consumer offers its durable side to the
//! host through [`Attached::durable`](crate::Attached::durable); ordinary handlers keep the
//! simple [`Subscriber::handle`](crate::Subscriber::handle) path.
//!
//! ```
//! use std::sync::Mutex;
//! use std::time::Duration;
//! use bus_core::{DurableSubscriber, Event, HandlerResult, StartPosition, async_trait};
//!
//! /// Takes events and "delivers" them at once.
//! struct Collector { seen: Mutex<Vec<u64>> }
//!
//! #[async_trait]
//! impl DurableSubscriber for Collector {
//!     fn name(&self) -> &str { "collector" }
//!     fn patterns(&self) -> Vec<String> { vec!["hook.*".into()] }
//!     fn room(&self) -> usize { 100 }
//!     async fn handle_batch(&self, events: Vec<Event>) -> HandlerResult {
//!         self.seen.lock().unwrap().extend(events.iter().map(Event::id));
//!         Ok(())
//!     }
//!     fn confirmed(&self) -> Option<u64> { self.seen.lock().unwrap().last().copied() }
//!     async fn progressed(&self) { std::future::pending::<()>().await }
//! }
//!
//! let collector = Collector { seen: Mutex::new(Vec::new()) };
//! assert_eq!(collector.start_position(), StartPosition::End);
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! collector.handle_batch(vec![Event::new(7, "hook.pre_tool", serde_json::json!({}))]).await.unwrap();
//! assert_eq!(collector.confirmed(), Some(7));
//! assert_eq!(collector.on_shutdown(Duration::from_secs(1)).await, 0);
//! # });
//! ```

use std::time::Duration;

use async_trait::async_trait;

use crate::{Event, HandlerResult};

/// Where a durable consumer that has never saved a position starts reading the log (in the
/// spirit of JetStream's deliver policy). Once it has saved one, it always resumes from there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StartPosition {
    /// At the log's end when the consumer is first started: only events appended from then on.
    /// The default, so that a new dashboard relay is not flooded with a week of history. The
    /// host saves this position at once, so events appended after the first start are never
    /// skipped, even if the host crashes before the consumer confirmed anything.
    #[default]
    End,
    /// At the oldest event the log still holds.
    Beginning,
}

/// A consumer fed from the host's durable event log, with acknowledgement.
///
/// The host's follower calls the methods from one task: it never calls
/// [`handle_batch`](Self::handle_batch) concurrently with itself, and hands events over in
/// log order (increasing [`Event::id`]), each at most once per run of the host. Events after
/// the last saved position are handed over again after a restart (at least once).
#[async_trait]
pub trait DurableSubscriber: Send + Sync + 'static {
    /// The consumer's name: its cursor is saved under it, and it names it in logs and stats.
    /// It must stay the same across restarts, or the consumer starts afresh.
    fn name(&self) -> &str;

    /// The event-type patterns it wants (exact names or globs); the host skips the rest.
    fn patterns(&self) -> Vec<String>;

    /// Where to start when no position was ever saved; see [`StartPosition`].
    fn start_position(&self) -> StartPosition {
        StartPosition::End
    }

    /// How many more events it can take now. The host never hands over more than this in a
    /// batch, and hands over nothing while it is 0: backpressure instead of dropping. The host
    /// asks again after [`progressed`](Self::progressed) completes.
    fn room(&self) -> usize;

    /// Takes a batch of matching events, in log order. It may return before they are
    /// delivered (holding them, say, in a send buffer); [`confirmed`](Self::confirmed) says
    /// when they are. An `Err` (or a panic) means it took none of them: the host logs and
    /// counts it and offers the same events again a little later.
    async fn handle_batch(&self, events: Vec<Event>) -> HandlerResult;

    /// The acknowledgement: the highest event id such that it and every event handed over
    /// before it are delivered (`None` while nothing handed over in this run is). The host
    /// saves it as the consumer's position; it must never go down.
    fn confirmed(&self) -> Option<u64>;

    /// Completes when [`confirmed`](Self::confirmed) or [`room`](Self::room) may have changed
    /// since the last call completed (a change that happened while nobody was waiting must
    /// still complete the next call, as with `tokio::sync::Notify::notify_one`). The host waits
    /// on it instead of polling; a consumer that confirms and frees room only inside
    /// `handle_batch` may wait forever here.
    async fn progressed(&self);

    /// Called once when the host stops, after it stopped handing over events: deliver what is
    /// held within `timeout` and return how many handed-over events stay undelivered. The
    /// host saves [`confirmed`](Self::confirmed) after it returns, so those events are handed
    /// over again on the next start.
    async fn on_shutdown(&self, timeout: Duration) -> u64 {
        let _ = timeout;
        0
    }
}
