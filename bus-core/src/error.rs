//! Errors of the bus API.

/// What can go wrong when talking to an [`EventBus`](crate::EventBus).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// A subscription or filter pattern is not acceptable; the message names it.
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A [`Subscriber`](crate::Subscriber) returned no patterns, so it could never receive anything.
    #[error("subscriber {name:?} has no patterns: it would never receive an event")]
    NoPatterns {
        /// The subscriber's name.
        name: String,
    },
    /// A queue capacity of zero was asked for; every event would be dropped.
    #[error("queue capacity for {name:?} must be at least 1")]
    ZeroCapacity {
        /// The subscriber's name.
        name: String,
    },
    /// The bus was shut down and accepts no new subscriptions.
    #[error("the event bus has been shut down")]
    ShutDown,
    /// A blocking call was made from inside an async runtime, where it could deadlock.
    #[error("{0} blocks the thread and cannot be called from async code; use the async form")]
    BlockingInAsync(&'static str),
    /// A priority or a priority rule could not be read; the message names the text.
    #[error("invalid priority {text:?}: {reason}")]
    InvalidPriority {
        /// The text as given.
        text: String,
        /// Why it was refused.
        reason: String,
    },
    /// A rate limit could not be read; the message names the text and the accepted forms.
    #[error(
        "invalid rate limit {text:?}: {reason}; accepted forms: {}",
        crate::rate::ACCEPTED_FORMS
    )]
    InvalidRateLimit {
        /// The text as given.
        text: String,
        /// Why it was refused.
        reason: String,
    },
    /// No subscription has this id or name, so its settings cannot be changed.
    #[error("no subscription {0}")]
    NoSuchSubscription(String),
}
