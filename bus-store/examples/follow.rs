//! Appends events from one task while another follows the log the way `eventbus tail -f`
//! does: read a page, and when at the end wait on `subscribe_appends` instead of polling.
//!
//! `cargo run -p bus-store --example follow [STORE_PATH]`

use std::sync::Arc;
use std::time::Duration;

use bus_store::{
    EventLog, JsonText, LogId, NewEvent, ReadQuery, SqliteLog, SqliteOptions, StoreError,
};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), StoreError> {
    let dir = tempfile::tempdir().map_err(|source| StoreError::Io {
        path: "tempdir".into(),
        source,
    })?;
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| dir.path().join("events.db"), Into::into);
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(&path, SqliteOptions::default())?);
    let start = log.last_id();

    let writer = Arc::clone(&log);
    let producer = tokio::spawn(async move {
        for n in 0..5u64 {
            let data = JsonText::from_value(&serde_json::json!({ "n": n }));
            writer
                .append(vec![NewEvent::new("demo.tick", data)])
                .await?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok::<_, StoreError>(())
    });

    let mut appends = log.subscribe_appends();
    let mut after: Option<LogId> = start;
    let mut seen = 0;
    while seen < 5 {
        let page = log.read(ReadQuery::after(after, 100)).await?;
        for event in &page.events {
            eprintln!(
                "{} {} {}",
                log.format_id(event.id),
                event.event_type,
                event.data
            );
            after = Some(event.id);
            seen += 1;
        }
        if page.next.is_none() && seen < 5 {
            // At the end: sleep until the next commit.
            appends.changed().await.map_err(StoreError::unavailable)?;
        }
    }
    producer.await.map_err(StoreError::unavailable)??;
    eprintln!(
        "stats: {}",
        serde_json::to_string(&log.stats()).unwrap_or_default()
    );
    log.close().await
}
