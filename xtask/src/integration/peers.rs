//! The processes an integration scenario drives: the dashboard-like Python server and the
//! `eventbus` daemon, plus the HTTP calls and record reading around them.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::Env;
use crate::proc::Guarded;

/// A proxy that refuses every connection, set in the daemon's and the CLI's environment:
/// neither the relay's connection to the dashboard nor `eventbus publish` may go through it.
pub(crate) const DEAD_PROXY: [(&str, &str); 4] = [
    ("http_proxy", "http://127.0.0.1:1"),
    ("HTTP_PROXY", "http://127.0.0.1:1"),
    ("ALL_PROXY", "http://127.0.0.1:1"),
    ("all_proxy", "http://127.0.0.1:1"),
];

/// How long any single wait may take before the scenario fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

/// A port that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Polls `check` every 20 ms until it returns `Some`, or fails after `PATIENCE`.
pub(crate) fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Ok(value);
        }
        if start.elapsed() > PATIENCE {
            return Err(format!("timed out after {PATIENCE:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// tools/dashboard_server.py on a fixed port, recording what it receives.
pub(crate) struct PythonServer {
    process: Guarded,
}

impl PythonServer {
    /// Starts the server on `port`, appending received payloads to `record`.
    pub(crate) fn start(env: &Env, port: u16, record: &Path) -> Result<Self, String> {
        let log = log_file(env, &format!("python-server-{port}"))?;
        let mut command = Command::new(&env.python);
        command
            .arg(&env.server_script)
            .arg(port.to_string())
            .arg("--record")
            .arg(record)
            .stdout(Stdio::piped())
            .stderr(log);
        let mut process = Guarded::spawn("the python-socketio server", command)?;
        let stdout = process.child_mut().stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("LISTENING") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(PATIENCE)
            .map_err(|_| format!("the python-socketio server did not start listening on {port}"))?;
        Ok(PythonServer { process })
    }

    /// Kills the server with `signal` and waits for it to go.
    pub(crate) fn stop(mut self, signal: Signal) -> Result<(), String> {
        self.process.signal(signal)?;
        self.process.wait_exit(PATIENCE)?;
        Ok(())
    }
}

/// The `eventbus` daemon as a process, on its own port, relaying to a server.
pub(crate) struct Daemon {
    process: Guarded,
    addr: String,
    log: PathBuf,
}

impl Daemon {
    /// Starts the daemon with the relay pointed at `server_port` (`CLAUDE_MPM_SOCKETIO_URL`
    /// on 127.0.0.1), and waits until it answers.
    pub(crate) fn start(
        env: &Env,
        server_port: u16,
        extra: &[(&str, &str)],
    ) -> Result<Self, String> {
        let url = format!("http://127.0.0.1:{server_port}");
        Self::launch(env, &[("CLAUDE_MPM_SOCKETIO_URL", &url)], extra)
    }

    /// Starts the daemon with `CLAUDE_MPM_SOCKETIO_PORT=server_port` and no URL, as a user
    /// turns the relay on for a local dashboard (`http://localhost:<port>`).
    pub(crate) fn start_for_port(
        env: &Env,
        server_port: u16,
        extra: &[(&str, &str)],
    ) -> Result<Self, String> {
        let port = server_port.to_string();
        Self::launch(env, &[("CLAUDE_MPM_SOCKETIO_PORT", &port)], extra)
    }

    fn launch(env: &Env, server: &[(&str, &str)], extra: &[(&str, &str)]) -> Result<Self, String> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let log = env
            .work
            .join(format!("eventbus-{}.log", addr.replace([':', '.'], "-")));
        let log_file =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let mut command = Command::new(&env.eventbus);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(DEAD_PROXY)
            .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", &addr)
            // A store of its own: every daemon of the run starts from an empty log.
            .env(
                "CLAUDE_MPM_EVENTBUS_STORE",
                env.work
                    .join(format!("events-{}.db", addr.replace([':', '.'], "-"))),
            )
            .env("CLAUDE_MPM_EVENTBUS_FILTERS", "hook.*,session.*")
            .env("CLAUDE_MPM_EVENTBUS_METRICS", "true")
            .env("CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT", "20s")
            .env("CLAUDE_MPM_RELAY_ENABLED", "true")
            .envs(server.iter().copied())
            .env("CLAUDE_MPM_RELAY_PATTERNS", "hook.*")
            .env("CLAUDE_MPM_RELAY_RETRY_DELAY", "0.1")
            .env("CLAUDE_MPM_RELAY_CONNECTION_COOLDOWN", "0.5")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(log_file);
        let process = Guarded::spawn("the eventbus daemon", command)?;
        let daemon = Daemon { process, addr, log };
        wait_for("the daemon to answer /healthz", || {
            ureq::get(&daemon.url("/healthz")).call().ok().map(|_| ())
        })?;
        Ok(daemon)
    }

    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// GET a JSON document.
    pub(crate) fn get_json(&self, path: &str) -> Result<Value, String> {
        ureq::get(&self.url(path))
            .call()
            .map_err(|e| format!("GET {path}: {e}"))?
            .body_mut()
            .read_json()
            .map_err(|e| format!("GET {path}: bad JSON: {e}"))
    }

    /// GET a text document.
    pub(crate) fn get_text(&self, path: &str) -> Result<String, String> {
        ureq::get(&self.url(path))
            .call()
            .map_err(|e| format!("GET {path}: {e}"))?
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("GET {path}: {e}"))
    }

    /// POSTs events as NDJSON; returns the ids of the accepted ones, in body order.
    pub(crate) fn post_ndjson(&self, events: &[(String, Value)]) -> Result<Vec<u64>, String> {
        let body: String = events
            .iter()
            .map(|(t, d)| format!("{}\n", json!({"type": t, "data": d})))
            .collect();
        let reply: Value = ureq::post(&self.url("/events"))
            .content_type("application/x-ndjson")
            .send(body)
            .map_err(|e| format!("POST /events: {e}"))?
            .body_mut()
            .read_json()
            .map_err(|e| format!("POST /events: bad JSON reply: {e}"))?;
        ids_of(&reply)
    }

    /// Sends SIGKILL and waits for the process to go; returns the daemon's log.
    pub(crate) fn kill(mut self) -> Result<String, String> {
        self.process.signal(Signal::SIGKILL)?;
        self.process.wait_exit(PATIENCE)?;
        Ok(std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and the daemon's log.
    pub(crate) fn terminate(mut self) -> Result<(Option<i32>, String), String> {
        self.process.signal(Signal::SIGTERM)?;
        let code = self.process.wait_exit(PATIENCE)?;
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        Ok((code, log))
    }
}

/// The `ids` of a `POST /events` or `eventbus publish` reply: the log's ids, opaque text
/// (decimal) since the durable log; numbers are read too.
pub(crate) fn ids_of(reply: &Value) -> Result<Vec<u64>, String> {
    let id = |v: &Value| v.as_u64().or_else(|| v.as_str()?.parse().ok());
    reply["ids"]
        .as_array()
        .and_then(|ids| ids.iter().map(id).collect())
        .ok_or_else(|| format!("a reply without ids: {reply}"))
}

fn log_file(env: &Env, name: &str) -> Result<std::fs::File, String> {
    let path = env.work.join(format!("{name}.log"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

/// The payloads a server recorded, in arrival order.
pub(crate) fn read_record(path: &Path) -> Result<Vec<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    text.lines()
        // A line cut short by SIGKILL is not a delivery.
        .filter(|line| line.ends_with('}'))
        .map(|line| {
            serde_json::from_str(line).map_err(|e| format!("a bad record line {line:?}: {e}"))
        })
        .collect()
}

/// Parses Prometheus text with `prometheus_client`'s parser (a real one, in the venv) into
/// `{"name{label=\"v\",...}": value}`.
pub(crate) fn parse_prometheus(env: &Env, text: &str) -> Result<Value, String> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join('%s="%s"' % kv for kv in sorted(s.labels.items()))
        out[s.name + ("{%s}" % labels if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new(&env.python)
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running the Prometheus parser: {e}"))?;
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .map_err(|e| format!("feeding the Prometheus parser: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("the Prometheus parser: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "prometheus_client could not parse /metrics: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("the parser's output: {e}"))
}
