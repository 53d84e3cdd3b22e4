//! `cargo xtask integration`: the whole system against real peers that nobody here wrote.
//!
//! A python-socketio 5.x server shaped like the claude-mpm dashboard (tools/dashboard_server.py,
//! in the project's virtualenv) receives what the `eventbus` daemon, started as a process,
//! relays. Each scenario publishes over HTTP and through `eventbus publish`, then checks what
//! the server recorded: every relayed event, by id, in order per producer, with the exact
//! payload shape; nothing relayed that should not be; `/stats` and `/metrics` (parsed by
//! `prometheus_client`) agreeing with what was sent. The fault scenarios kill and stop the
//! server once the daemon's `/stats` shows the relay mid-stream, start the server only after
//! the relay has failed to connect, and stop the daemon mid-stream; each summary says what
//! the relay's counters showed at the fault. The relay crate's own `#[ignore]`d
//! python-socketio tests run too, and must all be seen passing by name.
//!
//! The real claude-mpm monitor (`claude-mpm monitor start`, in a virtualenv of its own made
//! from a Python >= 3.13) is the peer of one more check: a client listening the way its
//! dashboard does must get every event the daemon relays, with `session_id`, `cwd` and
//! `correlation_id` at the top level, across a SIGKILL and restart of the monitor. On a
//! machine without Python >= 3.13 that check is reported as not run, with the reason. Another
//! check sends SIGTERM and SIGINT to `cargo xtask run` and sees the daemon stop and xtask exit
//! 0. A table of what held is printed at the end.

mod delivery;
mod durable;
mod limits;
mod monitor;
pub(crate) mod peers;
mod redis;
mod run_signals;
mod scenarios;
mod store;
pub(crate) mod webview;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::paths::{self, Profile};
use crate::{TaskResult, venv, workspace_root};

/// What every scenario needs.
pub(crate) struct Env {
    /// The virtualenv's Python, with python-socketio, aiohttp and prometheus_client.
    pub(crate) python: PathBuf,
    /// The `eventbus` binary under test.
    pub(crate) eventbus: PathBuf,
    /// The claude-mpm virtualenv's Python, or why there is none (no Python >= 3.13).
    pub(crate) claude_mpm_python: Result<PathBuf, String>,
    /// tools/dashboard_server.py.
    pub(crate) server_script: PathBuf,
    /// A fresh directory for records and logs.
    pub(crate) work: PathBuf,
}

impl Env {
    /// What the browser checks alone need (the daemon and a work directory), for
    /// `cargo xtask bench --webview`: no virtualenv is made, so `python` is the system's
    /// `python3` and the claude-mpm one is absent; nothing on that path runs either.
    pub(crate) fn for_browser(eventbus: PathBuf, work: PathBuf) -> Env {
        Env {
            python: PathBuf::from("python3"),
            eventbus,
            claude_mpm_python: Err("not made for the web view bench".into()),
            server_script: workspace_root().join("tools/dashboard_server.py"),
            work,
        }
    }
}

/// A scenario: on success, a one-line summary of what held.
type Scenario = fn(&Env) -> Result<String, String>;

/// How a check ended.
pub(crate) enum Outcome {
    /// It held; what held.
    Passed(String),
    /// It did not; why.
    Failed(String),
    /// It could not run on this machine; why. Reported in the table, not counted as failed.
    NotRun(String),
}

impl From<Result<String, String>> for Outcome {
    fn from(result: Result<String, String>) -> Outcome {
        match result {
            Ok(summary) => Outcome::Passed(summary),
            Err(reason) => Outcome::Failed(reason),
        }
    }
}

