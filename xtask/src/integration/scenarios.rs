//! The integration scenarios. Each returns a one-line summary of what held, or what did not.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::Env;
use super::peers::{
    Daemon, PythonServer, free_port, ids_of, parse_prometheus, read_record, wait_for,
};

/// An event the relay must deliver: its bus id, type, data, and which producer published it.
/// Order is guaranteed per producer: events published concurrently by several producers
/// interleave, and their ids follow the order the bus accepted them, not queue order.
type Expected = (u64, String, Value, usize);

/// The producer id of everything the scenario itself POSTs (one client, in sequence).
const HTTP_PRODUCER: usize = 0;

/// Events `n..n+count`. With `mixed`, every tenth is filtered by the bus (`other.*`), every
/// tenth plus one is accepted but not relayed (`session.*`), and some carry non-object data.
fn batch(n: u64, count: u64, mixed: bool) -> Vec<(String, Value)> {
    (n..n + count)
        .map(|n| {
            let event_type = match n % 10 {
                0 if mixed => "other.noise",
                1 if mixed => "session.start",
                k if k % 2 == 0 => "hook.pre_tool",
                _ => "hook.post_tool",
            };
            let data = match n % 13 {
                5 => json!(n),
                7 => json!(format!("text {n}")),
                9 => Value::Null,
                _ => json!({"n": n, "tool_name": "Read", "file_path": "/example.py", "sessionId": "abc-123"}),
            };
            (event_type.to_owned(), data)
        })
        .collect()
}

/// The bus's filters (`hook.*,session.*`) and the relay's pattern (`hook.*`), as the scenarios
/// configure the daemon.
fn accepted(event_type: &str) -> bool {
    event_type.starts_with("hook.") || event_type.starts_with("session.")
}

/// What a scenario published and what the server must receive.
#[derive(Default)]
struct Ledger {
    sent: u64,
    accepted: u64,
    filtered: u64,
    relayed: Vec<Expected>,
}

impl Ledger {
    /// POSTs `events` as NDJSON and records the ids the daemon gave the accepted ones.
    fn post_accepted(
        &mut self,
        daemon: &Daemon,
        events: Vec<(String, Value)>,
    ) -> Result<(), String> {
        let ids = daemon.post_ndjson(&events)?;
        let kept: Vec<_> = events.into_iter().filter(|(t, _)| accepted(t)).collect();
        if ids.len() != kept.len() {
            return Err(format!(
                "{} events accepted, {} expected",
                ids.len(),
                kept.len()
            ));
        }
        self.sent += kept.len() as u64;
        self.accepted += ids.len() as u64;
        for (id, (event_type, data)) in ids.into_iter().zip(kept) {
            if event_type.starts_with("hook.") {
                self.relayed.push((id, event_type, data, HTTP_PRODUCER));
            }
        }
        Ok(())
    }

    /// Adds what another producer published (later ids, published after this ledger's).
    fn merge(&mut self, other: Ledger) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.filtered += other.filtered;
        self.relayed.extend(other.relayed);
    }

    /// POSTs `events`, counting those the bus's filters must refuse.
    fn post_batch(&mut self, daemon: &Daemon, events: Vec<(String, Value)>) -> Result<(), String> {
        let filtered = events.iter().filter(|(t, _)| !accepted(t)).count() as u64;
        self.filtered += filtered;
        self.sent += filtered;
        self.post_accepted(daemon, events)
    }
}

/// What the server's record holds, checked against the ledger.
struct Delivery {
    unique: usize,
    duplicates: usize,
    missing: usize,
}

/// Checks every recorded payload's shape against what was published, and that the first
/// arrivals come in publish order. With `complete`, every expected event must be there.
fn check_record(record: &Path, expected: &[Expected], complete: bool) -> Result<Delivery, String> {
    let by_id: HashMap<u64, &Expected> = expected.iter().map(|e| (e.0, e)).collect();
    let mut first_seen: HashMap<usize, Vec<u64>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    for payload in read_record(record)? {
        let id = payload["event_id"]
            .as_u64()
            .ok_or_else(|| format!("a payload without event_id: {payload}"))?;
        let (_, event_type, data, producer) = by_id.get(&id).ok_or_else(|| {
            format!("event {id} arrived but was never meant to be relayed: {payload}")
        })?;
        check_shape(&payload, event_type, data)?;
        if seen.insert(id) {
            first_seen.entry(*producer).or_default().push(id);
        } else {
            duplicates += 1;
        }
    }
    for (producer, ids) in &first_seen {
        if let Some(w) = ids.windows(2).find(|w| w[0] > w[1]) {
            return Err(format!(
                "out of order: producer {producer}'s event {} arrived before its event {}",
                w[0], w[1]
            ));
        }
    }
    let missing: Vec<u64> = expected
        .iter()
        .map(|e| e.0)
        .filter(|id| !seen.contains(id))
        .collect();
    if complete && !missing.is_empty() {
        return Err(format!(
            "{} of {} events never arrived (first: {:?})",
            missing.len(),
            expected.len(),
            &missing[..missing.len().min(5)]
        ));
    }
    Ok(Delivery {
        unique: seen.len(),
        duplicates,
        missing: missing.len(),
    })
}

