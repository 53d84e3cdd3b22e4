//! Several daemons on one Redis stream, as users run them: a real redis-server (AOF,
//! `appendfsync always`) and three daemons; events posted to each, concurrently, reach the
//! SSE clients of all three, complete and in one order, and every daemon's bus (its `feed`)
//! dispatched them all. Then Redis is SIGSTOPped for 5 s and SIGKILLed and restarted
//! mid-ingest: every event that got a 2xx still reaches every daemon's SSE client and bus.
//! And two daemons' relays share one python-socketio dashboard in a consumer group.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::Env;
use super::peers::{Daemon, PythonServer, free_port, read_record, wait_for};
use crate::proc::Guarded;

/// Daemons on the stream.
const DAEMONS: usize = 3;
/// Events per NDJSON POST.
const BATCH: usize = 20;

/// A redis-server on a free loopback port, its AOF in `dir`.
struct Redis {
    process: Guarded,
    port: u16,
}

impl Redis {
    fn start(dir: &Path, port: u16) -> Result<Redis, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(["--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let process = Guarded::spawn("redis-server (apt-get install -y redis-server)", command)?;
        wait_for("redis-server to accept connections", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        })?;
        Ok(Redis { process, port })
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

/// The number of a stream id `0-N`.
fn seq(id: &str) -> Result<u64, String> {
    id.strip_prefix("0-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("{id:?} is not a stream id 0-N"))
}

/// Reads the SSE stream from the start in a thread, until it saw the id `until` (set once
/// known; `u64::MAX` until then): the ids, in arrival order.
fn sse_reader(
    daemon: &Daemon,
    until: Arc<AtomicU64>,
) -> thread::JoinHandle<Result<Vec<u64>, String>> {
    let url = daemon.url("/events/stream?after=0-0");
    thread::spawn(move || {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .new_agent();
        let response = agent
            .get(&url)
            .call()
            .map_err(|e| format!("GET {url}: {e}"))?;
        let reader = std::io::BufReader::new(response.into_body().into_reader());
        let mut ids = Vec::new();
        for line in reader.lines() {
            let line = line.map_err(|e| format!("reading {url}: {e}"))?;
            if let Some(id) = line.strip_prefix("id: ") {
                ids.push(seq(id)?);
            }
            if ids
                .last()
                .is_some_and(|&last| last >= until.load(Ordering::SeqCst))
            {
                break;
            }
        }
        Ok(ids)
    })
}

/// Posts batches to `daemon` until `stop` or `max` batches; the ids that got a 2xx, and how
/// many POSTs did not.
fn producer(
    url: String,
    first: u64,
    max: usize,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(Vec<u64>, usize)> {
    thread::spawn(move || {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(30)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        let mut acked = Vec::new();
        let mut refused = 0;
        for b in 0..max {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let body: String = (0..BATCH)
                .map(|i| {
                    format!(
                        "{}\n",
                        json!({"type": "hook.n", "data": first + (b * BATCH + i) as u64})
                    )
                })
                .collect();
            let reply = agent
                .post(&url)
                .content_type("application/x-ndjson")
                .send(body);
            match reply {
                Ok(mut r) if r.status().is_success() => {
                    let v: Value = r.body_mut().read_json().unwrap_or(Value::Null);
                    for id in v["ids"].as_array().into_iter().flatten() {
                        if let Some(n) = id.as_str().and_then(|t| seq(t).ok()) {
                            acked.push(n);
                        }
                    }
                }
                _ => {
                    refused += 1;
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        (acked, refused)
    })
}

/// One SSE reader per daemon, reading until the shared target count (unbounded until it is
/// set), given a moment to connect before anything is posted.
#[allow(clippy::type_complexity)]
fn sse_readers(
    daemons: &[Daemon],
) -> (
    Arc<AtomicU64>,
    Vec<thread::JoinHandle<Result<Vec<u64>, String>>>,
) {
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let readers = daemons
        .iter()
        .map(|d| sse_reader(d, target.clone()))
        .collect();
    thread::sleep(Duration::from_millis(300));
    (target, readers)
}

fn start_daemons(env: &Env, redis: &Redis) -> Result<Vec<Daemon>, String> {
    let url = redis.url();
    (0..DAEMONS)
        .map(|i| {
            let member = format!("d{i}");
            let extra = [
                ("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.as_str()),
                ("CLAUDE_MPM_EVENTBUS_REDIS_STREAM", "xtask:events"),
                ("CLAUDE_MPM_EVENTBUS_REDIS_MEMBER", member.as_str()),
                ("CLAUDE_MPM_RELAY_ENABLED", "false"),
            ];
            Daemon::start(env, free_port()?, &extra)
        })
        .collect()
}

/// Waits until every daemon's bus feed dispatched `n` events.
fn feeds_reach(daemons: &[Daemon], n: u64) -> Result<(), String> {
    for (i, daemon) in daemons.iter().enumerate() {
        wait_for(
            &format!("daemon d{i}'s bus feed to dispatch {n} events"),
            || {
                let stats = daemon.get_json("/stats").ok()?;
                (stats["feed"]["dispatched"].as_u64()? >= n).then_some(())
            },
        )?;
        let stats = daemon.get_json("/stats")?;
        if stats["feed"]["dispatched"].as_u64() != Some(n) {
            return Err(format!(
                "daemon d{i}'s bus dispatched more than {n}: {}",
                stats["feed"]
            ));
        }
    }
    Ok(())
}

/// Ends the readers at the id `until` and returns what each saw.
fn finish_readers(
    daemons: &[Daemon],
    readers: Vec<thread::JoinHandle<Result<Vec<u64>, String>>>,
    target: &AtomicU64,
    until: u64,
) -> Result<Vec<Vec<u64>>, String> {
    target.store(until, Ordering::SeqCst);
    // One more event wakes a reader that read everything before the target was set.
    ureq::post(&daemons[0].url("/events"))
        .content_type("application/x-ndjson")
        .send("{\"type\":\"hook.end\"}\n")
        .map_err(|e| format!("POST /events: {e}"))?;
    readers
        .into_iter()
        .map(|r| r.join().map_err(|_| "an SSE reader panicked".to_owned())?)
        .collect()
}

/// Ends the readers at `expected`'s last id and checks each saw exactly `expected`, in order.
fn check_readers(
    daemons: &[Daemon],
    readers: Vec<thread::JoinHandle<Result<Vec<u64>, String>>>,
    target: &AtomicU64,
    expected: &[u64],
) -> Result<(), String> {
    let until = expected.last().copied().unwrap_or(0);
    for (i, got) in finish_readers(daemons, readers, target, until)?
        .into_iter()
        .enumerate()
    {
        let got = &got[..got.len().min(expected.len())];
        if got != expected {
            let first_diff = got.iter().zip(expected).position(|(a, b)| a != b);
            return Err(format!(
                "daemon d{i}'s SSE client got {} events, expected {} in stream order (first difference at {first_diff:?})",
                got.len(),
                expected.len()
            ));
        }
    }
    Ok(())
}

/// Three daemons, one Redis, concurrent posts to each.
pub(crate) fn three_daemons(env: &Env) -> Result<String, String> {
    let redis = Redis::start(&env.work.join("redis-three"), free_port()?)?;
    let daemons = start_daemons(env, &redis)?;
    let (target, readers) = sse_readers(&daemons);
    let started = Instant::now();
    let never = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| producer(d.url("/events"), i as u64 * 1_000_000, 100, never.clone()))
        .collect();
    let mut acked = BTreeSet::new();
    for p in producers {
        let (ids, refused) = p.join().map_err(|_| "a producer panicked".to_owned())?;
        if refused > 0 {
            return Err(format!("{refused} POSTs were refused with Redis up"));
        }
        acked.extend(ids);
    }
    let posting = started.elapsed();
    let n = acked.len() as u64;
    let expected: Vec<u64> = (1..=n).collect();
    if acked.iter().copied().ne(1..=n) {
        return Err(format!(
            "the acknowledged ids are not 1..={n}: dense stream ids expected"
        ));
    }
    feeds_reach(&daemons, n)?;
    check_readers(&daemons, readers, &target, &expected)?;
    Ok(format!(
        "{n} events posted to {DAEMONS} daemons in {posting:.1?}: each daemon's SSE client got all {n} in stream order, each bus dispatched {n}"
    ))
}

/// Redis SIGSTOPped 5 s, then SIGKILLed and restarted, while three producers post.
pub(crate) fn redis_outage(env: &Env) -> Result<String, String> {
    let dir = env.work.join("redis-outage");
    let port = free_port()?;
    let mut redis = Redis::start(&dir, port)?;
    let daemons = start_daemons(env, &redis)?;
    let (target, readers) = sse_readers(&daemons);
    let stop = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = daemons
        .iter()
        .enumerate()
        .map(|(i, d)| {
            producer(
                d.url("/events"),
                i as u64 * 1_000_000,
                100_000,
                stop.clone(),
            )
        })
        .collect();
    thread::sleep(Duration::from_secs(1));
    redis.process.signal(Signal::SIGSTOP)?;
    thread::sleep(Duration::from_secs(5));
    redis.process.signal(Signal::SIGKILL)?;
    redis.process.wait_exit(Duration::from_secs(10))?;
    drop(redis);
    redis = Redis::start(&dir, port)?;
    thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    let mut acked = BTreeSet::new();
    let mut refused = 0;
    for p in producers {
        let (ids, r) = p.join().map_err(|_| "a producer panicked".to_owned())?;
        refused += r;
        acked.extend(ids);
    }
    if refused == 0 {
        return Err("no POST failed: the outage did not happen mid-ingest".to_owned());
    }
    let n = acked.len() as u64;
    let last = acked.last().copied().unwrap_or(0);
    // Ids of answers lost in the outage may be in the stream too (Redis had them, the
    // client got no 2xx): the readers must see every acknowledged one, in stream order.
    feeds_reach_at_least(&daemons, last)?;
    for (i, got) in finish_readers(&daemons, readers, &target, last)?
        .into_iter()
        .enumerate()
    {
        if got.windows(2).any(|w| w[1] != w[0] + 1) {
            return Err(format!(
                "daemon d{i}'s SSE client saw a gap or a repeat in the stream ids"
            ));
        }
        let seen: BTreeSet<u64> = got.into_iter().collect();
        let lost = acked.difference(&seen).count();
        if lost > 0 {
            return Err(format!(
                "daemon d{i}'s SSE client missed {lost} acknowledged events"
            ));
        }
    }
    let health = daemons[0].get_json("/healthz")?;
    drop(redis);
    Ok(format!(
        "{n} events acknowledged, {refused} POSTs refused during the outage; every acknowledged event reached all {DAEMONS} daemons' SSE clients and buses; reconnects {}",
        health["store"]["reconnects"]
    ))
}

/// Waits until every daemon's bus feed is at `last` or beyond.
fn feeds_reach_at_least(daemons: &[Daemon], last: u64) -> Result<(), String> {
    for (i, daemon) in daemons.iter().enumerate() {
        wait_for(&format!("daemon d{i}'s bus feed to reach 0-{last}"), || {
            let stats = daemon.get_json("/stats").ok()?;
            let position = stats["feed"]["position"]
                .as_str()
                .and_then(|p| seq(p).ok())?;
            (position >= last).then_some(())
        })?;
        let stats = daemon.get_json("/stats")?;
        if stats["feed"]["missed"] != 0 {
            return Err(format!(
                "daemon d{i}'s bus feed missed events: {}",
                stats["feed"]
            ));
        }
    }
    Ok(())
}

/// The `event_id`s a dashboard recorded, in arrival order.
fn recorded_ids(record: &Path) -> Result<Vec<u64>, String> {
    Ok(read_record(record)?
        .iter()
        .filter_map(|p| p["event_id"].as_u64())
        .collect())
}

/// Waits until the dashboard has every id of `wanted`.
fn dashboard_has(record: &Path, wanted: &BTreeSet<u64>) -> Result<Vec<u64>, String> {
    wait_for("every acknowledged event at the dashboard", || {
        let got = recorded_ids(record).ok()?;
        let seen: BTreeSet<u64> = got.iter().copied().collect();
        wanted.is_subset(&seen).then_some(got)
    })
    .map_err(|e| {
        let seen: BTreeSet<u64> = recorded_ids(record)
            .unwrap_or_default()
            .into_iter()
            .collect();
        format!(
            "{e}: {} of {} missing",
            wanted.difference(&seen).count(),
            wanted.len()
        )
    })
}

/// Two daemons' relays in one consumer group, one python-socketio dashboard: every event once
/// in a fault-free run; one daemon SIGKILLed mid-stream, the other claims its pending.
pub(crate) fn relay_group(env: &Env) -> Result<String, String> {
    let redis = Redis::start(&env.work.join("redis-group"), free_port()?)?;
    let port = free_port()?;
    let record = env.work.join("redis-group.jsonl");
    let _server = PythonServer::start(env, port, &record)?;
    let url = redis.url();
    let start = |member: &str| {
        let extra = [
            ("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.as_str()),
            ("CLAUDE_MPM_EVENTBUS_REDIS_STREAM", "xtask:group"),
            ("CLAUDE_MPM_EVENTBUS_REDIS_MEMBER", member),
            ("CLAUDE_MPM_EVENTBUS_REDIS_CLAIM_AFTER", "2s"),
            ("CLAUDE_MPM_RELAY_GROUP", "dashboard"),
        ];
        Daemon::start(env, port, &extra)
    };
    let a = start("g0")?;
    let b = start("g1")?;
    let never = Arc::new(AtomicBool::new(false));
    let mut acked = BTreeSet::new();
    for p in [
        producer(a.url("/events"), 0, 50, never.clone()),
        producer(b.url("/events"), 1_000_000, 50, never.clone()),
    ] {
        let (ids, refused) = p.join().map_err(|_| "a producer panicked".to_owned())?;
        if refused > 0 {
            return Err(format!("{refused} POSTs refused in the fault-free run"));
        }
        acked.extend(ids);
    }
    let got = dashboard_has(&record, &acked)?;
    if got.len() != acked.len() {
        return Err(format!(
            "fault-free: the dashboard got {} events for {} posted: duplicates",
            got.len(),
            acked.len()
        ));
    }
    let handed = |d: &Daemon| -> Result<u64, String> {
        Ok(d.get_json("/stats")?["group"]["handed"]
            .as_u64()
            .unwrap_or(0))
    };
    let (handed_a, handed_b) = (handed(&a)?, handed(&b)?);
    if handed_a == 0 || handed_b == 0 {
        return Err(format!(
            "the work was not shared: g0 relayed {handed_a}, g1 {handed_b}"
        ));
    }
    let fault_free = acked.len();

    // Mid-stream: both take events; g0 is SIGKILLed with some handed and not acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let producers = [
        producer(a.url("/events"), 2_000_000, 100_000, stop.clone()),
        producer(b.url("/events"), 3_000_000, 100_000, stop.clone()),
    ];
    // Killed while it holds events handed to its relay and not acknowledged.
    let held = wait_for("g0 to hold unacknowledged events", || {
        let stats = a.get_json("/stats").ok()?;
        let outstanding = stats["group"]["outstanding"].as_u64()?;
        (outstanding > 0).then_some(outstanding)
    })?;
    a.kill()?;
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    for p in producers {
        let (ids, _) = p.join().map_err(|_| "a producer panicked".to_owned())?;
        acked.extend(ids);
    }
    // What g0 held may have reached the dashboard unacknowledged: g1 claims it all the same.
    let claimed = wait_for("g1 to claim what g0 left pending", || {
        let stats = b.get_json("/stats").ok()?;
        let claimed = stats["group"]["claimed"].as_u64()?;
        (claimed > 0 && stats["group"]["outstanding"] == 0).then_some(claimed)
    })?;
    let got = dashboard_has(&record, &acked)?;
    let unique: BTreeSet<u64> = got.iter().copied().collect();
    Ok(format!(
        "fault-free: {fault_free} events, each once at the dashboard (g0 relayed {handed_a}, g1 {handed_b}); g0 SIGKILLed mid-stream holding {held}: g1 claimed {claimed} pending after 2 s, all {} acknowledged delivered, {} duplicates",
        acked.len(),
        got.len() - unique.len()
    ))
}
