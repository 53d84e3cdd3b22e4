//! The harness of the daemon-as-a-process tests: the binary, a running daemon, HTTP helpers.
#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_eventbus");
/// Generous: the machine is small and shared.
pub const STARTUP: Duration = Duration::from_secs(30);

/// A fresh state directory per command, so each daemon's default store file is its own.
pub fn fresh_state_dir() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("eventbus-daemon-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A `Command` for the binary with no inherited `CLAUDE_MPM_*` variables, and its own state
/// directory (where the default store file goes).
pub fn command(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CLAUDE_MPM_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("XDG_STATE_HOME", fresh_state_dir());
    cmd.envs(envs.iter().copied());
    cmd
}

/// A running daemon, killed when dropped (even when the test fails).
pub struct Daemon {
    pub child: Option<Child>,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
    pub lines: Receiver<String>,
}

impl Daemon {
    /// Starts the daemon on 127.0.0.1:0 (unless `envs` says otherwise) and waits for its
    /// "listening on" line.
    pub fn start(envs: &[(&str, &str)]) -> Daemon {
        Self::start_with_file_limit(envs, None)
    }

    /// Like [`start`](Self::start), with the open-file limit set first (`ulimit -S -n soft
    /// -H -n hard` in a shell that then execs the daemon, so the pid is the daemon's).
    pub fn start_with_file_limit(envs: &[(&str, &str)], limit: Option<(u32, u32)>) -> Daemon {
        let mut all = vec![
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CLAUDE_MPM_EVENTBUS_LOGGING", "false"),
        ];
        all.extend_from_slice(envs);
        let mut cmd = command(&all);
        if let Some((soft, hard)) = limit {
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(format!(
                    "ulimit -S -n {soft} && ulimit -H -n {hard} && exec \"$0\" serve"
                ))
                .arg(BIN);
            for (key, value) in cmd.get_envs() {
                match value {
                    Some(value) => shell.env(key, value),
                    None => shell.env_remove(key),
                };
            }
            cmd = shell;
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn eventbus");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines) = channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut daemon = Daemon {
            child: Some(child),
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
            lines,
        };
        let line = daemon.wait_for_line("listening on http://");
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("an address");
        daemon.addr = addr.parse().expect("a socket address");
        daemon
    }

    pub fn wait_for_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + STARTUP;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!(
            "no line containing {needle:?}; stderr so far:\n{}",
            self.stderr_text()
        );
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Kills the daemon with SIGKILL (no chance to flush or drain) and reaps it.
    pub fn sigkill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            let _ = child.wait();
        }
    }

    pub fn sigterm(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; returns its status and all of stderr.
    pub fn wait_exit(&mut self, timeout: Duration) -> (ExitStatus, String) {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                // The reader thread ends at EOF; give it a moment to push the last lines.
                let until = Instant::now() + Duration::from_secs(10);
                while self
                    .lines
                    .recv_timeout(until.saturating_duration_since(Instant::now()))
                    .is_ok()
                {}
                return (status, self.stderr_text());
            }
            assert!(
                Instant::now() < deadline,
                "daemon did not exit within {timeout:?}; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn client() -> reqwest::Client {
    // The daemon is on loopback; a proxy in the environment must not get in the way.
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub async fn post(url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let response = client()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

pub async fn get_json(url: &str) -> Value {
    let response = client().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.json().await.unwrap()
}

pub async fn get_text(url: &str) -> (u16, String) {
    let response = client().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Polls `check` until it returns true, for up to 30 s.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

pub fn run(args: &[&str], envs: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut child = command(envs)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An SSE connection read frame by frame: `(id, event, data)` per event, comments skipped.
pub struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    pub async fn open(url: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = client().get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseReader {
            response,
            buffer: String::new(),
        }
    }

    /// The next `n` events, within a deadline.
    pub async fn take(&mut self, n: usize) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while out.len() < n {
            while let Some(end) = self.buffer.find("\n\n") {
                let frame: String = self.buffer.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        id = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event = v.to_owned();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data.push_str(v);
                    }
                }
                if !data.is_empty() {
                    out.push((
                        id,
                        event,
                        serde_json::from_str(&data).unwrap_or(Value::String(data)),
                    ));
                }
            }
            if out.len() >= n {
                break;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .expect("SSE events in time")
                .unwrap()
                .expect("the stream stays open");
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        out
    }
}
