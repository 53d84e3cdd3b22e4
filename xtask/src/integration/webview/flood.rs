//! The web view under a flood: the table stays bounded, every event is counted, and a
//! screenshot of the page under load is saved.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::json;

use super::super::peers::Daemon;
use super::driver::{js, wait_js};

/// The most rows the live table may hold.
const MAX_ROWS: u64 = 1000;

/// Floods the daemon from a thread while the page is open; checks the table stays bounded
/// and every event is counted; saves a screenshot.
pub(super) async fn flood(client: &Client, daemon: &Daemon) -> Result<String, String> {
    let before = js(
        client,
        "return Number(document.getElementById('received').textContent.replace(/\\D/g, ''));",
    )
    .await?
    .as_u64()
    .unwrap_or(0);
    let url = daemon.url("/events");
    const BATCHES: usize = 40;
    const BATCH: usize = 1000;
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let posted = progress.clone();
    let poster = std::thread::spawn(move || -> Result<(usize, Duration), String> {
        let types = [
            "load.hook.pre_tool",
            "load.hook.post_tool",
            "load.session",
            "load.agent",
            "load.other",
        ];
        let start = Instant::now();
        let mut sent = 0;
        for b in 0..BATCHES {
            let body: String = (0..BATCH)
                .map(|i| {
                    let n = b * BATCH + i;
                    let t = types[(n * n) % 7 % types.len()];
                    format!("{}\n", json!({"type": t, "data": {"n": n, "tool_name": "Read", "path": "/work/src/lib.rs"}}))
                })
                .collect();
            ureq::post(&url)
                .content_type("application/x-ndjson")
                .query("ids", "false")
                .send(body)
                .map_err(|e| format!("flood POST: {e}"))?;
            sent += BATCH;
            posted.store(sent, std::sync::atomic::Ordering::Relaxed);
            if start.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        Ok((sent, start.elapsed()))
    });
    let mut most_rows = 0;
    let mut screenshot = None;
    while !poster.is_finished() {
        let rows = js(
            client,
            "return document.querySelectorAll('#rows tr').length;",
        )
        .await?
        .as_u64()
        .unwrap_or(0);
        most_rows = most_rows.max(rows);
        let sent = progress.load(std::sync::atomic::Ordering::Relaxed);
        if screenshot.is_none() && sent >= BATCHES * BATCH / 3 {
            // A row's detail open, as someone looking at the flood would have it.
            js(
                client,
                "document.querySelector('#rows tr:nth-child(3)').click();",
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            screenshot = Some(
                client
                    .screenshot()
                    .await
                    .map_err(|e| format!("screenshot: {e}"))?,
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (sent, took) = poster.join().map_err(|_| "the flood thread panicked")??;
    // Every event reaches the page, though most never become rows.
    let want = before + sent as u64;
    wait_js(
        client,
        "the page to count every flood event",
        &format!("return Number(document.getElementById('received').textContent.replace(/\\D/g, '')) >= {want};"),
        Duration::from_secs(60),
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let figures = js(
        client,
        "return {rows: document.querySelectorAll('#rows tr').length, skipped: Number(document.getElementById('skipped').textContent.replace(/\\D/g, '')), received: Number(document.getElementById('received').textContent.replace(/\\D/g, '')), heap: performance.memory ? performance.memory.usedJSHeapSize : null};",
    )
    .await?;
    let rows = figures["rows"].as_u64().unwrap_or(u64::MAX);
    most_rows = most_rows.max(rows);
    if most_rows > MAX_ROWS {
        return Err(format!(
            "the table held {most_rows} rows under load (at most {MAX_ROWS})"
        ));
    }
    let received = figures["received"].as_u64().unwrap_or(0);
    if received != want {
        return Err(format!(
            "the page counted {received} events, {want} were sent"
        ));
    }
    let shot = screenshot.ok_or("the flood ended before the screenshot was taken")?;
    let path: PathBuf = crate::paths::in_target("web-view.png")?;
    std::fs::write(&path, shot).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(format!(
        "flood of {sent} at {:.0}/s: at most {most_rows} rows, {} skipped, all counted, JS heap {} MB; screenshot {}",
        sent as f64 / took.as_secs_f64(),
        figures["skipped"],
        figures["heap"]
            .as_u64()
            .map_or("?".into(), |h| format!("{:.1}", h as f64 / 1e6)),
        path.display()
    ))
}
