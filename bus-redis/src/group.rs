//! [`RedisGroup`]: one member of a consumer group on the log's stream (the type's docs say
//! how the members share the work).

use std::time::Duration;

use bus_store::{LogId, StoreError, StoredEvent};
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};

use crate::{RedisOptions, entry, ids};

/// Which entries [`RedisGroup::read`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRead {
    /// This member's own pending entries after `after` (delivered to it before, not
    /// acknowledged: after a restart), oldest first; never blocks. Page on with the last id.
    Pending {
        /// Only entries with a larger id (`LogId(0)`: from the oldest).
        after: LogId,
    },
    /// Entries never delivered to any member, waiting up to the duration for the first.
    New(Duration),
}

/// What a read or a claim brought.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupBatch {
    /// The entries, oldest first (for a claim: in the pending list's order, by id).
    pub events: Vec<StoredEvent>,
    /// Pending entries that retention trimmed from the stream before they were delivered (a
    /// claim drops them from the pending list; a read of [`GroupRead::Pending`] reports
    /// them, and they must be acknowledged).
    ///
    /// [`GroupRead::Pending`]: GroupRead::Pending
    pub gone: Vec<LogId>,
}

/// One member of a consumer group on the log's stream, so that the members share the work:
/// each entry is delivered to one of them (`XREADGROUP`), stays pending with it until it
/// acknowledges it (`XACK`), and is claimed by a live member (`XAUTOCLAIM`) when it stayed
/// pending too long (its member died).
pub struct RedisGroup {
    conn: ConnectionManager,
    key: String,
    group: String,
    member: String,
    server: String,
}

impl std::fmt::Debug for RedisGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGroup")
            .field("stream", &self.key)
            .field("group", &self.group)
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// The longest [`GroupRead::New`] wait; the connection's response timeout is above it.
pub const MAX_BLOCK: Duration = Duration::from_secs(5);

impl RedisGroup {
    /// Connects (its own connection: a blocked read would hold up other commands) and
    /// creates the group when it does not exist yet, at the stream's end (a new group is not
    /// flooded with the stream's history; the stream is created when missing).
    pub async fn join(
        options: &RedisOptions,
        group: &str,
        member: &str,
    ) -> Result<RedisGroup, StoreError> {
        if group.is_empty() || member.is_empty() {
            return Err(StoreError::EmptyConsumerName);
        }
        let client = redis::Client::open(options.url.as_str())
            .map_err(|err| StoreError::unavailable(format!("invalid Redis URL: {err}")))?;
        let server = client.get_connection_info().addr().to_string();
        let config = crate::log::manager_config(MAX_BLOCK + Duration::from_secs(5));
        let mut conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|err| unavailable(&server, err))?;
        let created: Result<(), redis::RedisError> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&options.stream)
            .arg(group)
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Ok(()) => tracing::info!(stream = %options.stream, group, "created the consumer group"),
            Err(err) if err.code() == Some("BUSYGROUP") => {}
            Err(err) => return Err(unavailable(&server, err)),
        }
        Ok(RedisGroup {
            conn,
            key: options.stream.clone(),
            group: group.to_owned(),
            member: member.to_owned(),
            server,
        })
    }

    /// The group's name.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// This member's name.
    pub fn member(&self) -> &str {
        &self.member
    }

    fn fail(&self, err: impl std::fmt::Display) -> StoreError {
        unavailable(&self.server, err)
    }

    /// Up to `count` entries (`XREADGROUP`): see [`GroupRead`].
    pub async fn read(&self, what: GroupRead, count: usize) -> Result<GroupBatch, StoreError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.group)
            .arg(&self.member)
            .arg("COUNT")
            .arg(count.max(1));
        let from = match what {
            GroupRead::Pending { after } => ids::format(after),
            GroupRead::New(wait) => {
                let millis = wait.min(MAX_BLOCK).as_millis().max(1) as u64;
                cmd.arg("BLOCK").arg(millis);
                ">".to_owned()
            }
        };
        cmd.arg("STREAMS").arg(&self.key).arg(from);
        let reply: Option<StreamReadReply> = cmd
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|err| self.fail(err))?;
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        decode_all(entries, Vec::new())
    }

    /// Acknowledges `done` (`XACK`): they leave this member's pending list. Answers how many
    /// were pending.
    pub async fn ack(&self, done: &[LogId]) -> Result<u64, StoreError> {
        if done.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.key).arg(&self.group);
        for id in done {
            cmd.arg(ids::format(*id));
        }
        cmd.query_async(&mut self.conn.clone())
            .await
            .map_err(|err| self.fail(err))
    }

    /// Claims up to `count` entries that have been pending with any member for at least
    /// `idle` (`XAUTOCLAIM`, over the whole pending list): they become this member's, to
    /// deliver and acknowledge.
    pub async fn claim(&self, idle: Duration, count: usize) -> Result<GroupBatch, StoreError> {
        let mut start = "0-0".to_owned();
        let mut events = Vec::new();
        let mut gone = Vec::new();
        loop {
            let reply: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(&self.group)
                .arg(&self.member)
                .arg(idle.as_millis() as u64)
                .arg(&start)
                .arg("COUNT")
                .arg(count.saturating_sub(events.len()).max(1))
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|err| self.fail(err))?;
            for id in &reply.deleted_ids {
                gone.push(ids::from_redis(id)?);
            }
            let batch = decode_all(reply.claimed.into_iter(), Vec::new())?;
            events.extend(batch.events);
            gone.extend(batch.gone);
            if reply.next_stream_id == "0-0" || events.len() >= count {
                break;
            }
            start = reply.next_stream_id;
        }
        Ok(GroupBatch { events, gone })
    }

    /// Entries pending in the whole group (`XPENDING` summary).
    pub async fn pending(&self) -> Result<u64, StoreError> {
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(&self.key)
            .arg(&self.group)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(|err| self.fail(err))?;
        match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => Ok((*n).max(0) as u64),
                other => Err(self.fail(format!("unexpected XPENDING reply {other:?}"))),
            },
            other => Err(self.fail(format!("unexpected XPENDING reply {other:?}"))),
        }
    }
}

/// Decodes entries; those without fields were trimmed while pending.
fn decode_all(
    entries: impl Iterator<Item = StreamId>,
    mut gone: Vec<LogId>,
) -> Result<GroupBatch, StoreError> {
    let mut events = Vec::new();
    for entry in entries {
        if entry.map.is_empty() {
            gone.push(ids::from_redis(&entry.id)?);
        } else {
            events.push(entry::decode(&entry)?);
        }
    }
    Ok(GroupBatch { events, gone })
}

fn unavailable(server: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("Redis at {server}: {err}"))
}
