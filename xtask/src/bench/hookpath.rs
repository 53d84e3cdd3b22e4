//! The hook path: what one short-lived `eventbus publish` or `eventbus hook` process costs
//! against a running daemon, next to `curl` posting the same event: the median wall time of
//! 20 runs each, alternating, after 3 warm-up rounds.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::services::spawn_daemon;
use crate::paths::{DAEMON_BIN, Profile, built_binary};
use crate::workspace_root;

/// Median wall times, in milliseconds.
pub(crate) struct HookPath {
    /// `eventbus publish hook.pre_tool JSON`.
    pub(crate) publish_ms: f64,
    /// `eventbus hook` with the PreToolUse fixture on stdin.
    pub(crate) hook_ms: f64,
    /// `curl` posting the same event.
    pub(crate) curl_ms: f64,
    /// Runs of each.
    pub(crate) runs: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times one process run to completion; fails unless it exits 0 (with stdin fed if given).
fn timed(mut command: Command, stdin: Option<&[u8]>) -> Result<f64, String> {
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| format!("{command:?}: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input).map_err(|e| e.to_string())?;
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !status.success() {
        return Err(format!("{command:?} exited {status}"));
    }
    Ok(ms)
}

/// Runs the comparison against a fresh release daemon (in-memory log).
pub(crate) fn run() -> Result<HookPath, String> {
    let eventbus = built_binary(Profile::Release, DAEMON_BIN)?;
    let mut command = Command::new(&eventbus);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0")
        .env("CLAUDE_MPM_EVENTBUS_STORE", "memory")
        .env("CLAUDE_MPM_EVENTBUS_LOGGING", "false");
    let (_daemon, addr) = spawn_daemon("eventbus daemon", command)?;

    let fixture_path = workspace_root().join("bus-daemon/tests/fixtures/hooks/PreToolUse.json");
    let fixture = std::fs::read(&fixture_path)
        .map_err(|e| format!("reading {}: {e}", fixture_path.display()))?;
    let data: serde_json::Value = serde_json::from_slice(&fixture).map_err(|e| e.to_string())?;
    let data_text = data.to_string();
    let envelope = serde_json::json!({"type": "hook.pre_tool", "data": data}).to_string();
    let url = format!("http://{addr}/events");

    let publish = || {
        let mut c = Command::new(&eventbus);
        c.env_clear()
            .args(["publish", "--addr", &addr, "hook.pre_tool", &data_text]);
        c
    };
    let hook = || {
        let mut c = Command::new(&eventbus);
        c.env_clear().args(["hook", "--addr", &addr]);
        c
    };
    let curl = || {
        let mut c = Command::new("curl");
        c.args([
            "-s",
            "--noproxy",
            "*",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
        ])
        .args(["--data-binary", &envelope, &url]);
        c
    };
    let (warmup, runs) = (3, 20);
    let (mut p, mut h, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..warmup + runs {
        let times = (
            timed(publish(), None)?,
            timed(curl(), None)?,
            timed(hook(), Some(&fixture))?,
        );
        if round >= warmup {
            p.push(times.0);
            c.push(times.1);
            h.push(times.2);
        }
    }
    let published = ureq::get(format!("http://{addr}/stats"))
        .call()
        .map_err(|e| format!("GET /stats: {e}"))?
        .body_mut()
        .read_json::<serde_json::Value>()
        .map_err(|e| e.to_string())?["events_published"]
        .as_u64()
        .unwrap_or(0);
    let want = 3 * (warmup + runs) as u64;
    if published != want {
        return Err(format!(
            "the daemon counted {published} events, {want} were sent"
        ));
    }
    Ok(HookPath {
        publish_ms: median(p),
        hook_ms: median(h),
        curl_ms: median(c),
        runs,
    })
}

/// The BENCHMARKS.md section.
pub(crate) fn render(r: &Result<HookPath, String>) -> String {
    let r = match r {
        Ok(r) => r,
        Err(e) => return format!("## The hook path\n\nThe hook-path bench FAILED: {e}\n"),
    };
    let mark = |ratio: f64| if ratio <= 1.0 { "met" } else { "MISS" };
    let (p, h) = (r.publish_ms / r.curl_ms, r.hook_ms / r.curl_ms);
    format!(
        "## The hook path\n\n\
         One short-lived process per event against a running release daemon (in-memory log), \
         as Claude Code runs hooks: median wall time of {} runs each, alternating with `curl` \
         posting the same event (3 warm-up rounds first; every event counted back from `/stats`). \
         `cargo xtask bench --hook` for this part alone.\n\n\
         | command | median | vs curl | target | |\n|---|---|---|---|---|\n\
         | `curl -s -X POST --data-binary <event> .../events` | {:.1} ms | 1.00x | | |\n\
         | `eventbus publish hook.pre_tool <json>` | {:.1} ms | {p:.2}x | <= 1.0x | {} |\n\
         | `eventbus hook < PreToolUse.json` | {:.1} ms | {h:.2}x | <= 1.0x | {} |\n",
        r.runs,
        r.curl_ms,
        r.publish_ms,
        mark(p),
        r.hook_ms,
        mark(h),
    )
}
