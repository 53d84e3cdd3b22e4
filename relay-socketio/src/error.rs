//! Errors of the relay's API.

/// What can go wrong when setting up or feeding a [`SocketIoRelay`](crate::SocketIoRelay).
///
/// Connection trouble is not an error of the API: the relay retries on its own and reports
/// it through [`RelayStats`](crate::RelayStats) and `tracing`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// A [`RelayConfig`](crate::RelayConfig) field is not acceptable; `field` names it.
    #[error("invalid relay setting `{field}`: {reason}")]
    InvalidConfig {
        /// The field's name, as in `RelayConfig`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// [`start`](crate::SocketIoRelay::start) was called outside a tokio runtime.
    #[error("the Socket.IO relay needs a tokio runtime to start: call start() from async code")]
    NoRuntime,
    /// The relay was stopped and takes no more events.
    #[error("the Socket.IO relay has been stopped and takes no more events")]
    Stopped,
    /// Attaching the relay to a bus failed.
    #[error("could not subscribe the Socket.IO relay to the bus: {0}")]
    Subscribe(#[from] bus_core::BusError),
}