/// The original's wire format, exactly, plus the bus event id.
fn check_shape(payload: &Value, event_type: &str, data: &Value) -> Result<(), String> {
    let keys: Vec<&str> = payload
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    let wanted = [
        "data",
        "event",
        "event_id",
        "source",
        "subtype",
        "timestamp",
        "type",
    ];
    let (kind, subtype) = event_type
        .split_once('.')
        .unwrap_or((event_type, "generic"));
    let good = sorted == wanted
        && payload["event"] == "claude_event"
        && payload["type"] == kind
        && payload["subtype"] == subtype
        && payload["source"] == "event_bus"
        && payload["data"] == *data
        && payload["timestamp"]
            .as_str()
            .is_some_and(|t| t.contains('T'));
    if good {
        Ok(())
    } else {
        Err(format!(
            "a payload not in the dashboard's format, or with the wrong data: {payload} (expected type {event_type}, data {data})"
        ))
    }
}

/// Waits until the server has every expected event, then checks the record.
fn wait_delivered(record: &Path, expected: &[Expected]) -> Result<Delivery, String> {
    let ids: HashSet<u64> = expected.iter().map(|e| e.0).collect();
    wait_for(&format!("{} events at the server", expected.len()), || {
        let got: HashSet<u64> = read_record(record)
            .ok()?
            .iter()
            .filter_map(|p| p["event_id"].as_u64())
            .collect();
        ids.is_subset(&got).then_some(())
    })
    .map_err(|e| {
        let arrived = check_record(record, expected, false).map_or(0, |d| d.unique);
        format!("{e} ({arrived} arrived)")
    })?;
    check_record(record, expected, true)
}

/// One event published through `eventbus publish`: its bus id, its `n`, its producer.
type Published = (u64, u64, usize);

/// Events through `eventbus publish`, four processes at a time: each worker is a producer
/// whose events must arrive in its order.
fn publish_with_cli(
    env: &Env,
    daemon: &Daemon,
    ledger: &mut Ledger,
    count: u64,
) -> Result<(), String> {
    let workers = 4;
    let results: Vec<Result<Vec<Published>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || {
                    let mut ids = Vec::new();
                    let producer = HTTP_PRODUCER + 1 + w as usize;
                    for n in (w..count).step_by(workers as usize) {
                        let out = Command::new(&env.eventbus)
                            .args(["publish", "hook.cli", &json!({"n": n}).to_string()])
                            .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", daemon.addr())
                            .output()
                            .map_err(|e| format!("running eventbus publish: {e}"))?;
                        if !out.status.success() {
                            return Err(format!(
                                "eventbus publish failed ({}): {}",
                                out.status,
                                String::from_utf8_lossy(&out.stderr)
                            ));
                        }
                        let reply: Value = serde_json::from_slice(&out.stdout)
                            .map_err(|e| format!("eventbus publish printed no JSON reply: {e}"))?;
                        let id = *ids_of(&reply)?.first().ok_or_else(|| {
                            format!("eventbus publish: nothing accepted: {reply}")
                        })?;
                        ids.push((id, n, producer));
                    }
                    Ok(ids)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a publisher thread panicked".into()))
            })
            .collect()
    });
    for result in results {
        for (id, n, producer) in result? {
            ledger.sent += 1;
            ledger.accepted += 1;
            ledger
                .relayed
                .push((id, "hook.cli".into(), json!({"n": n}), producer));
        }
    }
    ledger.relayed.sort_unstable_by_key(|e| e.0);
    Ok(())
}

/// A number from the parsed metrics, or an error naming it.
fn metric(metrics: &Value, name: &str) -> Result<u64, String> {
    metrics[name]
        .as_f64()
        .map(|v| v as u64)
        .ok_or_else(|| format!("/metrics has no {name}"))
}