/// Runs every scenario (and the relay's own python-socketio tests), or only those whose name
/// contains `only`; prints the table, and fails if anything failed.
pub(crate) fn run(only: Option<&str>) -> TaskResult {
    let root = workspace_root();
    let python = venv::python()?;
    let claude_mpm_python = venv::claude_mpm_python()?;
    let eventbus = paths::build_daemon(Profile::Dev, false)?;
    let work = paths::in_target("xtask-integration")?;
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| format!("creating {}: {e}", work.display()))?;
    let env = Env {
        python: python.clone(),
        eventbus,
        claude_mpm_python,
        server_script: root.join("tools/dashboard_server.py"),
        work,
    };
    let scenarios: [(&str, Scenario); 14] = [
        (
            "10,000 HTTP + 1,000 CLI events, hook.* relayed",
            scenarios::full_flow,
        ),
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
        (
            "daemon killed (SIGKILL) mid-ingest, durable relay",
            durable::check,
        ),
        (
            "relay limited to 200/s under a 20,000 burst, hook.error first",
            limits::check,
        ),
        (
            "cargo xtask run stopped by SIGTERM and SIGINT",
            run_signals::check,
        ),
        (
            "SSE resumes with Last-Event-ID across a daemon SIGKILL",
            store::sse_resume,
        ),
        (
            "a store file that is not a store: exit 2, untouched",
            store::corrupted_file,
        ),
        (webview::NAME, webview::check),
        (
            "redis: three daemons on one stream, every SSE client in one order",
            redis::three_daemons,
        ),
        (
            "redis: SIGSTOP 5 s then SIGKILL and restart mid-ingest, nothing acknowledged lost",
            redis::redis_outage,
        ),
        (
            "redis: two relays in one group, one dashboard, one daemon SIGKILLed",
            redis::relay_group,
        ),
    ];
    let selected = |name: &str| only.is_none_or(|o| name.contains(o));
    let mut rows = Vec::new();
    for (name, scenario) in scenarios.into_iter().filter(|(name, _)| selected(name)) {
        eprintln!("xtask integration: {name} ...");
        let started = Instant::now();
        let outcome = scenario(&env).into();
        crate::proc::kill_all();
        rows.push((name.to_owned(), outcome, started.elapsed()));
    }
    if selected(monitor::NAME) {
        eprintln!("xtask integration: {} ...", monitor::NAME);
        let started = Instant::now();
        let outcome = match &env.claude_mpm_python {
            Ok(python) => monitor::check(&env, python).into(),
            Err(why) => Outcome::NotRun(why.clone()),
        };
        crate::proc::kill_all();
        rows.push((monitor::NAME.to_owned(), outcome, started.elapsed()));
    }
    const DISK_FULL: &str = "disk full under the daemon: 503, then recovers";
    if selected(DISK_FULL) {
        eprintln!("xtask integration: {DISK_FULL} ...");
        let started = Instant::now();
        let outcome = store::disk_full(&env);
        crate::proc::kill_all();
        rows.push((DISK_FULL.to_owned(), outcome, started.elapsed()));
    }
    const RELAY_TESTS: &str = "relay-socketio python_server tests";
    if selected(RELAY_TESTS) {
        eprintln!("xtask integration: {RELAY_TESTS} ...");
        let started = Instant::now();
        let relay_tests = relay_python_tests(&python, &env.work).into();
        rows.push((RELAY_TESTS.to_owned(), relay_tests, started.elapsed()));
    }
    if rows.is_empty() {
        return Err(format!("no integration check matches {only:?}"));
    }
    print_table(&rows);
    let tally = |wanted: fn(&Outcome) -> bool| rows.iter().filter(|(_, o, _)| wanted(o)).count();
    let failed = tally(|o| matches!(o, Outcome::Failed(_)));
    let passed = tally(|o| matches!(o, Outcome::Passed(_)));
    let not_run = tally(|o| matches!(o, Outcome::NotRun(_)));
    if not_run == 0 {
        eprintln!("integration: {passed} passed, {failed} failed");
    } else {
        eprintln!("integration: {passed} passed, {failed} failed, {not_run} skipped");
        eprintln!("({not_run} check(s) NOT RUN on this machine: the table says why)");
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(format!(
            "{failed} of {} integration checks failed",
            rows.len()
        ))
    }
}

/// The relay's own tests against the python-socketio server, every one `#[ignore]`d so that
/// `cargo test --workspace` skips them: runs them with `--ignored` and checks that exactly as
/// many passed as the file has `#[ignore]` attributes, naming each one that passed.
fn relay_python_tests(python: &Path, work: &Path) -> Result<String, String> {
    let source = workspace_root().join(RELAY_TEST_FILE);
    let text = std::fs::read_to_string(&source)
        .map_err(|e| format!("reading {}: {e}", source.display()))?;
    let ignored = text
        .lines()
        .filter(|line| line.trim_start().starts_with("#[ignore"))
        .count();
    if ignored == 0 {
        return Err(format!("{RELAY_TEST_FILE} has no #[ignore]d tests to run"));
    }
    let cargo_bin = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo_bin)
        // `--workspace`, not `-p relay-socketio`: the features of the dependencies are then
        // resolved as `cargo test --workspace` resolves them, so that CI, which ran that
        // first, compiles nothing here (cold, `-p` rebuilt tokio, hyper and the rest: a minute).
        .args([
            "test",
            "--quiet",
            "--workspace",
            "--test",
            "python_server",
            "--",
            "--ignored",
            // One line per test, so the passed ones can be named.
            "--format",
            "pretty",
        ])
        .env("EVENTBUS_PYTHON", python)
        .current_dir(workspace_root())
        .output()
        .map_err(|e| format!("could not run cargo test: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = work.join("relay-python-tests.log");
    std::fs::write(&log, format!("{stdout}\n--- stderr ---\n{stderr}"))
        .map_err(|e| format!("writing {}: {e}", log.display()))?;
    eprint!("{stdout}{stderr}");
    if !out.status.success() {
        return Err(format!(
            "the relay's python-socketio tests failed ({}); see {}",
            out.status,
            log.display()
        ));
    }
    let passed_names: Vec<&str> = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.strip_suffix(" ... ok"))
        .collect();
    let passed = stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("test result: ok. ")?
                .split_once(" passed;")?
                .0
                .parse::<usize>()
                .ok()
        })
        .ok_or_else(|| format!("no `test result: ok. N passed` line in {}", log.display()))?;
    if passed != ignored || passed_names.len() != ignored {
        return Err(format!(
            "{passed} tests passed ({} named), but {RELAY_TEST_FILE} has {ignored} #[ignore]d tests; see {}",
            passed_names.len(),
            log.display()
        ));
    }
    Ok(format!(
        "{passed} of {ignored} #[ignore]d tests passed: {}",
        passed_names.join(", ")
    ))
}

/// The relay's python-socketio tests, relative to the workspace root.
const RELAY_TEST_FILE: &str = "relay-socketio/tests/python_server.rs";

fn print_table(rows: &[(String, Outcome, Duration)]) {
    let width = rows.iter().map(|(name, ..)| name.len()).max().unwrap_or(0);
    eprintln!();
    eprintln!("{:<width$}  result   time     detail", "check");
    eprintln!("{}", "-".repeat(width + 40));
    for (name, outcome, elapsed) in rows {
        let (result, detail) = match outcome {
            Outcome::Passed(summary) => ("ok", summary.as_str()),
            Outcome::Failed(reason) => ("FAILED", reason.as_str()),
            Outcome::NotRun(why) => ("NOT RUN", why.as_str()),
        };
        eprintln!(
            "{name:<width$}  {result:<7}  {:>5.1}s   {detail}",
            elapsed.as_secs_f64()
        );
    }
    eprintln!();
}
