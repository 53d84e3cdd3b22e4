//! What the integration scenarios share: the events they publish (a ledger of what the bus
//! accepted and must relay), the checks of what the python-socketio dashboard recorded, and
//! the waits on `/stats` and `/metrics`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use super::Env;
use super::peers::{Daemon, ids_of, parse_prometheus, read_record, wait_for};

/// An event the relay must deliver: its bus id, type, data, and which producer published it.
/// Order is guaranteed per producer: events published concurrently by several producers
/// interleave, and their ids follow the order the bus accepted them, not queue order.
pub(super) type Expected = (u64, String, Value, usize);

/// The producer id of everything the scenario itself POSTs (one client, in sequence).
pub(super) const HTTP_PRODUCER: usize = 0;

/// Events `n..n+count`. With `mixed`, every tenth is filtered by the bus (`other.*`), every
/// tenth plus one is accepted but not relayed (`session.*`), and some carry non-object data.
pub(super) fn batch(n: u64, count: u64, mixed: bool) -> Vec<(String, Value)> {
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
pub(super) fn accepted(event_type: &str) -> bool {
    event_type.starts_with("hook.") || event_type.starts_with("session.")
}

/// What a scenario published and what the server must receive.
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) filtered: u64,
    /// Accepted events by type: what `eventbus_events_total{event_type=...}` must count.
    pub(super) by_type: HashMap<String, u64>,
    pub(super) relayed: Vec<Expected>,
}

impl Ledger {
    /// POSTs `events` as NDJSON and records the ids the daemon gave the accepted ones.
    pub(super) fn post_accepted(
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
            *self.by_type.entry(event_type.clone()).or_default() += 1;
            if event_type.starts_with("hook.") {
                self.relayed.push((id, event_type, data, HTTP_PRODUCER));
            }
        }
        Ok(())
    }

    /// Adds what another producer published (later ids, published after this ledger's).
    pub(super) fn merge(&mut self, other: Ledger) {
        self.sent += other.sent;
        self.accepted += other.accepted;
        self.filtered += other.filtered;
        for (event_type, count) in other.by_type {
            *self.by_type.entry(event_type).or_default() += count;
        }
        self.relayed.extend(other.relayed);
    }

    /// POSTs `events`, counting those the bus's filters must refuse.
    pub(super) fn post_batch(
        &mut self,
        daemon: &Daemon,
        events: Vec<(String, Value)>,
    ) -> Result<(), String> {
        let filtered = events.iter().filter(|(t, _)| !accepted(t)).count() as u64;
        self.filtered += filtered;
        self.sent += filtered;
        self.post_accepted(daemon, events)
    }
}

/// What the server's record holds, checked against the ledger.
pub(super) struct Delivery {
    pub(super) unique: usize,
    pub(super) duplicates: usize,
    pub(super) missing: usize,
}

