//! [`RedisLog`]: the [`EventLog`] contract on one Redis stream.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bus_store::{
    BackendHealth, EventLog, LogId, NewEvent, PAGE_MAX_BYTES, Page, ReadQuery, RetentionPolicy,
    StoreError, StoreStats, StoredEvent,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamInfoStreamReply, StreamRangeReply};
use redis::{RedisError, Value};
use tokio::sync::watch;
use tokio::task::AbortHandle;
use wildmatch::WildMatch;

use crate::health::Health;
use crate::positions::{Extent, Positions};
use crate::scan::{SCAN_CHUNK, next_chunk};
use crate::{RedisOptions, entry, follower, ids};

/// How often age-based retention looks at the oldest entries (on append, like the others).
const AGE_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// An [`EventLog`] on one Redis stream, shared by every daemon that opens the same stream:
/// each sees every entry, in stream order, whichever daemon appended it.
///
/// Ids are the stream ids `0-1`, `0-2`, ... (see the crate's docs); `format_id` and
/// `parse_id` use that text. Needs Redis 7.0 or newer (`XADD key 0-*`).
pub struct RedisLog {
    conn: ConnectionManager,
    key: String,
    cursors_key: String,
    /// `host:port`, for error messages (never the URL: it may hold a password).
    server: String,
    retention: RetentionPolicy,
    positions: Arc<Positions>,
    follower: AbortHandle,
    closed: AtomicBool,
    appended: AtomicU64,
    commits: AtomicU64,
    last_age_check: Mutex<Option<Instant>>,
    health: Arc<Health>,
}

/// The stream's newest issued id and length, in one atomic look (`XINFO STREAM`).
pub(crate) async fn snapshot(
    conn: &mut ConnectionManager,
    key: &str,
    server: &str,
) -> Result<Extent, StoreError> {
    let info: Result<StreamInfoStreamReply, RedisError> = redis::cmd("XINFO")
        .arg("STREAM")
        .arg(key)
        .query_async(conn)
        .await;
    match info {
        Ok(info) => Ok(Extent {
            last: ids::from_redis(&info.last_generated_id)?.0,
            stored: info.length as u64,
        }),
        // No stream yet: nothing was ever appended.
        Err(err) if err.to_string().contains("no such key") => Ok(Extent::default()),
        Err(err) => Err(unavailable(server, err)),
    }
}

/// [`StoreError::Unavailable`] naming the server and Redis's cause.
fn unavailable(server: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::unavailable(format!("Redis at {server}: {err}"))
}

/// Connection attempts one reconnect of the connection manager makes before the call that
/// waits on it fails (then the caller's own backoff takes over): few, so that a publish
/// answers 503 promptly while Redis is away.
const MANAGER_ATTEMPTS: usize = 2;

/// A connection manager's settings: its reconnects wait by [`bus_store::LOG_RECONNECT`]'s
/// doubling delays and cap (the manager's backon, whose jitter adds 0-100 % of a wait).
pub(crate) fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    let policy = bus_store::LOG_RECONNECT;
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(MANAGER_ATTEMPTS)
        .set_min_delay(policy.first_delay)
        .set_exponent_base(2.0)
        .set_max_delay(policy.cooldown)
}

impl RedisLog {
    /// Connects (the URL is checked first), reads the stream's extent and starts following it.
    /// Must be called inside a tokio runtime.
    pub async fn open(options: RedisOptions) -> Result<Self, StoreError> {
        let client = redis::Client::open(options.url.as_str())
            .map_err(|err| StoreError::unavailable(format!("invalid Redis URL: {err}")))?;
        let server = client.get_connection_info().addr().to_string();
        let mut conn = ConnectionManager::new_with_config(
            client.clone(),
            manager_config(Duration::from_secs(10)),
        )
        .await
        .map_err(|err| unavailable(&server, err))?;
        let extent = snapshot(&mut conn, &options.stream, &server).await?;
        // Blocking reads get their own connection: on the shared one they would hold up
        // every command queued behind them.
        let follow_conn = ConnectionManager::new_with_config(
            client,
            manager_config(follower::BLOCK + Duration::from_secs(5)),
        )
        .await
        .map_err(|err| unavailable(&server, err))?;
        let positions = Arc::new(Positions::new(extent));
        let health = Arc::new(Health::new());
        let follower = tokio::spawn(follower::follow(
            follow_conn,
            options.stream.clone(),
            server.clone(),
            Arc::clone(&positions),
            Arc::clone(&health),
        ))
        .abort_handle();
        Ok(Self {
            conn,
            cursors_key: format!("{}:cursors", options.stream),
            key: options.stream,
            server,
            retention: options.retention,
            positions,
            follower,
            closed: AtomicBool::new(false),
            appended: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            last_age_check: Mutex::new(None),
            health,
        })
    }

    /// The stream's key.
    pub fn stream(&self) -> &str {
        &self.key
    }

