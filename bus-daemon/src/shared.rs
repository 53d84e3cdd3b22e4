//! The bus on a shared log (Redis): every daemon on the stream dispatches every event of it,
//! whichever daemon it was posted to, to its own consumers (handlers, logging, metrics), in
//! stream order, through one [`LogFeed`] whose cursor `bus@<member>` lets a restart resume
//! where the daemon stopped. `GET /stats` shows it under `"feed"`.

use std::net::SocketAddr;
use std::sync::Arc;

use bus_config::{RedisSettings, WiringError};
use bus_core::Attached;
use bus_store::{FeedStatus, LogFeed};
use serde_json::Value;

use crate::ingest::Ingest;

/// This daemon's name on the stream: `CLAUDE_MPM_EVENTBUS_REDIS_MEMBER`, else
/// `<hostname>:<HTTP port>`.
pub fn member_name(settings: &RedisSettings, addr: SocketAddr) -> String {
    if let Some(member) = &settings.member {
        return member.clone();
    }
    format!("{}:{}", hostname(), addr.port())
}

/// The machine's name, as the kernel knows it (`localhost` when it cannot be read).
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|text| text.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|n| !n.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The consumer group the durable consumers join, when `CLAUDE_MPM_RELAY_GROUP` names one;
/// an error when it does without a Redis log (`member` is `None` then).
pub fn group_setup(
    config: &bus_config::Config,
    member: Option<&str>,
) -> Result<Option<crate::group::GroupSetup>, WiringError> {
    let Some(group) = &config.relay.group else {
        return Ok(None);
    };
    let (Some(redis), Some(member)) = (&config.store.redis, member) else {
        return Err(WiringError {
            what: "CLAUDE_MPM_RELAY_GROUP",
            reason: format!(
                "{group:?} needs the log on Redis: set CLAUDE_MPM_EVENTBUS_REDIS_URL (a consumer group is a Redis stream's)"
            ),
        });
    };
    Ok(Some(crate::group::GroupSetup {
        options: bus_redis::RedisOptions {
            url: redis.url.expose().to_owned(),
            stream: redis.stream.clone(),
            retention: config.store.retention,
        },
        group: group.clone(),
        member: member.to_owned(),
        claim_after: redis.claim_after,
    }))
}

/// Starts the feed of `ingest`'s (shared) log into its bus, as `bus@<member>`.
pub async fn start_feed(ingest: &Ingest, member: &str) -> Result<LogFeed, WiringError> {
    let name = format!("bus@{member}");
    ingest.feed(&name).await.map_err(|e| WiringError {
        what: "the bus's feed from the Redis stream",
        reason: format!("{name}: {e}"),
    })
}

/// The feed's figures in `GET /stats`: `"feed": {"name", "position", "lag", ...}`.
pub(crate) struct FeedStats(pub(crate) FeedStatus);

impl Attached for FeedStats {
    fn describe(&self) -> String {
        format!("bus feed ({})", self.0.name())
    }

    fn stats(&self) -> Option<(&'static str, Value)> {
        Some(("feed", self.0.to_json()))
    }
}

/// `consumers` with the feed's figures added.
pub(crate) fn with_feed(
    feed: Option<&LogFeed>,
    mut consumers: Vec<Arc<dyn Attached>>,
) -> Vec<Arc<dyn Attached>> {
    if let Some(feed) = feed {
        consumers.push(Arc::new(FeedStats(feed.status())));
    }
    consumers
}