/// Checks every recorded payload's shape against what was published, and that the first
/// arrivals come in publish order. With `complete`, every expected event must be there.
pub(super) fn check_record(
    record: &Path,
    expected: &[Expected],
    complete: bool,
) -> Result<Delivery, String> {
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

/// The original's wire format, exactly, plus the bus event id, plus `session_id` (from
/// `data.session_id` or `data.sessionId`), `cwd` and `correlation_id` at the top level when
/// `data` has them (the claude-mpm monitor reads them there).
pub(super) fn check_shape(payload: &Value, event_type: &str, data: &Value) -> Result<(), String> {
    let keys: Vec<&str> = payload
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    let present = |key: &str| data.get(key).filter(|v| !v.is_null());
    let lifted: Vec<(&str, &Value)> = [
        (
            "session_id",
            present("session_id").or_else(|| present("sessionId")),
        ),
        ("cwd", present("cwd")),
        ("correlation_id", present("correlation_id")),
    ]
    .into_iter()
    .filter_map(|(name, value)| Some((name, value?)))
    .collect();
    let mut wanted = vec![
        "data",
        "event",
        "event_id",
        "source",
        "subtype",
        "timestamp",
        "type",
    ];
    wanted.extend(lifted.iter().map(|(name, _)| *name));
    wanted.sort_unstable();
    let (kind, subtype) = event_type
        .split_once('.')
        .unwrap_or((event_type, "generic"));
    let good = sorted == wanted
        && payload["event"] == "claude_event"
        && payload["type"] == kind
        && payload["subtype"] == subtype
        && payload["source"] == "event_bus"
        && payload["data"] == *data
        && lifted.iter().all(|(name, value)| payload[*name] == **value)
        && payload["timestamp"]
            .as_str()
            .is_some_and(|t| t.contains('T'));
    if good {
        Ok(())
    } else {
        Err(format!(
            "a payload not in the dashboard's format, or with the wrong data: {payload} (expected type {event_type}, data {data}, top-level {lifted:?})"
        ))
    }
}

/// Waits until the server has every expected event, then checks the record.
pub(super) fn wait_delivered(record: &Path, expected: &[Expected]) -> Result<Delivery, String> {
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
pub(super) type Published = (u64, u64, usize);

/// Events through `eventbus publish`, four processes at a time: each worker is a producer
/// whose events must arrive in its order.
pub(super) fn publish_with_cli(
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
                            .envs(super::peers::DEAD_PROXY)
                            .env_remove("NO_PROXY")
                            .env_remove("no_proxy")
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
            *ledger.by_type.entry("hook.cli".into()).or_default() += 1;
            ledger
                .relayed
                .push((id, "hook.cli".into(), json!({"n": n}), producer));
        }
    }
    ledger.relayed.sort_unstable_by_key(|e| e.0);
    Ok(())
}

/// A number from the parsed metrics, or an error naming it.
pub(super) fn metric(metrics: &Value, name: &str) -> Result<u64, String> {
    metrics[name]
        .as_f64()
        .map(|v| v as u64)
        .ok_or_else(|| format!("/metrics has no {name}"))
}

/// A whole-number field of a JSON document, or an error naming it.
pub(super) fn count(doc: &Value, what: &str, field: &str) -> Result<u64, String> {
    doc[field]
        .as_u64()
        .ok_or_else(|| format!("{what} has no whole-number {field}: {doc}"))
}

/// The `"relay"` section of the daemon's `/stats`.
pub(super) fn relay_stats(daemon: &Daemon) -> Result<Value, String> {
    let relay = daemon.get_json("/stats")?["relay"].take();
    if relay.is_object() {
        Ok(relay)
    } else {
        Err(format!("/stats has no relay section: {relay}"))
    }
}

/// The relay's counters at one moment, for the summaries.
pub(super) fn relay_moment(relay: &Value) -> String {
    format!(
        "(relay: sent {}, confirmed {}, buffered {})",
        relay["sent"], relay["relayed"], relay["buffered"]
    )
}

/// The `/stats` row of the subscriber called `name`.
pub(super) fn subscriber_row<'a>(stats: &'a Value, name: &str) -> Result<&'a Value, String> {
    stats["subscribers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .ok_or_else(|| format!("/stats has no subscriber row named {name:?}"))
}

/// Room for every event a fault scenario publishes, so that the relay's buffer (10,000 by
/// default, oldest dropped first) never drops one while the server is away: a loss is then
/// the relay's fault, never the configuration's.
pub(super) const ROOMY_BUFFER: (&str, &str) = ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "100000");

/// Waits until the relay has emitted events and still holds unconfirmed ones, with part of the
/// first `burst` relayed events not yet confirmed: the moment a fault hits mid-stream.
/// Returns the relay's counters at that moment; fails at once if the burst was all confirmed
/// before that could be observed.
pub(super) fn wait_mid_stream(daemon: &Daemon, burst: u64) -> Result<Value, String> {
    wait_for(
        "the relay to be mid-stream (relay.sent > 0 and relay.buffered > 0)",
        || {
            let relay = relay_stats(daemon).ok()?;
            let (sent, buffered, relayed) = (
                relay["sent"].as_u64()?,
                relay["buffered"].as_u64()?,
                relay["relayed"].as_u64()?,
            );
            if relayed >= burst {
                return Some(Err(format!(
                    "the relay confirmed all {burst} burst events before it was seen mid-stream ({}): the fault would not hit events on the wire",
                    relay_moment(&relay)
                )));
            }
            (sent > 0 && buffered > 0).then_some(Ok(relay))
        },
    )?
}

