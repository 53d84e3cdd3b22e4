//! The durable relay's done-when check: the daemon SIGKILLed mid-ingest with a python-socketio
//! dashboard attached, restarted on the same store file, and every event whose `POST /events`
//! got a 2xx reaching the dashboard (zero loss; duplicates allowed, counted and reported; first
//! arrivals in log order).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use serde_json::{Value, json};

use super::Env;
use super::peers::{Daemon, PythonServer, free_port, ids_of, read_record, wait_for};

/// Events per NDJSON POST.
const BATCH: u64 = 250;
/// The most POSTs the producer makes; the kill comes long before.
const MAX_BATCHES: u64 = 2_000;
/// The relay must have confirmed this many before the kill, so the kill is mid-stream.
const CONFIRMED_BEFORE_KILL: u64 = 2_000;
/// Events posted after the restart, to see new events follow the resent ones.
const AFTER_RESTART: u64 = 500;

/// What the producer got a 2xx for: log id -> (type, data).
type Acknowledged = HashMap<u64, (String, Value)>;

/// The check; its one-line summary holds the numbers.
pub(crate) fn check(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("durable-relay.jsonl");
    let store = env.work.join("durable-relay.db");
    let store_var = store.display().to_string();
    let _server = PythonServer::start(env, port, &record)?;
    let extra = [("CLAUDE_MPM_EVENTBUS_STORE", store_var.as_str())];
    let daemon = Daemon::start(env, port, &extra)?;

    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let url = daemon.url("/events");
        let stop = stop.clone();
        thread::spawn(move || produce(&url, 0, MAX_BATCHES, &stop))
    };
    let at_kill = wait_for("the relay to confirm events before the kill", || {
        if producer.is_finished() {
            return Some(Value::Null);
        }
        let stats = daemon.get_json("/stats").ok()?;
        let relayed = stats["relay"]["relayed"].as_u64()?;
        (relayed >= CONFIRMED_BEFORE_KILL).then_some(stats)
    })?;
    if at_kill.is_null() {
        let (_, why) = producer
            .join()
            .map_err(|_| "the producer thread panicked".to_owned())?;
        return Err(format!(
            "the producer stopped before the kill: {}",
            why.unwrap_or_else(|| format!("all {MAX_BATCHES} POSTs done, not mid-ingest"))
        ));
    }
    let killed_log = daemon.kill()?;
    stop.store(true, Ordering::SeqCst);
    let (mut acknowledged, why) = producer
        .join()
        .map_err(|_| "the producer thread panicked".to_owned())?;
    if why.is_none() {
        return Err(format!(
            "the producer finished all {MAX_BATCHES} POSTs before the kill: not mid-ingest"
        ));
    }
    let posted_before_kill = acknowledged.len();
    let recorded_at_restart = read_record(&record)?.len();

    let daemon = Daemon::start(env, port, &extra)?;
    let startup = daemon.get_json("/stats")?;
    let first_id = acknowledged.keys().max().copied().unwrap_or(0) + 1;
    let hooks_before_kill = acknowledged
        .values()
        .filter(|(t, _)| t.starts_with("hook."))
        .count();
    let (later, why) = produce(
        &daemon.url("/events"),
        first_id,
        AFTER_RESTART / BATCH,
        &stop_never(),
    );
    if later.len() as u64 != AFTER_RESTART / BATCH * BATCH {
        return Err(format!(
            "after the restart {} of {} posted events were acknowledged: {why:?}",
            later.len(),
            AFTER_RESTART / BATCH * BATCH
        ));
    }
    acknowledged.extend(later);
    let wanted: HashSet<u64> = acknowledged
        .iter()
        .filter(|(_, (t, _))| t.starts_with("hook."))
        .map(|(id, _)| *id)
        .collect();
    wait_for("every acknowledged hook event at the dashboard", || {
        let record = read_record(&record).ok()?;
        let seen: HashSet<u64> = record
            .iter()
            .filter_map(|p| p["event_id"].as_u64())
            .collect();
        wanted.is_subset(&seen).then_some(())
    })
    .map_err(|e| {
        let seen: HashSet<u64> = read_record(&record)
            .unwrap_or_default()
            .iter()
            .filter_map(|p| p["event_id"].as_u64())
            .collect();
        let missing = wanted.difference(&seen).count();
        format!(
            "{e}: {missing} of {} acknowledged hook events missing",
            wanted.len()
        )
    })?;
    let delivery = check_delivery(&read_record(&record)?, &acknowledged, &wanted)?;
    let durable = wait_for("the relay's cursor to catch up", || {
        let stats = daemon.get_json("/stats").ok()?;
        let row = stats["durable"]["socketio-relay"].clone();
        (row["lag"].as_u64()? == 0).then_some(row)
    })?;
    if durable["missed"] != 0 {
        return Err(format!("the follower reports missed events: {durable}"));
    }
    let (code, log) = daemon.terminate()?;
    if code != Some(0) {
        return Err(format!("the restarted daemon exited with {code:?}:\n{log}"));
    }
    if !killed_log.contains("durable consumer follows the event log") {
        return Err(format!(
            "the daemon did not start a durable follower for the relay:\n{killed_log}"
        ));
    }
    Ok(format!(
        "SIGKILL mid-ingest {} after {posted_before_kill} events got a 2xx ({} hook); restarted on the same store from cursor {} (lag {}); {} more posted; all {} acknowledged hook events delivered (zero loss), {} duplicates ({} at the dashboard before the restart), {} unacknowledged (in flight at the kill) delivered too, first arrivals in log order",
        relay_moment(&at_kill),
        hooks_before_kill,
        startup["durable"]["socketio-relay"]["position"],
        startup["durable"]["socketio-relay"]["lag"],
        AFTER_RESTART / BATCH * BATCH,
        wanted.len(),
        delivery.duplicates,
        recorded_at_restart,
        delivery.unacknowledged,
    ))
}

