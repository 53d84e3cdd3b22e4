//! The seam between a consumer crate and the program that hosts the bus (the daemon):
//! one way to attach a consumer from its settings, and one way for it to contribute its
//! figures and read-only endpoints to the host.

use std::sync::Arc;

use serde_json::Value;

use crate::{DurableSubscriber, EventBus, RateLimit};

/// Renders the body of a read-only [`Endpoint`], fresh on every request.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A read-only text endpoint a consumer offers its host, such as Prometheus text on
/// `GET /metrics`. The daemon serves each one under its path (with its auth rules).
#[derive(Clone)]
pub struct Endpoint {
    /// The path, such as `/metrics`.
    pub path: &'static str,
    /// The `Content-Type` of the body.
    pub content_type: &'static str,
    /// True when the body carries no event payloads (counts only), so probes and scrapers
    /// may read it without the daemon's token.
    pub public: bool,
    /// Renders the body.
    pub render: Render,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A consumer attached to a bus, as its host sees it. Every method but
/// [`describe`](Attached::describe) has a default, so a consumer offers only what it has.
pub trait Attached: Send + Sync + 'static {
    /// A one-line description for the host's startup log, such as
    /// `socketio-relay (http://localhost:8765)`.
    fn describe(&self) -> String;

    /// The key and the figures this consumer adds to the host's stats (`GET /stats`), beyond
    /// the bus's own per-subscriber row; `None` adds nothing.
    fn stats(&self) -> Option<(&'static str, Value)> {
        None
    }

    /// The read-only endpoints this consumer offers.
    fn endpoints(&self) -> Vec<Endpoint> {
        Vec::new()
    }

    /// The consumer's durable side, when it reads the host's event log rather than the bus
    /// (see [`DurableSubscriber`]); a host with a log runs a follower for it. `None` (the
    /// default) for consumers fed by the bus alone.
    fn durable(&self) -> Option<Arc<dyn DurableSubscriber>> {
        None
    }

    /// The name of this consumer's rate limit among the host's runtime settings (the daemon's
    /// `PATCH /config`), such as `"relay"`; `None` (the default) when it has none to change.
    fn rate_limit_key(&self) -> Option<&'static str> {
        None
    }

    /// Its rate limit now (`None`: unlimited, or none to change).
    fn rate_limit(&self) -> Option<RateLimit> {
        None
    }

    /// Changes its rate limit while it runs (`None`: no limit); `Err` says why it cannot.
    fn set_rate_limit(&self, limit: Option<RateLimit>) -> Result<(), String> {
        let _ = limit;
        Err(format!("{} has no rate limit to change", self.describe()))
    }
}

/// A consumer crate's entry point: builds the consumer from its settings (a value: consumers
/// read no environment variables) and attaches it to `bus`.
///
/// ```
/// use std::sync::Arc;
/// use bus_core::{Attached, Consumer, EventBus};
///
/// struct Printer;
/// struct Attachment(bus_core::SubscriptionId);
/// impl Attached for Attachment {
///     fn describe(&self) -> String {
///         format!("printer (subscription {})", self.0)
///     }
/// }
/// impl Consumer for Printer {
///     type Settings = String; // the pattern to print
///     type Error = bus_core::BusError;
///     fn install(bus: &EventBus, pattern: String) -> Result<Arc<dyn Attached>, Self::Error> {
///         let id = bus.on(&pattern, |e: &bus_core::Event| eprintln!("{}", e.event_type()))?;
///         Ok(Arc::new(Attachment(id)))
///     }
/// }
///
/// let bus = EventBus::new();
/// let attached = Printer::install(&bus, "hook.*".into())?;
/// assert!(attached.describe().starts_with("printer"));
/// # Ok::<(), bus_core::BusError>(())
/// ```
pub trait Consumer {
    /// The consumer's settings, with their defaults stated once in its `Default`.
    type Settings;
    /// Why it could not be attached.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Builds the consumer and attaches it to `bus`.
    fn install(bus: &EventBus, settings: Self::Settings) -> Result<Arc<dyn Attached>, Self::Error>;
}