/// Waits until the relay has confirmed everything it holds; fails unless it confirmed exactly
/// `want` events and dropped none.
pub(super) fn wait_relay_settled(daemon: &Daemon, want: u64) -> Result<Value, String> {
    let relay = wait_for(
        "the relay to confirm everything (relay.buffered == 0)",
        || {
            let relay = relay_stats(daemon).ok()?;
            (relay["buffered"].as_u64()? == 0).then_some(relay)
        },
    )?;
    let (relayed, dropped) = (
        count(&relay, "/stats relay", "relayed")?,
        count(&relay, "/stats relay", "dropped")?,
    );
    if relayed != want || dropped != 0 {
        return Err(format!(
            "/stats relay says {relayed} confirmed and {dropped} dropped, expected {want} and 0: {relay}"
        ));
    }
    Ok(relay)
}

/// Checks `/metrics` against `/stats` and the ledger; returns which per-type check held.
pub(super) fn check_metrics(
    env: &Env,
    daemon: &Daemon,
    stats: &Value,
    ledger: &Ledger,
) -> Result<String, String> {
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
    let row = subscriber_row(stats, "metrics")?;
    let delivered = count(row, "/stats metrics row", "delivered")?;
    let dropped = count(row, "/stats metrics row", "dropped")?;
    let series: Vec<(&str, u64)> = metrics
        .as_object()
        .ok_or("the parsed /metrics is not an object")?
        .iter()
        .filter(|(key, _)| key.starts_with("eventbus_subscriber_dropped_total{"))
        .filter(|(key, _)| key.contains("subscriber=\"metrics\""))
        .map(|(key, v)| (key.as_str(), v.as_f64().unwrap_or(f64::NAN) as u64))
        .collect();
    match series[..] {
        [(_, got)] if got == dropped => {}
        _ => {
            return Err(format!(
                "/metrics eventbus_subscriber_dropped_total for the metrics consumer is {series:?}, /stats says {dropped}"
            ));
        }
    }
    let mut by_type: HashMap<String, u64> = HashMap::new();
    for (key, value) in metrics.as_object().into_iter().flatten() {
        if let Some(labels) = key.strip_prefix("eventbus_events_total{event_type=\"") {
            let event_type = labels.strip_suffix("\"}").unwrap_or(labels);
            by_type.insert(
                event_type.to_owned(),
                value.as_f64().unwrap_or(f64::NAN) as u64,
            );
        }
    }
    let total: u64 = by_type.values().sum();
    if total != delivered || total + dropped != ledger.accepted {
        return Err(format!(
            "/metrics eventbus_events_total sums to {total}; the metrics consumer delivered {delivered} and dropped {dropped} of {} accepted events",
            ledger.accepted
        ));
    }
    for (event_type, got) in &by_type {
        let want = ledger.by_type.get(event_type).copied().unwrap_or(0);
        if *got > want || (dropped == 0 && *got != want) {
            return Err(format!(
                "/metrics counts {got} {event_type} events, {want} were accepted (metrics consumer dropped {dropped})"
            ));
        }
    }
    let missing: Vec<&String> = ledger
        .by_type
        .keys()
        .filter(|t| dropped == 0 && !by_type.contains_key(*t))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "/metrics has no eventbus_events_total series for {missing:?}"
        ));
    }
    let cli = by_type.get("hook.cli").copied().unwrap_or(0);
    Ok(if dropped == 0 {
        format!(
            "/metrics totals match /stats; eventbus_events_total matches each of the {} accepted types exactly and counts nothing else (hook.cli {cli})",
            ledger.by_type.len()
        )
    } else {
        format!(
            "/metrics totals match /stats; the metrics consumer dropped {dropped}, so eventbus_events_total was checked as sum {total} + {dropped} dropped == {} published, each type at most its accepted count (hook.cli {cli} <= 1000)",
            ledger.accepted
        )
    })
}
