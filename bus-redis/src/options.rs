//! [`RedisOptions`]: where the log is and how long it keeps events.

use bus_store::RetentionPolicy;

/// The stream the daemon uses unless `CLAUDE_MPM_EVENTBUS_REDIS_STREAM` names another.
pub const DEFAULT_STREAM: &str = "eventbus:events";

/// Where the log is and how long it keeps events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port/db` or `rediss://...` (TLS).
    pub url: String,
    /// The stream's key; its cursors live in the hash `<stream>:cursors`.
    pub stream: String,
    /// `max_events` becomes `XADD MAXLEN =` (exact, so "at most" holds); `max_age` is applied
    /// with `XTRIM MINID` on the prefix of entries older than it.
    pub retention: RetentionPolicy,
}

impl RedisOptions {
    /// The log at `url` on [`DEFAULT_STREAM`], with the default retention.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: DEFAULT_STREAM.to_owned(),
            retention: RetentionPolicy::default(),
        }
    }
}
