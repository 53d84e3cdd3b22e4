//! The durable log as users meet it: an SSE client resuming with `Last-Event-ID` across a
//! daemon SIGKILL and restart, a store file that is not a store, and a disk that fills up
//! under the daemon (a real tmpfs; needs root to mount it, reported as not run otherwise).

use std::io::BufRead;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::peers::{Daemon, free_port};
use super::{Env, Outcome};

/// No relay in these checks: the log is what is under test.
const NO_RELAY: (&str, &str) = ("CLAUDE_MPM_RELAY_ENABLED", "false");

/// Reads `n` SSE events (`id`, `data` as JSON) from `GET /events/stream`, resuming after
/// `last_event_id` when set.
fn read_sse(
    daemon: &Daemon,
    last_event_id: Option<&str>,
    n: usize,
) -> Result<Vec<(String, Value)>, String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .new_agent();
    let mut request = agent.get(daemon.url("/events/stream?pattern=hook.*&after=0"));
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request
        .call()
        .map_err(|e| format!("GET /events/stream: {e}"))?;
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    let mut out = Vec::new();
    let mut id = String::new();
    for line in reader.lines() {
        let line = line.map_err(|e| format!("reading the stream: {e}"))?;
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_owned();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data)
                .map_err(|e| format!("SSE data is not JSON ({e}): {data}"))?;
            out.push((id.clone(), event));
            if out.len() == n {
                return Ok(out);
            }
        }
    }
    Err(format!(
        "the stream ended after {} of {n} events",
        out.len()
    ))
}

fn post(daemon: &Daemon, from: u64, to: u64) -> Result<Vec<u64>, String> {
    let events: Vec<(String, Value)> = (from..to)
        .flat_map(|n| {
            [
                ("hook.pre_tool".to_owned(), json!({"n": n})),
                ("session.noise".to_owned(), json!({"n": n})),
            ]
        })
        .collect();
    daemon.post_ndjson(&events)
}

/// An SSE client reads 200 events, the daemon is SIGKILLed and restarted on the same store,
/// 100 more are posted; the client resumes with `Last-Event-ID` and gets exactly those 100.
pub(crate) fn sse_resume(env: &Env) -> Result<String, String> {
    let store = env.work.join("sse-resume.db");
    let store_text = store.display().to_string();
    let extra = [NO_RELAY, ("CLAUDE_MPM_EVENTBUS_STORE", store_text.as_str())];
    let daemon = Daemon::start(env, free_port()?, &extra)?;
    post(&daemon, 0, 200)?;
    let first = read_sse(&daemon, None, 200)?;
    let numbers = |events: &[(String, Value)]| -> Vec<u64> {
        events
            .iter()
            .filter_map(|(_, e)| e["data"]["n"].as_u64())
            .collect()
    };
    if numbers(&first) != (0..200).collect::<Vec<_>>() {
        return Err(format!("before the kill: {:?}", numbers(&first)));
    }
    let last_seen = first.last().map(|(id, _)| id.clone()).unwrap_or_default();
    daemon.kill()?;
    let daemon = Daemon::start(env, free_port()?, &extra)?;
    post(&daemon, 200, 300)?;
    let resumed = read_sse(&daemon, Some(&last_seen), 100)?;
    if numbers(&resumed) != (200..300).collect::<Vec<_>>() {
        return Err(format!("after the restart: {:?}", numbers(&resumed)));
    }
    let ids: Vec<u64> = resumed
        .iter()
        .filter_map(|(id, _)| id.parse().ok())
        .collect();
    let increasing = ids.windows(2).all(|w| w[0] < w[1]);
    let above: u64 = last_seen.parse().unwrap_or(u64::MAX);
    if !increasing || ids.first().is_none_or(|&f| f <= above) {
        return Err(format!("ids after {last_seen}: {ids:?}"));
    }
    daemon.terminate()?;
    Ok(format!(
        "200 hook events streamed, daemon SIGKILLed at id {last_seen}, restarted: the 100 posted after resumed with Last-Event-ID exactly, ids {}..{}",
        ids[0],
        ids[ids.len() - 1]
    ))
}

