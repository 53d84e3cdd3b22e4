//! The relay's own counters and their serializable snapshot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point-in-time view of a relay, as returned by
/// [`SocketIoRelay::stats`](crate::SocketIoRelay::stats).
///
/// The bus's own row for the relay (`EventBus::stats().subscribers`) counts events handed to
/// the relay; these figures say what became of them.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RelayStats {
    /// Events the server confirmed (acknowledged, directly or by a later checkpoint).
    pub relayed: u64,
    /// Emits, resends included.
    pub sent: u64,
    /// Emits of an event already emitted before (after a reconnect or an ack timeout): each
    /// is a possible duplicate at the receiver, which can drop it by `event_id`.
    pub resent: u64,
    /// Events in the buffer now (waiting or emitted but unconfirmed).
    pub buffered: u64,
    /// The buffer's capacity.
    pub buffer_capacity: u64,
    /// Events dropped, oldest first, because the buffer was full.
    pub dropped: u64,
    /// Connection attempts.
    pub connection_attempts: u64,
    /// Failures: attempts that did not connect, and connections lost, closed by the server or
    /// torn down after an ack timeout.
    pub connection_failures: u64,
    /// Connections torn down because an acknowledgement (or an emit) took longer than
    /// `ack_timeout`; also counted in `connection_failures`.
    pub ack_timeouts: u64,
    /// Whether a connection is up (the server acknowledged the namespace) right now.
    pub connected: bool,
    /// When the server last confirmed an event, RFC 3339 UTC; `None` before the first.
    pub last_relay_time: Option<String>,
    /// The rate limit on emits and what it did (only while one is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<bus_core::RateLimitStats>,
    /// The send buffer's priority rules (only when it has any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priorities: Option<String>,
}

/// Live counters, updated by the relay's task and read by `stats()`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) relayed: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) resent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) connection_attempts: AtomicU64,
    pub(crate) connection_failures: AtomicU64,
    pub(crate) ack_timeouts: AtomicU64,
    pub(crate) connected: AtomicBool,
    last_relay_nanos: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub(crate) fn record_relayed(&self, confirmed: usize) {
        if confirmed == 0 {
            return;
        }
        Self::bump(&self.relayed, confirmed as u64);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(u128::from(u64::MAX)) as u64);
        self.last_relay_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, buffered: usize, buffer_capacity: usize) -> RelayStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last = load(&self.last_relay_nanos);
        RelayStats {
            relayed: load(&self.relayed),
            sent: load(&self.sent),
            resent: load(&self.resent),
            buffered: buffered as u64,
            buffer_capacity: buffer_capacity as u64,
            dropped: load(&self.dropped),
            connection_attempts: load(&self.connection_attempts),
            connection_failures: load(&self.connection_failures),
            ack_timeouts: load(&self.ack_timeouts),
            connected: self.connected.load(Ordering::Relaxed),
            last_relay_time: (last != 0).then(|| {
                let at = UNIX_EPOCH + Duration::from_nanos(last);
                humantime::format_rfc3339_micros(at).to_string()
            }),
            rate_limit: None,
            priorities: None,
        }
    }
}
