//! Issue 13's done-when check: the relay limited to 200/s (`CLAUDE_MPM_RELAY_RATE_LIMIT`)
//! while a 20,000-event burst is ingested receives within 5% of 200 events a second at the
//! python-socketio dashboard, and a `hook.error` (high by `CLAUDE_MPM_EVENTBUS_PRIORITIES`)
//! posted in the middle of the burst reaches the dashboard within 1 s of its `POST` returning,
//! and so does a `hook.notification` that no rule names but whose publisher marked it
//! `"priority": "high"` (the log stores that priority, and the relay reads it back).
//!
//! The store runs on its defaults (`full`: an fsync before each POST's answer). The relay is
//! durable: it takes events from the log into its send buffer, where priorities
//! reorder them. The buffer (`CLAUDE_MPM_RELAY_BUFFER_SIZE=30000`) holds the whole burst, so
//! the `hook.error` is in it when posted; with a smaller buffer it would wait until the
//! follower, which reads the log in order, reaches it.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Env;
use super::peers::{Daemon, PythonServer, free_port, read_record, wait_for};

/// The burst's size and the limit.
const BURST: u64 = 20_000;
const RATE: f64 = 200.0;
/// Events per NDJSON POST; the `hook.error` goes after half of them.
const BATCH: u64 = 1_000;
/// The rate is measured over this window, after the first burst second (GCRA lets one
/// second's worth through at once after a quiet spell).
const SETTLE: Duration = Duration::from_secs(2);
const WINDOW: Duration = Duration::from_secs(10);
/// The most the high event may take.
const HIGH_WITHIN: Duration = Duration::from_secs(1);