/// A store file that is not a database: exit 2, the file named, its bytes unchanged.
pub(crate) fn corrupted_file(env: &Env) -> Result<String, String> {
    let store = env.work.join("not-a-store.db");
    let junk: Vec<u8> = (0..64 * 1024u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&store, &junk).map_err(|e| format!("writing {}: {e}", store.display()))?;
    let out = daemon_once(env, &store)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.code() != Some(2) || !stderr.contains(&store.display().to_string()) {
        return Err(format!("exit {:?}, stderr: {stderr}", out.status.code()));
    }
    let after = std::fs::read(&store).map_err(|e| format!("reading {}: {e}", store.display()))?;
    if after != junk {
        return Err("the file was changed".into());
    }
    let wal = store.with_extension("db-wal");
    if wal.exists() {
        return Err(format!("{} was left behind", wal.display()));
    }
    Ok(format!(
        "exit 2: {}; file unchanged",
        stderr
            .lines()
            .find(|l| l.contains("error"))
            .unwrap_or("")
            .trim()
    ))
}

/// Runs the daemon on `store` and waits for it to exit by itself.
fn daemon_once(env: &Env, store: &Path) -> Result<std::process::Output, String> {
    let mut child = Command::new(&env.eventbus)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "CLAUDE_MPM_EVENTBUS_HTTP_ADDR",
            format!("127.0.0.1:{}", free_port()?),
        )
        .env("CLAUDE_MPM_EVENTBUS_STORE", store)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting eventbus: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            return child.wait_with_output().map_err(|e| e.to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    Err("the daemon started on a file that is not a store (it should have refused)".into())
}

/// The disk fills up under a running daemon: `POST /events` answers 503 naming the cause and
/// publishes nothing; when space returns, the same daemon takes events again, and nothing
/// half-written shows up.
pub(crate) fn disk_full(env: &Env) -> Outcome {
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        return Outcome::NotRun("mounting a small tmpfs to fill needs root".into());
    }
    let dir = env.work.join("full-disk");
    if let Err(e) = std::fs::create_dir_all(&dir) {
        return Outcome::Failed(format!("creating {}: {e}", dir.display()));
    }
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&dir)
        .status();
    if !mounted.is_ok_and(|s| s.success()) {
        return Outcome::NotRun(format!(
            "could not mount a tmpfs on {} (a container without CAP_SYS_ADMIN?)",
            dir.display()
        ));
    }
    let result = disk_full_on(env, &dir);
    let _ = Command::new("umount").arg("-l").arg(&dir).status();
    result.into()
}

fn disk_full_on(env: &Env, dir: &Path) -> Result<String, String> {
    let store = dir.join("events.db");
    let store_text = store.display().to_string();
    let daemon = Daemon::start(
        env,
        free_port()?,
        &[NO_RELAY, ("CLAUDE_MPM_EVENTBUS_STORE", &store_text)],
    )?;
    let before = post(&daemon, 0, 50)?.len();
    // Fill what is left of the 4 MiB with ballast.
    let ballast = dir.join("ballast");
    let mut file = std::fs::File::create(&ballast).map_err(|e| e.to_string())?;
    let chunk = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    let _ = file.sync_all();
    drop(file);
    // Large events, so the WAL must grow.
    let big = "x".repeat(256 * 1024);
    let body = format!("{}\n", json!({"type": "hook.big", "data": big}));
    let response = ureq::post(&daemon.url("/events"))
        .config()
        .http_status_as_error(false)
        .build()
        .content_type("application/x-ndjson")
        .send(body.repeat(4))
        .map_err(|e| format!("POST /events: {e}"))?;
    let status = response.status().as_u16();
    let text = response.into_body().read_to_string().unwrap_or_default();
    if status != 503 || !text.contains("full") {
        return Err(format!("with the disk full: {status} {text}"));
    }
    std::fs::remove_file(&ballast).map_err(|e| e.to_string())?;
    let after = post(&daemon, 50, 60)?.len();
    let stored = daemon.get_json("/events?pattern=hook.*&limit=1000")?;
    let n = stored["events"].as_array().map_or(0, Vec::len);
    let big_stored = stored["events"]
        .as_array()
        .is_some_and(|e| e.iter().any(|e| e["type"] == "hook.big"));
    if n != 60 || big_stored {
        return Err(format!(
            "{n} hook events stored (want 60), refused batch stored: {big_stored}"
        ));
    }
    daemon.terminate()?;
    Ok(format!(
        "{before} events accepted; disk full: 503 \"{}\"; space back: {after} more accepted; 60 stored, none of the refused batch",
        text.split("published: ")
            .nth(1)
            .unwrap_or(&text)
            .trim_end_matches(['"', '}'])
    ))
}
