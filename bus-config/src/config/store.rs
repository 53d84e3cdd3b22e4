//! The durable log's section: `CLAUDE_MPM_EVENTBUS_STORE`, `_STORE_SYNC`,
//! `_RETENTION_EVENTS`, `_RETENTION_AGE`. The settings types are bus-store's own.

use std::path::PathBuf;
use std::time::Duration;

use bus_store::{Durability, RetentionPolicy};
use serde_json::Value;

use super::reader::Reader;

/// Where the daemon's event log lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// In memory: today's process only (`CLAUDE_MPM_EVENTBUS_STORE=memory`).
    Memory,
    /// A SQLite file.
    File(PathBuf),
}

/// The durable log's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    /// `CLAUDE_MPM_EVENTBUS_STORE`.
    pub location: StoreLocation,
    /// `CLAUDE_MPM_EVENTBUS_STORE_SYNC`.
    pub durability: Durability,
    /// `CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS` and `CLAUDE_MPM_EVENTBUS_RETENTION_AGE`.
    pub retention: RetentionPolicy,
}

/// The default store file: `$XDG_STATE_HOME/eventbus/events.db`, else
/// `$HOME/.local/state/eventbus/events.db`, else `./eventbus-events.db` (no home at all).
pub fn default_store_path() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        });
    match state {
        Some(dir) => dir.join("eventbus").join("events.db"),
        None => PathBuf::from("eventbus-events.db"),
    }
}

impl StoreSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        let defaults = RetentionPolicy::default();
        let location = r.value(
            "CLAUDE_MPM_EVENTBUS_STORE",
            StoreLocation::File(default_store_path()),
            |s| match s.trim() {
                "" => Err("a file path, or memory".to_owned()),
                t if t.eq_ignore_ascii_case("memory") => Ok(StoreLocation::Memory),
                _ => Ok(StoreLocation::File(PathBuf::from(s))),
            },
            |l| match l {
                StoreLocation::Memory => Value::from("memory"),
                StoreLocation::File(p) => Value::from(p.display().to_string()),
            },
        );
        let durability = r.value(
            "CLAUDE_MPM_EVENTBUS_STORE_SYNC",
            Durability::Full,
            |s| match s.trim().to_ascii_lowercase().as_str() {
                "full" => Ok(Durability::Full),
                "normal" => Ok(Durability::Normal),
                "off" => Ok(Durability::Off),
                _ => Err("full, normal or off".to_owned()),
            },
            |d| {
                Value::from(match d {
                    Durability::Full => "full",
                    Durability::Normal => "normal",
                    Durability::Off => "off",
                })
            },
        );
        let max_events = r.number(
            "CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS",
            defaults.max_events,
            1,
            1_000_000_000,
        );
        let max_age = r.positive_duration(
            "CLAUDE_MPM_EVENTBUS_RETENTION_AGE",
            defaults.max_age,
            Duration::from_secs(3650 * 24 * 3600),
        );
        StoreSettings {
            location,
            durability,
            retention: RetentionPolicy {
                max_events,
                max_age,
            },
        }
    }
}
