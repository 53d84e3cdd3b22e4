//! The connection's health as the log's calls see it: every failed call marks it
//! reconnecting (with the cause), the next successful one connected again (a reconnect).

use std::sync::Mutex;
use std::time::SystemTime;

use bus_store::BackendHealth;

/// Shared by the log's calls and its follower.
#[derive(Debug)]
pub(crate) struct Health(Mutex<BackendHealth>);

impl Health {
    pub(crate) fn new() -> Self {
        Health(Mutex::new(BackendHealth {
            connected: true,
            last_error: None,
            last_error_at: None,
            reconnects: 0,
            errors: 0,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BackendHealth> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A call succeeded.
    pub(crate) fn ok(&self) {
        let mut health = self.lock();
        if !health.connected {
            health.connected = true;
            health.reconnects += 1;
        }
    }

    /// A call failed with `cause`.
    pub(crate) fn failed(&self, cause: &str) {
        let mut health = self.lock();
        health.connected = false;
        health.errors += 1;
        health.last_error = Some(cause.to_owned());
        health.last_error_at = Some(SystemTime::now());
    }

    /// A copy, for stats.
    pub(crate) fn get(&self) -> BackendHealth {
        self.lock().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_then_a_success_is_one_reconnect() {
        let health = Health::new();
        health.ok();
        assert_eq!((health.get().connected, health.get().reconnects), (true, 0));
        health.failed("Redis at 127.0.0.1:1: refused");
        health.failed("Redis at 127.0.0.1:1: refused again");
        let down = health.get();
        assert_eq!(
            (down.connected, down.errors, down.state()),
            (false, 2, "reconnecting")
        );
        assert_eq!(
            down.last_error.as_deref(),
            Some("Redis at 127.0.0.1:1: refused again")
        );
        health.ok();
        health.ok();
        assert_eq!((health.get().connected, health.get().reconnects), (true, 1));
    }
}
