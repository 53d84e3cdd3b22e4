//! [`BackendHealth`]: what a networked backend (Redis) says about its connection, for
//! `/healthz`, `/stats` and `/metrics`.

use std::time::{Duration, SystemTime};

use bus_core::ReconnectPolicy;
use serde::{Deserialize, Serialize};

/// How readers of a networked log wait between attempts while its server is away (the Redis
/// log's follower and connections, the bus feed, a consumer group's follower): 0.1 s doubled
/// for 4 retries (0.1, 0.2, 0.4, 0.8 s), then every 2 s, each ±20 % jitter; a success starts
/// again from 0.1 s. The same policy (and crate, backon) as the Socket.IO relay's reconnects.
pub const LOG_RECONNECT: ReconnectPolicy = ReconnectPolicy {
    retries: 4,
    first_delay: Duration::from_millis(100),
    cooldown: Duration::from_secs(2),
};

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
