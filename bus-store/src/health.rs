//! [`BackendHealth`]: what a networked backend (Redis) says about its connection, for
//! `/healthz`, `/stats` and `/metrics`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The connection state of a backend whose server can go away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackendHealth {
    /// `true` while the last call to the server succeeded; `false` while it is reconnecting
    /// (calls fail with [`StoreError::Unavailable`](crate::StoreError::Unavailable)).
    pub connected: bool,
    /// The last failure's message (naming the server and the cause), if there was one.
    pub last_error: Option<String>,
    /// When the last failure happened.
    pub last_error_at: Option<SystemTime>,
    /// How often the connection came back after failing, since the log was opened.
    pub reconnects: u64,
    /// Calls that failed, since the log was opened.
    pub errors: u64,
}

impl BackendHealth {
    /// `connected` or `reconnecting`.
    pub fn state(&self) -> &'static str {
        if self.connected {
            "connected"
        } else {
            "reconnecting"
        }
    }
}
