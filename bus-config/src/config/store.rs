//! The durable log's section: `CLAUDE_MPM_EVENTBUS_STORE`, `_STORE_SYNC`,
//! `_RETENTION_EVENTS`, `_RETENTION_AGE`, `_REDIS_URL`, `_REDIS_STREAM`, `_REDIS_MEMBER`,
//! `_REDIS_CLAIM_AFTER`. The settings types
//! are bus-store's own.

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

/// The stream the Redis log uses unless `CLAUDE_MPM_EVENTBUS_REDIS_STREAM` names another.
pub const DEFAULT_REDIS_STREAM: &str = "eventbus:events";

/// A Redis URL whose password never shows: `Display` and `Debug` print it as `****`.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(String);

impl RedisUrl {
    /// Checks `text`: a `redis://` or `rediss://` URL with a host and, if any, a numeric db.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "redis://[user:password@]host[:port][/db] or rediss://... (TLS)";
        let url = url::Url::parse(text.trim()).map_err(|_| expected.to_owned())?;
        if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none_or(str::is_empty) {
            return Err(expected.to_owned());
        }
        let db = url.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(format!(
                "{expected}: the path is the database number, not {db:?}"
            ));
        }
        Ok(Self(url.to_string()))
    }

    /// The URL itself, password included, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `****`.
    pub fn masked(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut url) if url.password().is_some() => {
                // Only fails for URLs that cannot have a password, which this one has.
                let _ = url.set_password(Some("****"));
                url.to_string()
            }
            _ => self.0.clone(),
        }
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisUrl({})", self.masked())
    }
}

/// Where the Redis log is: `CLAUDE_MPM_EVENTBUS_REDIS_URL` and `_REDIS_STREAM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisSettings {
    /// `CLAUDE_MPM_EVENTBUS_REDIS_URL`.
    pub url: RedisUrl,
    /// `CLAUDE_MPM_EVENTBUS_REDIS_STREAM`.
    pub stream: String,
    /// `CLAUDE_MPM_EVENTBUS_REDIS_MEMBER`: this daemon's name on the stream (its bus feed's
    /// cursor, its consumer name in groups); `None`: `<hostname>:<HTTP port>`.
    pub member: Option<String>,
    /// `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER`: how long an entry of a consumer group stays
    /// pending with one member before a live member claims it (`XAUTOCLAIM`).
    pub claim_after: Duration,
}

/// The default of `CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER`.
pub const DEFAULT_CLAIM_AFTER: Duration = Duration::from_secs(30);

/// The durable log's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreSettings {
    /// `CLAUDE_MPM_EVENTBUS_STORE`.
    pub location: StoreLocation,
    /// Set when `CLAUDE_MPM_EVENTBUS_REDIS_URL` is: the log is then on Redis and `location`
    /// is not used.
    pub redis: Option<RedisSettings>,
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
        let redis_url = r.value(
            "CLAUDE_MPM_EVENTBUS_REDIS_URL",
            None,
            |s| RedisUrl::parse(s).map(Some),
            |u| u.as_ref().map_or(Value::Null, |u| Value::from(u.masked())),
        );
        let stream = r.value(
            "CLAUDE_MPM_EVENTBUS_REDIS_STREAM",
            DEFAULT_REDIS_STREAM.to_owned(),
            |s| {
                if s.is_empty() || s.chars().any(char::is_whitespace) {
                    Err("a Redis key (no spaces)".to_owned())
                } else {
                    Ok(s.to_owned())
                }
            },
            |s| Value::from(s.as_str()),
        );
        let member = r.value(
            "CLAUDE_MPM_EVENTBUS_REDIS_MEMBER",
            None,
            |s| {
                if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    Err("a name without spaces, such as host-a:8770".to_owned())
                } else {
                    Ok(Some(s.to_owned()))
                }
            },
            |m| m.as_ref().map_or(Value::Null, |m| Value::from(m.as_str())),
        );
        let claim_after = r.positive_duration(
            "CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER",
            DEFAULT_CLAIM_AFTER,
            Duration::from_secs(24 * 3600),
        );
        StoreSettings {
            location,
            redis: redis_url.map(|url| RedisSettings {
                url,
                stream,
                member,
                claim_after,
            }),
            durability,
            retention: RetentionPolicy {
                max_events,
                max_age,
            },
        }
    }
}
