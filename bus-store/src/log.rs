//! The contract every backend implements.

use async_trait::async_trait;
use tokio::sync::watch;

use crate::{
    BackendHealth, LogId, NewEvent, Page, ReadQuery, Render, RenderedPage, StoreError, StoreStats,
    StoredEvent,
};

/// A durable, ordered, trimmable log of events: what the daemon appends to before it
/// acknowledges, and what streams, paging and durable consumers read from.
///
/// Object safe: the daemon holds an `Arc<dyn EventLog>`.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends a batch atomically and answers its ids (in order) once it is committed with
    /// the configured durability. Concurrent callers share commits. An empty batch is a no-op.
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<LogId>, StoreError>;

    /// Reads one page of events, oldest first; see [`ReadQuery`] and [`Page`].
    async fn read(&self, query: ReadQuery) -> Result<Page, StoreError>;

    /// Reads the page [`read`](Self::read) would, handing each of its events to `render`,
    /// which appends their text to `out`: what the read routes serve. The default renders
    /// the events of [`read`](Self::read); a backend that can lend events from its own read
    /// buffer (SQLite does) overrides it to skip building them.
    async fn read_rendered(
        &self,
        query: ReadQuery,
        mut out: String,
        mut render: Render,
    ) -> Result<RenderedPage, StoreError> {
        let page = self.read(query).await?;
        for event in &page.events {
            render(event.borrowed(), &mut out);
        }
        Ok(RenderedPage {
            text: out,
            events: page.events.len(),
            next: page.next,
            missed: page.missed,
        })
    }

    /// The newest `limit` stored events, oldest first (what `GET /events/recent` shows); like a
    /// page, it holds at most [`PAGE_MAX_BYTES`](crate::PAGE_MAX_BYTES) of data, keeping the
    /// newest events.
    async fn read_last(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;

    /// The oldest stored event's id, `None` when nothing is stored.
    fn first_id(&self) -> Option<LogId>;

    /// The newest id ever issued (it may have been trimmed since), `None` if none ever was.
    /// An `after=` above it names an event that does not exist yet.
    fn last_id(&self) -> Option<LogId>;

    /// A receiver that changes to the last committed id after every commit, so followers can
    /// wait for new events without polling.
    fn subscribe_appends(&self) -> watch::Receiver<Option<LogId>>;

    /// Durably records that `consumer` has processed everything up to `id`.
    async fn save_cursor(&self, consumer: &str, id: LogId) -> Result<(), StoreError>;

    /// The position `consumer` saved last, `None` if it never saved one. Read from there with
    /// `after`; the page's `missed` tells how many events were trimmed before it got to them.
    async fn cursor(&self, consumer: &str) -> Result<Option<LogId>, StoreError>;

    /// Counters and positions.
    fn stats(&self) -> StoreStats;

    /// The connection's state, for a backend on a server that can go away (Redis); `None`
    /// (the default) for local ones.
    fn health(&self) -> Option<BackendHealth> {
        None
    }

    /// Finishes pending writes and stops accepting new ones; later appends get
    /// [`StoreError::Closed`]. Calling it again does nothing.
    async fn close(&self) -> Result<(), StoreError>;

    /// The id as clients see it (decimal by default).
    fn format_id(&self, id: LogId) -> String {
        id.0.to_string()
    }

    /// Appends [`format_id`](Self::format_id)'s text to `out`: what read paths call once per
    /// event, so a backend can write it without allocating. The default allocates.
    fn write_id(&self, id: LogId, out: &mut String) {
        out.push_str(&self.format_id(id));
    }

    /// Parses an id that [`format_id`](Self::format_id) produced.
    fn parse_id(&self, text: &str) -> Result<LogId, StoreError> {
        let invalid = || StoreError::InvalidId {
            text: text.to_owned(),
        };
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        text.parse().map(LogId).map_err(|_| invalid())
    }
}

/// Rejects names a cursor cannot be saved under.
pub(crate) fn check_consumer_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::EmptyConsumerName);
    }
    Ok(())
}
