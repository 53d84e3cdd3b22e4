//! Errors of this crate.

use std::net::SocketAddr;

/// What can go wrong when attaching metrics to a bus or serving them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// One of the `patterns` is not a valid event-type pattern; the message names it.
    #[error("consumer-metrics: bad event-type pattern: {0}")]
    InvalidPattern(#[source] bus_core::BusError),
    /// `patterns` was empty, so the subscriber could never count anything.
    #[error("consumer-metrics: `patterns` is empty; use [\"*\"] to count every event")]
    NoPatterns,
    /// The bus refused the subscription (for example, it has been shut down).
    #[error("consumer-metrics: the bus refused the subscription: {0}")]
    Subscribe(#[source] bus_core::BusError),
    /// The HTTP listener could not bind its address (in use, not local, no permission).
    #[error("consumer-metrics: cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why binding failed.
        #[source]
        source: std::io::Error,
    },
    /// The listener's thread or runtime could not start.
    #[error("consumer-metrics: cannot start the metrics listener: {0}")]
    Start(#[source] std::io::Error),
}