pub(crate) fn full_flow(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("full-flow.jsonl");
    let _server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(env, port, &[])?;
    let mut ledger = Ledger::default();
    for k in 0..10 {
        ledger.post_batch(&daemon, batch(k * 1000, 1000, true))?;
    }
    publish_with_cli(env, &daemon, &mut ledger, 1000)?;
    let delivery = wait_delivered(&record, &ledger.relayed)?;

    // Every consumer has caught up once the metrics consumer has seen every event.
    let stats = wait_for("the consumers to catch up", || {
        let stats = daemon.get_json("/stats").ok()?;
        let metrics_row = stats["subscribers"]
            .as_array()?
            .iter()
            .find(|r| r["name"] == "metrics")?
            .clone();
        let seen = metrics_row["delivered"].as_u64()? + metrics_row["dropped"].as_u64()?;
        (seen == stats["events_published"].as_u64()?).then_some(stats)
    })?;
    let expect = |what: &str, got: &Value, want: u64| -> Result<(), String> {
        (got.as_u64() == Some(want))
            .then_some(())
            .ok_or_else(|| format!("/stats {what} is {got}, expected {want}"))
    };
    expect(
        "events_published",
        &stats["events_published"],
        ledger.accepted,
    )?;
    expect(
        "events_filtered",
        &stats["events_filtered"],
        ledger.filtered,
    )?;
    expect("events_failed", &stats["events_failed"], 0)?;
    let relayed = stats["relay"]["relayed"].as_u64().unwrap_or(0);
    if relayed < ledger.relayed.len() as u64 {
        return Err(format!(
            "/stats relay.relayed is {relayed}, below the {} delivered",
            ledger.relayed.len()
        ));
    }

    let metrics = parse_prometheus(env, &daemon.get_text("/metrics")?)?;
    for (name, want) in [
        ("eventbus_events_published_total", ledger.accepted),
        ("eventbus_events_filtered_total", ledger.filtered),
        ("eventbus_events_failed_total", 0),
    ] {
        let got = metric(&metrics, name)?;
        if got != want {
            return Err(format!(
                "/metrics {name} is {got}, /stats and the ledger say {want}"
            ));
        }
    }
    let metrics_dropped = stats["subscribers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "metrics"))
        .and_then(|r| r["dropped"].as_u64())
        .unwrap_or(0);
    if metrics_dropped == 0 {
        let cli = metric(&metrics, "eventbus_events_total{event_type=\"hook.cli\"}")?;
        if cli != 1000 {
            return Err(format!(
                "/metrics counts {cli} hook.cli events, 1000 were published"
            ));
        }
    }
    Ok(format!(
        "{} sent, {} accepted, {} filtered; {} relayed in order per producer with exact payloads ({} duplicates); /stats and /metrics agree",
        ledger.sent, ledger.accepted, ledger.filtered, delivery.unique, delivery.duplicates
    ))
}

/// Streams events while the server goes away and comes back; everything must arrive.
fn server_outage(env: &Env, signal: Signal, label: &str) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join(format!("{label}.jsonl"));
    let server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(env, port, &[])?;
    let mut ledger = Ledger::default();
    // A burst the relay needs a few hundred milliseconds to emit, then a producer that keeps
    // publishing small batches: the server is stopped while events are on the wire.
    ledger.post_batch(&daemon, batch(0, 3000, false))?;
    let streamed = std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let mut streamed = Ledger::default();
            for k in 0..20 {
                streamed.post_batch(&daemon, batch(3000 + k * 100, 100, false))?;
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok::<_, String>(streamed)
        });
        std::thread::sleep(Duration::from_millis(50));
        let stopped = server.stop(signal);
        let streamed = producer
            .join()
            .unwrap_or_else(|_| Err("the producer panicked".into()));
        stopped.and(streamed)
    })?;
    ledger.merge(streamed);
    let _server = PythonServer::start(env, port, &record)?;
    ledger.post_batch(&daemon, batch(5000, 1000, false))?;
    let delivery = wait_delivered(&record, &ledger.relayed)?;
    let stats = daemon.get_json("/stats")?;
    Ok(format!(
        "{} events, all arrived in order ({} duplicates; relay resent {}, reconnected after {} failed attempts)",
        delivery.unique,
        delivery.duplicates,
        stats["relay"]["resent"],
        stats["relay"]["connection_failures"]
    ))
}

pub(crate) fn server_killed(env: &Env) -> Result<String, String> {
    server_outage(env, Signal::SIGKILL, "server-killed")
}

pub(crate) fn server_stopped(env: &Env) -> Result<String, String> {
    server_outage(env, Signal::SIGTERM, "server-stopped")
}

pub(crate) fn server_late(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("server-late.jsonl");
    let daemon = Daemon::start(env, port, &[])?;
    let mut ledger = Ledger::default();
    ledger.post_batch(&daemon, batch(0, 1000, false))?;
    std::thread::sleep(Duration::from_millis(500));
    let _server = PythonServer::start(env, port, &record)?;
    ledger.post_batch(&daemon, batch(1000, 500, false))?;
    let delivery = wait_delivered(&record, &ledger.relayed)?;
    Ok(format!(
        "{} events published before and after the server came up, all arrived in order ({} duplicates)",
        delivery.unique, delivery.duplicates
    ))
}

pub(crate) fn daemon_stopped(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("daemon-stopped.jsonl");
    let _server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(env, port, &[])?;
    let mut ledger = Ledger::default();
    for k in 0..5 {
        ledger.post_batch(&daemon, batch(k * 1000, 1000, false))?;
    }
    let (code, log) = daemon.terminate()?;
    if code != Some(0) {
        return Err(format!(
            "the daemon exited with {code:?} after SIGTERM:\n{log}"
        ));
    }
    let undelivered = if log.contains("every consumer drained its queue") {
        0
    } else {
        log.split("shut down: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("the daemon did not report its shutdown:\n{log}"))?
    };
    let delivery = check_record(&record, &ledger.relayed, false)?;
    if delivery.missing as u64 > undelivered {
        return Err(format!(
            "{} accepted events never arrived, but the daemon reported only {undelivered} undelivered",
            delivery.missing
        ));
    }
    Ok(format!(
        "{} accepted; {} arrived in order, {} reported undelivered, none lost silently",
        ledger.relayed.len(),
        delivery.unique,
        undelivered
    ))
}