/// The check; its summary holds the numbers.
pub(crate) fn check(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("limits-relay.jsonl");
    let _server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(
        env,
        port,
        &[
            ("CLAUDE_MPM_RELAY_RATE_LIMIT", "200/s"),
            ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "30000"),
            (
                "CLAUDE_MPM_EVENTBUS_PRIORITIES",
                "hook.error*=high,hook.subagent_stop=high,hook.pre_tool=low",
            ),
            ("CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT", "1s"),
        ],
    )?;
    let config = daemon.get_json("/config")?;
    if config["relay_rate_limit"] != "200/s burst 200 delay" {
        return Err(format!("GET /config shows {config}"));
    }
    let started = Instant::now();
    let mut high = None;
    let mut marked = None;
    let mut at_post = String::new();
    for b in 0..BURST / BATCH {
        let events: Vec<(String, Value)> = (0..BATCH)
            .map(|i| ("hook.pre_tool".to_owned(), json!({"n": b * BATCH + i})))
            .collect();
        let ids = daemon.post_ndjson(&events)?;
        if ids.len() as u64 != BATCH {
            return Err(format!("{} of {BATCH} events accepted", ids.len()));
        }
        if b + 1 == BURST / BATCH / 2 {
            let ids = daemon.post_ndjson(&[("hook.error".to_owned(), json!({"error": "boom"}))])?;
            high = Some((ids[0], Instant::now()));
            let reply: Value = ureq::post(&daemon.url("/events"))
                .send_json(
                    json!({"type": "hook.notification", "data": {"n": 1}, "priority": "high"}),
                )
                .map_err(|e| format!("POST /events: {e}"))?
                .body_mut()
                .read_json()
                .map_err(|e| format!("POST /events: {e}"))?;
            marked = Some((super::peers::ids_of(&reply)?[0], Instant::now()));
            at_post = daemon.get_json("/stats")?["durable"].to_string();
        }
    }
    let ingested = started.elapsed();
    let (high_id, posted_at) = high.ok_or("the hook.error was not posted")?;
    let high_latency = wait_for("the hook.error at the dashboard", || {
        let seen = read_record(&record).ok()?;
        seen.iter()
            .any(|p| p["event_id"].as_u64() == Some(high_id))
            .then(|| posted_at.elapsed())
    })?;
    let behind = read_record(&record)?.len();
    if high_latency > HIGH_WITHIN {
        return Err(format!(
            "the hook.error took {high_latency:?} to reach the dashboard (at most {HIGH_WITHIN:?}); at its post: {at_post}; ingest took {ingested:?}"
        ));
    }
    let (marked_id, marked_at) = marked.ok_or("the hook.notification was not posted")?;
    let marked_latency = wait_for("the marked hook.notification at the dashboard", || {
        let seen = read_record(&record).ok()?;
        seen.iter()
            .any(|p| p["event_id"].as_u64() == Some(marked_id))
            .then(|| marked_at.elapsed())
    })?;
    if marked_latency > HIGH_WITHIN {
        return Err(format!(
            "the hook.notification marked \"priority\": \"high\" took {marked_latency:?} to reach the dashboard (at most {HIGH_WITHIN:?})"
        ));
    }
    // The rate at the dashboard, from how many it has recorded over the window.
    let settle_until = started + SETTLE;
    std::thread::sleep(settle_until.saturating_duration_since(Instant::now()));
    let (count_0, t_0) = (read_record(&record)?.len(), Instant::now());
    std::thread::sleep(WINDOW);
    let (count_1, t_1) = (read_record(&record)?.len(), Instant::now());
    let rate = (count_1 - count_0) as f64 / (t_1 - t_0).as_secs_f64();
    if (rate - RATE).abs() > RATE * 0.05 {
        return Err(format!(
            "the dashboard received {rate:.1} events/s over {:?}, limit {RATE}/s (5% allowed)",
            t_1 - t_0
        ));
    }
    let stats = daemon.get_json("/stats")?;
    let limit = &stats["relay"]["rate_limit"];
    let current = limit["current_per_second"].as_f64().unwrap_or(0.0);
    if limit["configured_per_second"] != 200.0 || (current - RATE).abs() > RATE * 0.1 {
        return Err(format!("GET /stats shows the relay's limit as {limit}"));
    }
    if limit["delayed"].as_u64().unwrap_or(0) == 0 {
        return Err(format!("the limit delayed nothing: {limit}"));
    }
    // PATCH /config lifts the limit: the rest of the burst follows at once.
    let patched: Value = ureq::patch(&daemon.url("/config"))
        .send_json(json!({"relay_rate_limit": "off"}))
        .map_err(|e| format!("PATCH /config: {e}"))?
        .body_mut()
        .read_json()
        .map_err(|e| format!("PATCH /config: {e}"))?;
    if !patched["relay_rate_limit"].is_null() {
        return Err(format!("PATCH /config answered {patched}"));
    }
    let lifted = Instant::now();
    wait_for("the rest of the burst once the limit is lifted", || {
        let seen: HashSet<u64> = read_record(&record)
            .ok()?
            .iter()
            .filter_map(|p| p["event_id"].as_u64())
            .collect();
        (seen.len() as u64 >= BURST + 2).then_some(())
    })?;
    let rest = lifted.elapsed();
    let (code, log) = daemon.terminate()?;
    if code != Some(0) {
        return Err(format!("the daemon exited with {code:?}:\n{log}"));
    }
    Ok(format!(
        "{BURST} hook.pre_tool (low) ingested in {:.1} s; the hook.error posted after {} reached the dashboard in {} ms ({behind} events there by then), a hook.notification marked high by its publisher in {} ms; {rate:.1} events/s received over {:.1} s (limit {RATE}/s, GET /stats: current {current:.1}/s, delayed {}); PATCH /config relay_rate_limit=off: the rest arrived in {:.1} s",
        ingested.as_secs_f64(),
        BURST / 2,
        high_latency.as_millis(),
        marked_latency.as_millis(),
        (t_1 - t_0).as_secs_f64(),
        limit["delayed"],
        rest.as_secs_f64(),
    ))
}