fn stop_never() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}

fn relay_moment(stats: &Value) -> String {
    let relay = &stats["relay"];
    let durable = &stats["durable"]["socketio-relay"];
    format!(
        "(relay: confirmed {}, buffered {}; cursor {}, lag {})",
        relay["relayed"], relay["buffered"], durable["position"], durable["lag"]
    )
}

/// POSTs up to `batches` NDJSON batches, numbered from `first`, until one fails or `stop` is
/// set; returns what got a 2xx and why it stopped early (`None`: it made every POST).
fn produce(
    url: &str,
    first: u64,
    batches: u64,
    stop: &AtomicBool,
) -> (Acknowledged, Option<String>) {
    let mut acknowledged = Acknowledged::new();
    for b in 0..batches {
        if stop.load(Ordering::SeqCst) {
            return (acknowledged, Some("stopped".into()));
        }
        let events: Vec<(String, Value)> = (0..BATCH)
            .map(|i| {
                let n = first + b * BATCH + i;
                // One in ten is stored but not relayed (the relay takes hook.* only).
                let event_type = if n % 10 == 3 {
                    "session.start"
                } else {
                    "hook.pre_tool"
                };
                (event_type.to_owned(), json!({"n": n, "tool_name": "Read"}))
            })
            .collect();
        let body: String = events
            .iter()
            .map(|(t, d)| format!("{}\n", json!({"type": t, "data": d})))
            .collect();
        let reply = ureq::post(url)
            .content_type("application/x-ndjson")
            .send(body)
            .map_err(|e| e.to_string())
            .and_then(|mut r| r.body_mut().read_json::<Value>().map_err(|e| e.to_string()));
        match reply.and_then(|reply| ids_of(&reply)) {
            Ok(ids) if ids.len() == events.len() => {
                acknowledged.extend(ids.into_iter().zip(events));
            }
            Ok(ids) => {
                return (
                    acknowledged,
                    Some(format!("{} ids for {} events", ids.len(), events.len())),
                );
            }
            Err(e) => return (acknowledged, Some(format!("POST /events: {e}"))),
        }
    }
    (acknowledged, None)
}

struct Delivered {
    duplicates: usize,
    unacknowledged: usize,
}

/// Checks every recorded payload: an acknowledged one must carry what was posted; first
/// arrivals must come in log order.
fn check_delivery(
    record: &[Value],
    acknowledged: &Acknowledged,
    wanted: &HashSet<u64>,
) -> Result<Delivered, String> {
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut unacknowledged = 0;
    let mut last_first = 0;
    for payload in record {
        let id = payload["event_id"]
            .as_u64()
            .ok_or_else(|| format!("a payload without event_id: {payload}"))?;
        if !seen.insert(id) {
            duplicates += 1;
            continue;
        }
        if id < last_first {
            return Err(format!(
                "out of log order: event {id} first arrived after event {last_first}"
            ));
        }
        last_first = id;
        match acknowledged.get(&id) {
            Some((event_type, data)) => {
                if !wanted.contains(&id) {
                    return Err(format!(
                        "event {id} ({event_type}) is not for the relay but arrived"
                    ));
                }
                if payload["data"] != *data || payload["subtype"] != "pre_tool" {
                    return Err(format!("event {id} arrived as {payload}, posted {data}"));
                }
            }
            None => unacknowledged += 1,
        }
    }
    Ok(Delivered {
        duplicates,
        unacknowledged,
    })
}
