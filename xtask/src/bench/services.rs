//! The daemon's HTTP ingest rate (`eventbus` + bus-daemon's `ingest_load` example) and the
//! relay's rate to a python-socketio server (relay-socketio's `throughput` example against
//! tools/dashboard_server.py). Both are checked against the receiving side's own count.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::paths::{DAEMON_BIN, DAEMON_PACKAGE, Profile, built_binary, built_example};
use crate::proc::Guarded;
use crate::{venv, workspace_root};

/// The daemon's ingest rates.
pub(crate) struct Ingest {
    /// Events/s in NDJSON batches.
    pub(crate) ndjson_events_per_s: f64,
    /// Requests (one event each)/s as single JSON POSTs.
    pub(crate) single_posts_per_s: f64,
    /// The load generator's settings, for the report.
    pub(crate) settings: String,
    /// The daemon's peak RSS (VmHWM) after both phases, in KiB.
    pub(crate) daemon_peak_rss_kb: u64,
}

/// The relay's rates to python-socketio.
pub(crate) struct Relay {
    /// A bare client emitting without acks (what the server can take).
    pub(crate) plain_events_per_s: f64,
    /// The relay with checkpoint acknowledgements.
    pub(crate) relay_events_per_s: f64,
    /// One acknowledged emit at a time.
    pub(crate) acked_events_per_s: f64,
    /// What the example and the server counted.
    pub(crate) detail: String,
}

/// Builds the release binaries the services benchmarks run.
pub(crate) fn build() -> Result<(), String> {
    crate::paths::build_daemon(Profile::Release, false)?;
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        DAEMON_PACKAGE,
        "--example",
        "ingest_load",
        "--example",
        "read_load",
        "--example",
        "latency_load",
    ])?;
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "relay-socketio",
        "--example",
        "throughput",
    ])
}

/// Starts the daemon on a free loopback port (relay off, logging off) and loads it.
pub(crate) fn ingest(seconds: f64) -> Result<Ingest, String> {
    let mut command = Command::new(built_binary(Profile::Release, DAEMON_BIN)?);
    command
        .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0")
        // The in-memory log: this measures ingest, and must not touch the user's own store.
        .env("CLAUDE_MPM_EVENTBUS_STORE", "memory")
        .env("CLAUDE_MPM_RELAY_ENABLED", "false")
        // The logging consumer would write every event to stderr: that measures the terminal.
        .env("CLAUDE_MPM_EVENTBUS_LOGGING", "false");
    let (daemon, addr) = spawn_daemon("eventbus daemon", command)?;
    let (connections, batch) = (4, 5000);
    let output = Command::new(built_example(Profile::Release, "ingest_load")?)
        .args(["--addr", &addr, "--seconds", &seconds.to_string()])
        .args([
            "--connections",
            &connections.to_string(),
            "--batch",
            &batch.to_string(),
        ])
        .output()
        .map_err(|e| format!("could not run ingest_load: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "ingest_load failed ({}): {stderr}{stdout}",
            output.status
        ));
    }
    let daemon_peak_rss_kb = peak_rss_of_live(daemon.pid())?;
    let ndjson = counted_line(&stdout, "ndjson:", "events/s")?;
    let single = counted_line(&stdout, "single:", "requests/s")?;
    Ok(Ingest {
        ndjson_events_per_s: ndjson,
        single_posts_per_s: single,
        settings: format!(
            "{connections} keep-alive connections, {seconds} s per phase, NDJSON batches of {batch}"
        ),
        daemon_peak_rss_kb,
    })
}

/// Reads `rate` from a line like `ndjson: 123 events in ... = 456 events/s (daemon counted
/// 123)`, checking that the daemon counted every event the load generator saw accepted.
pub(crate) fn counted_line(stdout: &str, prefix: &str, unit: &str) -> Result<f64, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .ok_or_else(|| format!("ingest_load printed no {prefix} line: {stdout}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let sent = words.get(1).copied().unwrap_or_default();
    let counted = line
        .rsplit_once("daemon counted ")
        .map(|(_, rest)| rest.trim_end_matches(')'))
        .unwrap_or_default();
    if sent != counted {
        return Err(format!(
            "INVALID ingest run: sent {sent} events, daemon counted {counted}: {line}"
        ));
    }
    let rate = words
        .iter()
        .position(|w| *w == unit)
        .and_then(|i| words.get(i.wrapping_sub(1)))
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("no rate in {line:?}"))?;
    Ok(rate)
}

