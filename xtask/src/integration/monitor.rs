//! The relay against the real claude-mpm monitor (`claude-mpm monitor start`, 6.5.83), the
//! dashboard server it talks to in production, with a client that listens the way the
//! monitor's Svelte dashboard does (`tools/dashboard_client.py`).
//!
//! The daemon is started as a user turns the relay on (`CLAUDE_MPM_RELAY_ENABLED=true
//! CLAUDE_MPM_SOCKETIO_PORT=P`). 50 hook events are posted one per request, as hooks do; the
//! monitor is SIGKILLed after the 20th and started again, on the same port, after the 35th.
//! Every event must reach the client, live or in the monitor's reply to the
//! `hook:history:get` the client sends on each connection, with `session_id`, `cwd` and
//! `correlation_id` non-null at the top level of what the monitor broadcasts (it copies them
//! from the top level of what it receives), and the relay's `/stats` must show no drops.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::Env;
use super::delivery::{count, relay_moment, relay_stats, wait_relay_settled};
use super::peers::{Daemon, PATIENCE, free_port, wait_for};
use crate::proc::Guarded;
use crate::workspace_root;

/// The check's name in the table.
pub(crate) const NAME: &str = "claude-mpm monitor SIGKILLed and restarted, dashboard client";

/// Events posted in all.
const EVENTS: u64 = 50;
/// The monitor is SIGKILLed once this many were posted...
const KILL_AFTER: u64 = 20;
/// ...and started again once this many were.
const RESTART_AFTER: u64 = 35;

/// How the Svelte dashboard and our client get an event: live broadcasts, or a history reply.
const HISTORY_VIAS: [&str; 2] = ["hook:history:response", "event_history"];

/// Runs the check with the claude-mpm virtualenv's `python`.
pub(crate) fn check(env: &Env, python: &Path) -> Result<String, String> {
    let dirs = MonitorDirs::create(env)?;
    let port = free_port()?;
    let record = env.work.join("dashboard-client.jsonl");
    let monitor = Monitor::start(env, python, port, &dirs)?;
    let mut client = DashboardClient::start(env, python, port, &record)?;
    client.wait_line("CONNECTED 1")?;
    client.wait_line("HISTORY 1 ")?;
    let daemon = Daemon::start_for_port(env, port, &[])?;

    let mut published: BTreeMap<u64, Published> = BTreeMap::new();
    let mut post = |n: u64| -> Result<(), String> {
        let event = event(n);
        let ids = daemon.post_ndjson(std::slice::from_ref(&(event.0.clone(), event.1.clone())))?;
        let id = *ids
            .first()
            .ok_or_else(|| format!("event {n} was not accepted"))?;
        published.insert(n, Published { id, event });
        // Hooks post one event at a time, a little apart.
        std::thread::sleep(Duration::from_millis(30));
        Ok(())
    };
    for n in 1..=KILL_AFTER {
        post(n)?;
    }
    let at_kill = relay_stats(&daemon)?;
    let live_before_kill = distinct_ns(&read_client_record(&record)?, false).len();
    monitor.kill()?;
    for n in KILL_AFTER + 1..=RESTART_AFTER {
        post(n)?;
    }
    let while_down = relay_stats(&daemon)?;
    let _monitor = Monitor::start(env, python, port, &dirs)?;
    for n in RESTART_AFTER + 1..=EVENTS {
        post(n)?;
    }

    wait_for(
        &format!("all {EVENTS} events at the dashboard client"),
        || {
            let got = distinct_ns(&read_client_record(&record).ok()?, true);
            (got.len() as u64 == EVENTS).then_some(())
        },
    )
    .map_err(|e| {
        let got = read_client_record(&record)
            .map(|r| distinct_ns(&r, true))
            .unwrap_or_default();
        let missing: Vec<u64> = (1..=EVENTS).filter(|n| !got.contains(n)).collect();
        format!(
            "{e}: events {missing:?} never reached the client (neither live nor in a hook:history:get reply); relay {}",
            relay_stats(&daemon).map_or_else(|e| e, |r| r.to_string())
        )
    })?;
    let relay = wait_relay_settled(&daemon, EVENTS)?;
    let failures = count(&relay, "/stats relay", "connection_failures")?;
    if failures == 0 {
        return Err(format!(
            "the relay never lost its connection to the monitor, so the SIGKILL was not exercised: {relay}"
        ));
    }
    let stats = daemon.get_json("/stats")?;
    let dropping: Vec<&Value> = stats["subscribers"]
        .as_array()
        .ok_or_else(|| format!("/stats has no subscribers: {stats}"))?
        .iter()
        .filter(|row| row["dropped"] != 0)
        .collect();
    if !dropping.is_empty() {
        return Err(format!("consumers dropped events: {dropping:?}"));
    }

    let entries = read_client_record(&record)?;
    let delivery = check_entries(&entries, &published)?;
    let connections = entries
        .iter()
        .filter_map(|e| e["connection"].as_u64())
        .max()
        .unwrap_or(0);
    Ok(format!(
        "{EVENTS} events, one per POST; monitor SIGKILLed after {KILL_AFTER} ({live_before_kill} live at the client by then) {}, down while {} more were posted {}, restarted; all {EVENTS} reached the dashboard client: {} live, {} only through hook:history:get after it reconnected ({connections} connections, {} copies in all); session_id, cwd and correlation_id non-null at the top level of every copy and equal to what was posted (session_id from sessionId on {}); relay resent {}, {failures} connection failures, dropped 0",
        relay_moment(&at_kill),
        RESTART_AFTER - KILL_AFTER,
        relay_moment(&while_down),
        delivery.live,
        delivery.history_only,
        delivery.copies,
        EVENTS / 2,
        relay["resent"],
    ))
}

