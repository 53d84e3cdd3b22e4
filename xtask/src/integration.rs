//! `cargo xtask integration`: the whole system against real peers that nobody here wrote.
//!
//! A python-socketio 5.x server shaped like the claude-mpm dashboard (tools/dashboard_server.py,
//! in the project's virtualenv) receives what the `eventbus` daemon, started as a process,
//! relays. Each scenario publishes over HTTP and through `eventbus publish`, then checks what
//! the server recorded: every relayed event, by id, in order, with the exact payload shape;
//! nothing filtered; `/stats` and `/metrics` (parsed by `prometheus_client`) agreeing with
//! what was sent. The fault scenarios kill, stop and late-start the server, and stop the
//! daemon mid-stream. A table of what held is printed at the end.

mod peers;
mod scenarios;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{TaskResult, cargo, venv, workspace_root};

/// What every scenario needs.
pub(crate) struct Env {
    /// The virtualenv's Python, with python-socketio, aiohttp and prometheus_client.
    pub(crate) python: PathBuf,
    /// The `eventbus` binary under test.
    pub(crate) eventbus: PathBuf,
    /// tools/dashboard_server.py.
    pub(crate) server_script: PathBuf,
    /// A fresh directory for records and logs.
    pub(crate) work: PathBuf,
}

/// A scenario: on success, a one-line summary of what held.
type Scenario = fn(&Env) -> Result<String, String>;

/// Runs every scenario (and the relay's own python-socketio tests), or only those whose name
/// contains `only`; prints the table, and fails if anything failed.
pub(crate) fn run(only: Option<&str>) -> TaskResult {
    let root = workspace_root();
    let python = venv::python()?;
    cargo(&["build", "--quiet", "-p", "bus-config", "--bin", "eventbus"])?;
    let work = root.join("target/xtask-integration");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let env = Env {
        python: python.clone(),
        eventbus: root.join("target/debug/eventbus"),
        server_script: root.join("tools/dashboard_server.py"),
        work,
    };
    let scenarios: [(&str, Scenario); 5] = [
        ("relay 10,000 HTTP + 1,000 CLI events", scenarios::full_flow),
        (
            "server killed (SIGKILL) and restarted",
            scenarios::server_killed,
        ),
        (
            "server stopped (SIGTERM) and restarted",
            scenarios::server_stopped,
        ),
        ("server started after the daemon", scenarios::server_late),
        (
            "daemon stopped (SIGTERM) mid-stream",
            scenarios::daemon_stopped,
        ),
    ];
    let selected = |name: &str| only.is_none_or(|o| name.contains(o));
    let mut rows = Vec::new();
    for (name, scenario) in scenarios.into_iter().filter(|(name, _)| selected(name)) {
        eprintln!("xtask integration: {name} ...");
        let started = Instant::now();
        let outcome = scenario(&env);
        crate::proc::kill_all();
        rows.push((name.to_owned(), outcome, started.elapsed()));
    }
    const RELAY_TESTS: &str = "relay-socketio python_server tests";
    if selected(RELAY_TESTS) {
        eprintln!("xtask integration: {RELAY_TESTS} ...");
        let started = Instant::now();
        let relay_tests = relay_python_tests(&python);
        rows.push((
            RELAY_TESTS.to_owned(),
            relay_tests.map(|()| "4 tests passed (order, late start, SIGKILL, SIGTERM)".to_owned()),
            started.elapsed(),
        ));
    }
    if rows.is_empty() {
        return Err(format!("no integration check matches {only:?}"));
    }
    print_table(&rows);
    let failed = rows
        .iter()
        .filter(|(_, outcome, _)| outcome.is_err())
        .count();
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} integration checks failed",
            rows.len()
        ))
    }
}

fn relay_python_tests(python: &std::path::Path) -> TaskResult {
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo_bin)
        .args([
            "test",
            "--quiet",
            "-p",
            "relay-socketio",
            "--test",
            "python_server",
            "--",
            "--ignored",
        ])
        .env("EVENTBUS_PYTHON", python)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run cargo test: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the relay's python-socketio tests failed ({status})"
        ))
    }
}

fn print_table(rows: &[(String, Result<String, String>, Duration)]) {
    let width = rows.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    eprintln!();
    eprintln!("{:<width$}  result  time     detail", "check");
    eprintln!("{}", "-".repeat(width + 40));
    for (name, outcome, elapsed) in rows {
        let (result, detail) = match outcome {
            Ok(summary) => ("ok", summary.as_str()),
            Err(reason) => ("FAILED", reason.as_str()),
        };
        eprintln!(
            "{name:<width$}  {result:<6}  {:>5.1}s   {detail}",
            elapsed.as_secs_f64()
        );
    }
    eprintln!();
}
