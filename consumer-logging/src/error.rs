//! Errors of this crate.

/// What can go wrong when configuring event logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// One of the `patterns` is not a valid event-type pattern; the message names it.
    #[error("consumer-logging: bad event-type pattern: {0}")]
    InvalidPattern(#[source] bus_core::BusError),
    /// `patterns` was empty, so the subscriber could never log anything.
    #[error("consumer-logging: `patterns` is empty; use [\"*\"] to log every event")]
    NoPatterns,
    /// The bus refused the subscription (for example, it has been shut down).
    #[error("consumer-logging: the bus refused the subscription: {0}")]
    Subscribe(#[source] bus_core::BusError),
    /// A log format other than `text` or `json` was asked for.
    #[error("unknown log format {0:?}: expected \"text\" or \"json\"")]
    UnknownFormat(String),
    /// A global tracing subscriber is already installed in this process.
    #[error("a global tracing subscriber is already installed: {0}")]
    AlreadyInstalled(String),
}