/// What one POST published: the bus id and the event.
struct Published {
    id: u64,
    event: (String, Value),
}

/// Event `n`: a hook event with the fields the dashboard groups and pairs by. Odd ones carry
/// the hooks' camel-case `sessionId`, even ones `session_id`.
fn event(n: u64) -> (String, Value) {
    let kinds = [
        "hook.pre_tool",
        "hook.post_tool",
        "hook.user_prompt",
        "hook.subagent_stop",
    ];
    let event_type = kinds[(n % kinds.len() as u64) as usize].to_owned();
    let mut data = json!({
        "n": n,
        "tool_name": "Read",
        "cwd": format!("/work/project-{}", n % 3),
        "correlation_id": format!("corr-{}", n.div_ceil(2)),
    });
    if n % 2 == 1 {
        data["sessionId"] = json!("session-camel");
    } else {
        data["session_id"] = json!("session-snake");
    }
    (event_type, data)
}

/// What the client got.
struct Delivery {
    live: usize,
    history_only: usize,
    copies: usize,
}

/// Checks every copy of our events the client recorded against what was posted.
fn check_entries(
    entries: &[Value],
    published: &BTreeMap<u64, Published>,
) -> Result<Delivery, String> {
    let mut live = BTreeSet::new();
    let mut any = BTreeSet::new();
    let mut copies = 0;
    for entry in entries {
        let event = &entry["event"];
        let Some(n) = event["data"]["n"].as_u64() else {
            continue;
        };
        let posted = published
            .get(&n)
            .ok_or_else(|| format!("the client got an event that was never posted: {entry}"))?;
        let (event_type, data) = &posted.event;
        let session = data
            .get("session_id")
            .or_else(|| data.get("sessionId"))
            .expect("every event has one");
        let (kind, subtype) = event_type.split_once('.').expect("hook.*");
        let wanted = [
            ("session_id", session),
            ("cwd", &data["cwd"]),
            ("correlation_id", &data["correlation_id"]),
        ];
        for (field, value) in wanted {
            if event[field].is_null() || event[field] != *value {
                return Err(format!(
                    "event {n} reached the client with top-level {field} {} (posted {value}): {entry}",
                    event[field]
                ));
            }
        }
        let original = &event["original_event"];
        if event["type"] != kind
            || event["subtype"] != subtype
            || event["data"] != *data
            || original["event_id"] != posted.id
            || original["source"] != "event_bus"
        {
            return Err(format!(
                "event {n} (bus id {}) reached the client changed: {entry}",
                posted.id
            ));
        }
        copies += 1;
        any.insert(n);
        let via = entry["via"].as_str().unwrap_or_default();
        if !HISTORY_VIAS.contains(&via) {
            live.insert(n);
        }
    }
    Ok(Delivery {
        live: live.len(),
        history_only: any.difference(&live).count(),
        copies,
    })
}

/// The `n`s of our events in the client's record (with `history`, also those only in a
/// history reply).
fn distinct_ns(entries: &[Value], history: bool) -> BTreeSet<u64> {
    entries
        .iter()
        .filter(|e| history || !HISTORY_VIAS.contains(&e["via"].as_str().unwrap_or_default()))
        .filter_map(|e| e["event"]["data"]["n"].as_u64())
        .collect()
}