/// VmHWM of a running process, in KiB.
pub(crate) fn peak_rss_of_live(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("reading /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("no VmHWM in /proc/{pid}/status"))
}

/// Starts tools/dashboard_server.py and runs the relay throughput example against it.
pub(crate) fn relay(events: u64, acked: u64) -> Result<Relay, String> {
    let python = venv::python()?;
    let root = workspace_root();
    let mut command = Command::new(python);
    command
        .arg(root.join("tools/dashboard_server.py"))
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut server = Guarded::spawn("dashboard_server.py", command)?;
    let stdout = server.child_mut().stdout.take();
    let port = first_line_after(stdout, "LISTENING ", Duration::from_secs(30))
        .map_err(|e| format!("dashboard_server.py: {e}"))?;
    let url = format!("http://127.0.0.1:{}", port.trim());
    let output = Command::new(built_example(Profile::Release, "throughput")?)
        .args(["--server", &url, "--events", &events.to_string()])
        .args(["--acked", &acked.to_string()])
        .output()
        .map_err(|e| format!("could not run the throughput example: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "throughput example failed ({}): {stderr}{stdout}",
            output.status
        ));
    }
    let received: serde_json::Value = ureq::get(format!("{url}/count"))
        .call()
        .and_then(|mut r| r.body_mut().read_json())
        .map_err(|e| format!("asking dashboard_server.py for its count: {e}"))?;
    let received = received["received"].as_u64().unwrap_or(0);
    // Plain emits + relayed + stop-and-wait; the relay may resend, never lose.
    let expected = 2 * events + acked;
    if received < expected {
        return Err(format!(
            "INVALID relay run: the server received {received} events, expected at least {expected}"
        ));
    }
    let rate = |prefix: &str| -> Result<f64, String> {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.split_once(':'))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .and_then(|w| w.parse().ok())
            .ok_or_else(|| format!("the throughput example printed no {prefix:?} rate: {stdout}"))
    };
    let relay_line = stdout
        .lines()
        .find(|l| l.starts_with("relay"))
        .unwrap_or_default();
    Ok(Relay {
        plain_events_per_s: rate("plain emits")?,
        relay_events_per_s: rate("relay")?,
        acked_events_per_s: rate("one ack per event")?,
        detail: format!(
            "{events} events plain, {events} through the relay ({}), {acked} stop-and-wait; the server counted {received} (expected at least {expected})",
            relay_line
                .rsplit_once('(')
                .map_or("", |(_, r)| r.trim_end_matches(')'))
        ),
    })
}

/// Spawns a daemon `command` (stdout discarded, stderr watched) and waits up to a minute for
/// its "listening on http://ADDR" line; answers the process and ADDR. `what` names it in errors.
pub(crate) fn spawn_daemon(what: &str, mut command: Command) -> Result<(Guarded, String), String> {
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut process = Guarded::spawn(what, command)?;
    let stderr = process.child_mut().stderr.take();
    let line = first_line_after(stderr, "listening on http://", Duration::from_secs(60))
        .map_err(|e| format!("{what}: {e}"))?;
    let addr = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok((process, addr))
}

/// Waits for a line containing `marker` on `pipe` and returns what follows it; keeps draining
/// the pipe afterwards so the child never blocks on a full pipe.
pub(crate) fn first_line_after(
    pipe: Option<impl std::io::Read + Send + 'static>,
    marker: &'static str,
    timeout: Duration,
) -> Result<String, String> {
    let pipe = pipe.ok_or("its output is not piped")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if !sent {
                if let Some((_, rest)) = line.split_once(marker) {
                    let _ = tx.send(rest.to_owned());
                    sent = true;
                }
            }
        }
    });
    rx.recv_timeout(timeout)
        .map_err(|_| format!("no {marker:?} line within {timeout:?}"))
}
