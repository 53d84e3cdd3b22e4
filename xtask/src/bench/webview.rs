//! `cargo xtask bench --webview [--quick]`: the daemon's web view held open in headless
//! Chromium while one thread posts NDJSON at a steady 20,000 events/s for 300 s (60 s with
//! `--quick`). Every 15 s it samples the page's JS heap (`performance.memory`, unquantized
//! with `--enable-precise-memory-info`), its rows, the rate and skipped count it shows, and
//! the rate actually posted; the rows are also read every second for their maximum. Issue 14
//! asks that the table stay at 1,000 rows and the tab's memory stay flat: the heap's last
//! sample may be at most 1.5 times the one at 30 s (after warm-up), and the page must count
//! every event posted.
//!
//! The daemon, chromedriver and Chromium are set up by the integration check's own code,
//! and the same cleanup runs: chromedriver's process group is killed, then any process left
//! on the profile directory is a failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fantoccini::Client;
use serde_json::{Value, json};

use crate::TaskResult;
use crate::integration::Env;
use crate::integration::peers::{Daemon, free_port};
use crate::integration::webview::daemon;
use crate::integration::webview::driver::{Chromedriver, browser, js, wait_gone, wait_js};
use crate::paths::{self, Profile};

/// The posting rate the issue names.
const RATE: u64 = 20_000;
/// Events per POST; one every `BATCH / RATE` seconds.
const BATCH: u64 = 1_000;
const SAMPLE_EVERY: Duration = Duration::from_secs(15);
/// The heap sample the last one is compared with: the first after warm-up.
const WARM_UP: Duration = Duration::from_secs(30);
/// The last heap sample may be at most this many times the one at `WARM_UP`.
const HEAP_GROWTH: f64 = 1.5;
const MAX_ROWS: u64 = 1_000;
/// How long the page may take to count the last events after the flood stops.
const CATCH_UP: Duration = Duration::from_secs(120);

/// One look at the page.
pub(crate) struct Sample {
    /// Seconds since the flood started.
    pub(crate) at: f64,
    /// `performance.memory.usedJSHeapSize`, bytes.
    pub(crate) heap: u64,
    /// Rows in the live table.
    pub(crate) rows: u64,
    /// The events/s the page shows.
    pub(crate) shown_rate: u64,
    /// The rows the page says it skipped.
    pub(crate) skipped: u64,
    /// The events the page says it received.
    pub(crate) received: u64,
    /// Events/s posted since the previous sample.
    pub(crate) posted_rate: f64,
}

/// What the soak saw.
pub(crate) struct Soak {
    pub(crate) seconds: u64,
    pub(crate) samples: Vec<Sample>,
    /// The most rows seen in any once-a-second look.
    pub(crate) most_rows: u64,
    pub(crate) posted: u64,
    /// What the page counted once it caught up (or gave up after `CATCH_UP`).
    pub(crate) counted: u64,
    /// Posted / flood seconds.
    pub(crate) posted_rate: f64,
}

impl Soak {
    fn heap_at_warm_up(&self) -> Option<u64> {
        self.samples
            .iter()
            .find(|s| s.at >= WARM_UP.as_secs_f64() - 1.0)
            .map(|s| s.heap)
    }

    fn heap_last(&self) -> Option<u64> {
        self.samples.last().map(|s| s.heap)
    }

    fn heap_max(&self) -> u64 {
        self.samples.iter().map(|s| s.heap).max().unwrap_or(0)
    }

    fn heap_met(&self) -> bool {
        match (self.heap_at_warm_up(), self.heap_last()) {
            (Some(warm), Some(last)) => last as f64 <= HEAP_GROWTH * warm as f64,
            _ => false,
        }
    }

    fn rows_met(&self) -> bool {
        self.most_rows <= MAX_ROWS
    }

    fn counted_met(&self) -> bool {
        self.counted == self.posted
    }
}

/// Builds the release daemon, runs the soak and leaves no browser or daemon behind.
pub(crate) fn run(quick: bool) -> Result<Soak, String> {
    crate::setup::ensure_browser()?;
    let eventbus = paths::build_daemon(Profile::Release, false)?;
    let work = paths::in_target("xtask-bench-webview")?;
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let env = Env::for_browser(eventbus, work);
    let profile = env.work.join("chromium-profile");
    let seconds = if quick { 60 } else { 300 };

    let port = free_port()?;
    let driver = Chromedriver::start(&env, port)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"));
    let result = runtime.and_then(|runtime| {
        runtime.block_on(async {
            let daemon = daemon(&env, &[])?;
            let client = browser(port, &profile).await?;
            let result = soak(&client, &daemon, seconds).await;
            let _ = client.close().await;
            // The daemon (a guarded process) goes here.
            drop(daemon);
            result
        })
    });
    driver.stop();
    let left = wait_gone(&profile);
    let soak = result?;
    if left.is_empty() {
        Ok(soak)
    } else {
        Err(format!(
            "chromium processes outlived chromedriver (pids {left:?}, now killed)"
        ))
    }
}

