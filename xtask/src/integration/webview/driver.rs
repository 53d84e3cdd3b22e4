//! The browser side of the web view check: chromedriver as a process group of its own,
//! a headless Chromium session through it, and the small WebDriver helpers the checks use.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::super::Env;
use super::super::peers::wait_for;
use crate::proc::Guarded;

/// chromedriver on `port`, the leader of its own process group.
pub(crate) struct Chromedriver {
    process: Guarded,
}

impl Chromedriver {
    pub(crate) fn start(env: &Env, port: u16) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let log = env.work.join("chromedriver.log");
        let mut command = Command::new("chromedriver");
        command
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let process = Guarded::spawn("chromedriver", command)?;
        wait_for("chromedriver to answer /status", || {
            ureq::get(&format!("http://127.0.0.1:{port}/status"))
                .call()
                .ok()
                .map(|_| ())
        })?;
        Ok(Chromedriver { process })
    }

    /// Ends chromedriver and whatever it started: its whole process group.
    pub(crate) fn stop(self) {
        let _ = killpg(Pid::from_raw(self.process.pid() as i32), Signal::SIGKILL);
        drop(self.process);
    }
}

/// Pids of processes whose command line names `profile`, after giving them 10 s to exit;
/// those still there are killed.
pub(crate) fn wait_gone(profile: &Path) -> Vec<i32> {
    let needle = profile.display().to_string();
    let find = || -> Vec<i32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = find();
        if left.is_empty() || Instant::now() > deadline {
            for pid in &left {
                let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A browser session: headless Chromium with its own profile directory and its console
/// kept in chromedriver's browser log.
pub(crate) async fn browser(port: u16, profile: &Path) -> Result<Client, String> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1400,1000",
                // performance.memory unquantized, for the heap figures of the flood and soak.
                "--enable-precise-memory-info",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .map_err(|e| format!("a chromedriver session: {e}"))
}

/// Runs `script` (a function body) in the page.
pub(crate) async fn js(client: &Client, script: &str) -> Result<Value, String> {
    client
        .execute(script, Vec::new())
        .await
        .map_err(|e| format!("running {script:?} in the page: {e}"))
}

/// Polls `script` every 20 ms until it returns something other than null or false.
pub(crate) async fn wait_js(
    client: &Client,
    what: &str,
    script: &str,
    timeout: Duration,
) -> Result<Value, String> {
    let start = Instant::now();
    loop {
        let value = js(client, script).await?;
        if !value.is_null() && value != Value::Bool(false) {
            return Ok(value);
        }
        if start.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The browser's console since the last call: chromedriver's `browser` log, as `level:
/// message` lines.
pub(super) async fn console(client: &Client, port: u16) -> Result<Vec<String>, String> {
    let session = client
        .session_id()
        .await
        .map_err(|e| format!("session id: {e}"))?
        .ok_or("no session id")?;
    let reply: Value = ureq::post(&format!("http://127.0.0.1:{port}/session/{session}/se/log"))
        .send_json(json!({ "type": "browser" }))
        .map_err(|e| format!("reading the browser log: {e}"))?
        .body_mut()
        .read_json()
        .map_err(|e| format!("the browser log: {e}"))?;
    Ok(reply["value"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| format!("{}: {}", e["level"].as_str().unwrap_or("?"), e["message"]))
                .collect()
        })
        .unwrap_or_default())
}

/// Fails when the console has any error or warning since the last look.
pub(super) async fn no_console_errors(
    client: &Client,
    port: u16,
    when: &str,
) -> Result<(), String> {
    let bad: Vec<String> = console(client, port)
        .await?
        .into_iter()
        .filter(|line| line.starts_with("SEVERE") || line.starts_with("WARNING"))
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("console errors {when}: {}", bad.join(" | ")))
    }
}

pub(super) async fn find(
    client: &Client,
    css: &str,
) -> Result<fantoccini::elements::Element, String> {
    client
        .find(Locator::Css(css))
        .await
        .map_err(|e| format!("finding {css}: {e}"))
}

pub(super) async fn click(client: &Client, css: &str) -> Result<(), String> {
    find(client, css)
        .await?
        .click()
        .await
        .map_err(|e| format!("clicking {css}: {e}"))
}

/// The start of the page's text, for a failure message.
pub(super) async fn page_text(client: &Client) -> String {
    js(
        client,
        "return document.body ? document.body.innerText.slice(0, 300) : '';",
    )
    .await
    .map_or_else(|e| e, |v| v.as_str().unwrap_or("").to_owned())
}