    fn fail(&self, err: impl std::fmt::Display) -> StoreError {
        let error = unavailable(&self.server, err);
        self.health.failed(&error.to_string());
        error
    }

    /// Marks a call answered: the connection is up.
    fn answered<T>(&self, value: T) -> T {
        self.health.ok();
        value
    }

    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    async fn range(
        &self,
        command: &str,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let reply: StreamRangeReply = redis::cmd(command)
            .arg(&self.key)
            .arg(from)
            .arg(to)
            .arg("COUNT")
            .arg(count)
            .query_async(&mut self.conn.clone())
            .await
            .map(|r| self.answered(r))
            .map_err(|err| self.fail(err))?;
        reply.ids.iter().map(entry::decode).collect()
    }

    /// Whether age retention is due now (at most once per [`AGE_CHECK_INTERVAL`]).
    fn age_check_due(&self) -> bool {
        let mut last = self
            .last_age_check
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < AGE_CHECK_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    /// Trims the prefix of entries older than `max_age` (`XTRIM MINID`, which only removes
    /// lower ids, so it never races an append).
    async fn trim_by_age(&self) -> Result<(), StoreError> {
        let Some(cutoff) = SystemTime::now().checked_sub(self.retention.max_age) else {
            return Ok(());
        };
        let mut trimmed = false;
        // The oldest entry alone usually answers (it is young): start with one, then double.
        let mut count = 1;
        loop {
            let oldest = self.range("XRANGE", "-", "+", count).await?;
            let Some(last) = oldest.last() else { break };
            let keep_from = match oldest.iter().position(|e| e.timestamp >= cutoff) {
                Some(0) => break,
                Some(young) => oldest[young].id,
                None => LogId(last.id.0 + 1),
            };
            let _: u64 = redis::cmd("XTRIM")
                .arg(&self.key)
                .arg("MINID")
                .arg("=")
                .arg(ids::format(keep_from))
                .query_async(&mut self.conn.clone())
                .await
                .map_err(|err| self.fail(err))?;
            trimmed = true;
            if oldest.len() < count || keep_from != LogId(last.id.0 + 1) {
                break;
            }
            count = (count * 2).min(SCAN_CHUNK);
        }
        if trimmed {
            let extent = snapshot(&mut self.conn.clone(), &self.key, &self.server).await?;
            self.positions.observe(extent);
        }
        Ok(())
    }
}

impl Drop for RedisLog {
    fn drop(&mut self) {
        self.follower.abort();
    }
}

/// How many events after `after` were trimmed away (ids are dense, so this is exact).
fn missed_after(after: Option<LogId>, extent: Extent) -> u64 {
    let (Some(after), Some(last)) = (after, extent.last()) else {
        return 0;
    };
    let oldest_kept = extent.first().map_or(last.0.saturating_add(1), |f| f.0);
    oldest_kept.saturating_sub(1).saturating_sub(after.0)
}

fn text_of(value: Value) -> Result<String, String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes).map_err(|e| e.to_string()),
        Value::SimpleString(s) => Ok(s),
        other => Err(format!("unexpected reply {other:?}")),
    }
}

#[async_trait]
impl EventLog for RedisLog {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<LogId>, StoreError> {
        self.check_open()?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // MULTI/EXEC: the batch gets contiguous ids even with other daemons appending, and
        // the length read in the same transaction matches the ids.
        let mut pipe = redis::pipe();
        pipe.atomic();
        let max_len = i64::try_from(self.retention.max_events).ok();
        let last = batch.len() - 1;
        for (i, event) in batch.iter().enumerate() {
            let cmd = pipe.cmd("XADD").arg(&self.key);
            // Trimmed once, by the batch's last entry: inside MULTI/EXEC nobody sees the
            // stream between two XADDs, so this leaves exactly what trimming each would.
            if let (Some(max_len), true) = (max_len, i == last) {
                cmd.arg("MAXLEN").arg("=").arg(max_len);
            }
            cmd.arg("0-*");
            for (field, value) in entry::fields(event) {
                cmd.arg(field).arg(value);
            }
        }
        pipe.cmd("XLEN").arg(&self.key);
        let mut reply: Vec<Value> = pipe
            .query_async(&mut self.conn.clone())
            .await
            .map(|r| self.answered(r))
            .map_err(|err| self.fail(err))?;
        let stored = match reply.pop() {
            Some(Value::Int(n)) => n.max(0) as u64,
            other => return Err(self.fail(format!("unexpected XLEN reply {other:?}"))),
        };
        let ids = reply
            .into_iter()
            .map(|v| {
                text_of(v)
                    .map_err(|e| self.fail(e))
                    .and_then(|t| ids::from_redis(&t))
            })
            .collect::<Result<Vec<LogId>, StoreError>>()?;
        let Some(last) = ids.last() else {
            return Err(self.fail("EXEC answered no ids"));
        };
        self.positions.observe(Extent {
            last: last.0,
            stored,
        });
        self.appended.fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        if self.age_check_due() {
            // The events are in Redis already: a failing trim must not fail the append.
            if let Err(err) = self.trim_by_age().await {
                tracing::warn!(stream = %self.key, %err, "age retention failed; retrying later");
            }
        }
        Ok(ids)
    }