/// The page's figures, in one script.
async fn look(client: &Client) -> Result<Value, String> {
    js(
        client,
        "const n = id => Number(document.getElementById(id).textContent.replace(/\\D/g, ''));
         return {rows: document.querySelectorAll('#rows tr').length, rate: n('rate'),
                 skipped: n('skipped'), received: n('received'),
                 heap: performance.memory ? performance.memory.usedJSHeapSize : null};",
    )
    .await
}

async fn soak(client: &Client, daemon: &Daemon, seconds: u64) -> Result<Soak, String> {
    client
        .goto(&daemon.url("/"))
        .await
        .map_err(|e| format!("opening the page: {e}"))?;
    wait_js(
        client,
        "the stream to be live",
        "return document.getElementById('conn').dataset.state === 'live';",
        Duration::from_secs(30),
    )
    .await?;
    let before = look(client).await?["received"].as_u64().unwrap_or(0);

    let posted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let poster = {
        let (posted, stop, url) = (posted.clone(), stop.clone(), daemon.url("/events"));
        std::thread::spawn(move || flood(&url, &posted, &stop))
    };
    let start = Instant::now();
    let length = Duration::from_secs(seconds);
    let mut samples = Vec::new();
    let mut most_rows = 0;
    let mut last = (0.0, 0);
    let mut next_sample = SAMPLE_EVERY;
    let outcome: Result<(), String> = async {
        while start.elapsed() < length {
            if poster.is_finished() {
                return Err("the flood thread stopped early".into());
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            let figures = look(client).await?;
            let rows = figures["rows"].as_u64().unwrap_or(u64::MAX);
            most_rows = most_rows.max(rows);
            let at = start.elapsed();
            if at < next_sample {
                continue;
            }
            next_sample += SAMPLE_EVERY;
            let sent = posted.load(Ordering::Relaxed);
            let at = at.as_secs_f64();
            let sample = Sample {
                at,
                heap: figures["heap"]
                    .as_u64()
                    .ok_or("the page has no performance.memory")?,
                rows,
                shown_rate: figures["rate"].as_u64().unwrap_or(0),
                skipped: figures["skipped"].as_u64().unwrap_or(0),
                received: figures["received"].as_u64().unwrap_or(0).saturating_sub(before),
                posted_rate: (sent - last.1) as f64 / (at - last.0),
            };
            eprintln!(
                "xtask: web view {at:>5.0} s: heap {:>6.2} MB, {:>4} rows, shows {:>6}/s, {:>9} skipped, {:>9} received, posting {:>6.0}/s",
                sample.heap as f64 / 1e6,
                sample.rows,
                sample.shown_rate,
                sample.skipped,
                sample.received,
                sample.posted_rate
            );
            last = (at, sent);
            samples.push(sample);
        }
        Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let flood_took = start.elapsed().as_secs_f64();
    let thread = poster.join().map_err(|_| "the flood thread panicked")?;
    outcome?;
    thread?;
    let posted = posted.load(Ordering::Relaxed);

    // Every event reaches the page, though most never become rows.
    let want = before + posted;
    let caught_up = wait_js(
        client,
        "the page to count every event posted",
        &format!("return Number(document.getElementById('received').textContent.replace(/\\D/g, '')) >= {want};"),
        CATCH_UP,
    )
    .await;
    let end = look(client).await?;
    most_rows = most_rows.max(end["rows"].as_u64().unwrap_or(u64::MAX));
    let counted = end["received"].as_u64().unwrap_or(0).saturating_sub(before);
    if let Err(e) = caught_up {
        eprintln!("xtask: web view: {e}: {counted} of {posted} counted");
    }
    Ok(Soak {
        seconds,
        samples,
        most_rows,
        posted,
        counted,
        posted_rate: posted as f64 / flood_took,
    })
}

/// Posts batches of `BATCH` events on a fixed schedule (`RATE` a second) until `stop`; a
/// late batch is sent at once, so the rate holds on average.
fn flood(url: &str, posted: &AtomicU64, stop: &AtomicBool) -> Result<(), String> {
    let types = [
        "load.hook.pre_tool",
        "load.hook.post_tool",
        "load.session",
        "load.agent",
        "load.other",
    ];
    let agent = ureq::Agent::new_with_defaults();
    let every = Duration::from_secs_f64(BATCH as f64 / RATE as f64);
    let start = Instant::now();
    let mut n: u64 = 0;
    for batch in 0u32.. {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some(wait) = (start + every * batch).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let body: String = (0..BATCH)
            .map(|i| {
                let k = n + i;
                let t = types[(k % 7) as usize % types.len()];
                format!(
                    "{}\n",
                    json!({"type": t, "data": {"n": k, "tool_name": "Read", "path": "/work/src/lib.rs"}})
                )
            })
            .collect();
        agent
            .post(url)
            .content_type("application/x-ndjson")
            .query("ids", "false")
            .send(body)
            .map_err(|e| format!("flood POST: {e}"))?;
        n += BATCH;
        posted.store(n, Ordering::Relaxed);
    }
    Ok(())
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISS" }
}

/// The BENCHMARKS.md section.
pub(crate) fn render(result: &Result<Soak, String>) -> String {
    let mut out = String::from("## Web view under a flood\n\n");
    let soak = match result {
        Ok(soak) => soak,
        Err(e) => {
            out.push_str(&format!(
                "`cargo xtask bench --webview` failed: {}\n",
                e.replace('\n', " ")
            ));
            return out;
        }
    };
    out.push_str(&format!(
        "`cargo xtask bench --webview{}`: the release daemon (in-memory log), its page open in \
         headless Chromium (`--enable-precise-memory-info`), one thread posting NDJSON batches of \
         {BATCH} every {} ms for {} s; daemon, browser and poster share the machine. Sampled every \
         {} s; rows also read every second.\n\n",
        if soak.seconds < 300 { " --quick" } else { "" },
        BATCH * 1000 / RATE,
        soak.seconds,
        SAMPLE_EVERY.as_secs(),
    ));
    let warm = soak.heap_at_warm_up().map_or("?".into(), mb);
    let last = soak.heap_last().map_or("?".into(), mb);
    out.push_str("| | measured | target | |\n|---|---|---|---|\n");
    out.push_str(&format!(
        "| posting rate | {:.0} events/s | ~{RATE} | |\n",
        soak.posted_rate
    ));
    out.push_str(&format!(
        "| JS heap at {} s / last / max | {warm} / {last} / {} | last <= {HEAP_GROWTH} x at {} s | {} |\n",
        WARM_UP.as_secs(),
        mb(soak.heap_max()),
        WARM_UP.as_secs(),
        verdict(soak.heap_met())
    ));
    out.push_str(&format!(
        "| rows in the table, most | {} | <= {MAX_ROWS} | {} |\n",
        soak.most_rows,
        verdict(soak.rows_met())
    ));
    out.push_str(&format!(
        "| events posted / counted by the page | {} / {} | all | {} |\n\n",
        soak.posted,
        soak.counted,
        verdict(soak.counted_met())
    ));
    out.push_str("| s | JS heap | rows | rate shown | skipped | received | posted/s |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for s in &soak.samples {
        out.push_str(&format!(
            "| {:.0} | {} | {} | {} | {} | {} | {:.0} |\n",
            s.at,
            mb(s.heap),
            s.rows,
            s.shown_rate,
            s.skipped,
            s.received,
            s.posted_rate
        ));
    }
    out
}

/// Fails the run when a target was missed.
pub(crate) fn check(result: &Result<Soak, String>) -> TaskResult {
    let soak = result.as_ref().map_err(Clone::clone)?;
    let mut missed = Vec::new();
    if !soak.heap_met() {
        missed.push(format!(
            "JS heap last {} > {HEAP_GROWTH} x {} at {} s",
            soak.heap_last().map_or("?".into(), mb),
            soak.heap_at_warm_up().map_or("?".into(), mb),
            WARM_UP.as_secs()
        ));
    }
    if !soak.rows_met() {
        missed.push(format!("{} rows in the table", soak.most_rows));
    }
    if !soak.counted_met() {
        missed.push(format!(
            "the page counted {} of {} events",
            soak.counted, soak.posted
        ));
    }
    if missed.is_empty() {
        Ok(())
    } else {
        Err(format!("web view under a flood: {}", missed.join("; ")))
    }
}
