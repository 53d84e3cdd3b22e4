//! The fan-out: a task blocked in `XREAD BLOCK` on the stream, so that entries appended by
//! other daemons wake this daemon's followers (SSE, `GET /events` waiters, durable consumers)
//! as promptly as its own appends do.

use std::sync::Arc;
use std::time::Duration;

use bus_store::LogId;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;

use crate::health::Health;
use crate::ids;
use crate::log::snapshot;
use crate::positions::Positions;

/// How long one `XREAD` blocks; the connection's response timeout must exceed it.
pub(crate) const BLOCK: Duration = Duration::from_secs(2);

/// Runs until aborted (the log's drop or close).
pub(crate) async fn follow(
    mut conn: ConnectionManager,
    key: String,
    server: String,
    positions: Arc<Positions>,
    health: Arc<Health>,
) {
    let mut failing = false;
    // The pause after a failure before asking again (the connection manager reconnects).
    let mut backoff = bus_store::LOG_RECONNECT.backoff();
    loop {
        let from = ids::format(LogId(positions.get().last));
        let read: Result<Option<StreamReadReply>, _> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("COUNT")
            .arg(1)
            .arg("STREAMS")
            .arg(&key)
            .arg(&from)
            .query_async(&mut conn)
            .await;
        let result = match read {
            Ok(Some(reply)) if reply.keys.iter().any(|k| !k.ids.is_empty()) => {
                // Something is new: learn the stream's extent in one atomic look.
                snapshot(&mut conn, &key, &server)
                    .await
                    .map(|extent| positions.observe(extent))
                    .map_err(|err| err.to_string())
            }
            Ok(_) => Ok(()),
            Err(err) => Err(format!("Redis at {server}: {err}")),
        };
        match &result {
            Ok(()) => health.ok(),
            Err(cause) => health.failed(cause),
        }
        match result {
            Ok(()) if failing => {
                failing = false;
                backoff.reset();
                tracing::info!(stream = %key, %server, "following the Redis stream again");
            }
            Ok(()) => {}
            Err(cause) => {
                if !failing {
                    tracing::warn!(stream = %key, %cause, "cannot follow the Redis stream; retrying");
                }
                failing = true;
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}
