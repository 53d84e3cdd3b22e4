//! Pages rendered straight to text: the read routes' fast path. A backend hands each event
//! of a page, borrowed from its own read buffer, to the caller's renderer, so serving a page
//! builds no [`StoredEvent`] (two allocations and a copy of the data each) on the way.

use std::time::SystemTime;

use bus_core::Priority;

use crate::{LogId, StoredEvent};

/// A stored event as a backend's scan sees it, borrowed for the length of one call of a
/// [`Render`]: the same fields as a [`StoredEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    /// Its position in the log.
    pub id: LogId,
    /// The event type.
    pub event_type: &'a str,
    /// The payload's JSON text, as it was appended.
    pub data: &'a str,
    /// When the event happened, to the microsecond.
    pub timestamp: SystemTime,
    /// The priority its publisher gave it.
    pub priority: Option<Priority>,
}

impl StoredEvent {
    /// This event, borrowed, as a [`Render`] receives it.
    pub fn borrowed(&self) -> EventRef<'_> {
        EventRef {
            id: self.id,
            event_type: &self.event_type,
            data: self.data.as_str(),
            timestamp: self.timestamp,
            priority: self.priority,
        }
    }
}

/// What [`EventLog::read_rendered`](crate::EventLog::read_rendered) calls for each event of
/// the page, in log order, with the text written so far: it appends the event's text (or
/// nothing, to leave the event out).
pub type Render = Box<dyn FnMut(EventRef<'_>, &mut String) + Send>;

/// A page read by [`EventLog::read_rendered`](crate::EventLog::read_rendered).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RenderedPage {
    /// The text the caller passed in, with each event's rendering appended.
    pub text: String,
    /// How many events the page held (each was given to the renderer).
    pub events: usize,
    /// As [`Page::next`](crate::Page::next).
    pub next: Option<LogId>,
    /// As [`Page::missed`](crate::Page::missed).
    pub missed: u64,
}