/// The client's record: one `{"via", "connection", "event"}` per line.
fn read_client_record(path: &Path) -> Result<Vec<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| {
            serde_json::from_str(line)
                .map_err(|e| format!("a bad client record line {line:?}: {e}"))
        })
        .collect()
}

/// The monitor's working directory and `$HOME`: it writes `.claude-mpm/` and `.claude/` into
/// both, and installs Claude Code hooks into `~/.claude/settings.json`, so neither may be
/// the real ones.
struct MonitorDirs {
    project: PathBuf,
    home: PathBuf,
}

impl MonitorDirs {
    fn create(env: &Env) -> Result<MonitorDirs, String> {
        let base = env.work.join("claude-mpm");
        let dirs = MonitorDirs {
            project: base.join("project"),
            home: base.join("home"),
        };
        for dir in [&dirs.project, &dirs.home] {
            std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        // The monitor puts its PID file in the nearest ancestor with a .git or a
        // pyproject.toml: without this marker, that would be our own worktree.
        let marker = dirs.project.join("pyproject.toml");
        std::fs::write(&marker, "").map_err(|e| format!("writing {}: {e}", marker.display()))?;
        Ok(dirs)
    }
}

/// `claude-mpm monitor start --port P --host localhost --foreground`, through
/// tools/claude_mpm_monitor.py, which makes it die with xtask.
struct Monitor {
    process: Guarded,
}

impl Monitor {
    fn start(env: &Env, python: &Path, port: u16, dirs: &MonitorDirs) -> Result<Monitor, String> {
        let bin = python
            .parent()
            .ok_or("the venv's python has no directory")?;
        let log = env.work.join(format!("claude-mpm-monitor-{port}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| format!("creating {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", log.display()))?;
        let mut command = Command::new(python);
        command
            .arg(workspace_root().join("tools/claude_mpm_monitor.py"))
            .arg(bin.join("claude-mpm"))
            .arg(port.to_string())
            .current_dir(&dirs.project)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &dirs.home)
            .env("PYTHONUNBUFFERED", "1")
            .stdout(out)
            .stderr(err);
        // Started from this (the scenario's) thread, which outlives it: the monitor's death
        // signal is tied to the thread that started it.
        let mut process = Guarded::spawn("the claude-mpm monitor", command)?;
        let pid = process.pid();
        let health = format!("http://127.0.0.1:{port}/health");
        let started = wait_for(&format!("the claude-mpm monitor on {health}"), || {
            if let Ok(Some(_)) = process.child_mut().try_wait() {
                return Some(Err(format!(
                    "the claude-mpm monitor exited before it listened; see {}",
                    log.display()
                )));
            }
            let mut reply = ureq::get(&health).call().ok()?;
            let body: Value = reply.body_mut().read_json().ok()?;
            // Ours, not some other monitor on the port: the pid is the one we started.
            (body["service"] == "claude-mpm-monitor" && body["pid"] == pid).then_some(Ok(()))
        });
        started
            .and_then(|r| r)
            .map_err(|e| format!("{e}; see {}", log.display()))?;
        Ok(Monitor { process })
    }

    /// SIGKILL, and wait for it to be gone.
    fn kill(mut self) -> Result<(), String> {
        self.process.signal(Signal::SIGKILL)?;
        self.process.wait_exit(PATIENCE)?;
        Ok(())
    }
}

/// tools/dashboard_client.py, recording what it receives.
struct DashboardClient {
    _process: Guarded,
    lines: mpsc::Receiver<String>,
}

impl DashboardClient {
    fn start(env: &Env, python: &Path, port: u16, record: &Path) -> Result<Self, String> {
        let log = env.work.join("dashboard-client.log");
        let err =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let mut command = Command::new(python);
        command
            .arg(workspace_root().join("tools/dashboard_client.py"))
            .arg(format!("http://localhost:{port}"))
            .arg("--record")
            .arg(record)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(err);
        let mut process = Guarded::spawn("the dashboard client", command)?;
        let stdout = process.child_mut().stdout.take().expect("stdout is piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(DashboardClient {
            _process: process,
            lines,
        })
    }

    /// Waits for a line of the client's that starts with `prefix`.
    fn wait_line(&mut self, prefix: &str) -> Result<String, String> {
        loop {
            let line = self.lines.recv_timeout(PATIENCE).map_err(|_| {
                format!("the dashboard client did not print {prefix:?} within {PATIENCE:?}")
            })?;
            if line.starts_with(prefix) {
                return Ok(line);
            }
        }
    }
}