    async fn read(&self, query: ReadQuery) -> Result<Page, StoreError> {
        // Compared in microseconds, the precision timestamps are stored with.
        let since = query.since.map(entry::to_micros);
        let pattern = query.pattern.as_deref().map(WildMatch::new);
        let accepts = |event: &StoredEvent| {
            since.is_none_or(|since| entry::to_micros(event.timestamp) >= since)
                && pattern
                    .as_ref()
                    .is_none_or(|p| p.matches(&event.event_type))
        };
        let limit = query.limit.max(1);
        let missed = missed_after(query.after, self.positions.get());
        let mut from = match query.after {
            None => "-".to_owned(),
            Some(LogId(u64::MAX)) => return Ok(Page::default()),
            Some(after) => format!("({}", ids::format(after)),
        };
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let (mut seen, mut seen_bytes) = (0usize, 0usize);
        let mut more = false;
        'scan: loop {
            let chunk = next_chunk(seen, seen_bytes, bytes).min(limit + 1);
            let got = self.range("XRANGE", &from, "+", chunk).await?;
            let end = got.len() < chunk;
            let Some(last) = got.last().map(|e| e.id) else {
                break;
            };
            seen += got.len();
            seen_bytes += got.iter().map(|e| e.data.as_str().len()).sum::<usize>();
            for event in got {
                if events.len() == limit || bytes >= PAGE_MAX_BYTES {
                    more = true;
                    break 'scan;
                }
                if accepts(&event) {
                    bytes += event.data.as_str().len();
                    events.push(event);
                }
            }
            if end || last.0 == u64::MAX {
                break;
            }
            from = format!("({}", ids::format(last));
        }
        Ok(Page::scanned(events, more, missed))
    }

    async fn read_last(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = Vec::new();
        let mut bytes = 0usize;
        let mut to = "+".to_owned();
        'scan: while events.len() < limit {
            let chunk = next_chunk(events.len(), bytes, bytes).min(limit - events.len());
            let got = self.range("XREVRANGE", &to, "-", chunk).await?;
            let end = got.len() < chunk;
            let Some(oldest) = got.last().map(|e| e.id) else {
                break;
            };
            for event in got {
                if bytes >= PAGE_MAX_BYTES {
                    break 'scan;
                }
                bytes += event.data.as_str().len();
                events.push(event);
            }
            if end || oldest.0 == 0 {
                break;
            }
            to = format!("({}", ids::format(oldest));
        }
        events.reverse();
        Ok(events)
    }

    fn first_id(&self) -> Option<LogId> {
        self.positions.get().first()
    }

    fn last_id(&self) -> Option<LogId> {
        self.positions.get().last()
    }

    fn subscribe_appends(&self) -> watch::Receiver<Option<LogId>> {
        self.positions.subscribe()
    }

    async fn save_cursor(&self, consumer: &str, id: LogId) -> Result<(), StoreError> {
        if consumer.is_empty() {
            return Err(StoreError::EmptyConsumerName);
        }
        self.check_open()?;
        let _: i64 = redis::cmd("HSET")
            .arg(&self.cursors_key)
            .arg(consumer)
            .arg(ids::format(id))
            .query_async(&mut self.conn.clone())
            .await
            .map(|r| self.answered(r))
            .map_err(|err| self.fail(err))?;
        Ok(())
    }

    async fn cursor(&self, consumer: &str) -> Result<Option<LogId>, StoreError> {
        if consumer.is_empty() {
            return Err(StoreError::EmptyConsumerName);
        }
        let saved: Option<String> = redis::cmd("HGET")
            .arg(&self.cursors_key)
            .arg(consumer)
            .query_async(&mut self.conn.clone())
            .await
            .map(|r| self.answered(r))
            .map_err(|err| self.fail(err))?;
        saved.map(|text| ids::from_redis(&text)).transpose()
    }

    fn stats(&self) -> StoreStats {
        let extent = self.positions.get();
        StoreStats {
            backend: "redis".to_owned(),
            appended: self.appended.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            trimmed: self.positions.trimmed(),
            stored: extent.stored,
            first_id: extent.first(),
            last_id: extent.last(),
            bytes_on_disk: None,
        }
    }

    fn health(&self) -> Option<BackendHealth> {
        Some(self.health.get())
    }

    async fn close(&self) -> Result<(), StoreError> {
        // Every append answered only after EXEC: nothing is pending.
        self.closed.store(true, Ordering::Release);
        self.follower.abort();
        Ok(())
    }

    fn format_id(&self, id: LogId) -> String {
        ids::format(id)
    }

    fn parse_id(&self, text: &str) -> Result<LogId, StoreError> {
        ids::parse(text).ok_or_else(|| StoreError::InvalidId {
            text: text.to_owned(),
        })
    }
}
