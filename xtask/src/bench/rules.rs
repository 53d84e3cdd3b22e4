//! `cargo xtask bench --rules`: what schema validation and CEL conditions cost. NDJSON ingest
//! of the PreToolUse hook payload with a 10-property schema against the same ingest without
//! schemas (alternating daemons, best of each), and bus-cel's `condition_rate` example: a
//! subscriber with a CEL condition on a `data` field, and a patterns-only subscriber with and
//! without conditional subscribers elsewhere on the bus. Side by side in one run.

use std::process::Command;

use super::services::{counted_line, spawn_daemon};
use crate::paths::{DAEMON_BIN, Profile, built_binary, built_example};
use crate::workspace_root;

/// The figures of one run.
pub(crate) struct RulesBench {
    /// NDJSON ingest without schemas, events/s.
    plain: f64,
    /// The same with the schema, events/s.
    validated: f64,
    /// A conditional subscriber's matched events/s.
    matched: f64,
    /// A patterns-only subscriber alone, events/s.
    patterns_only: f64,
    /// The same beside conditional subscribers on other patterns, events/s.
    beside: f64,
    /// What was measured how.
    settings: String,
}

/// A schema of 10 properties for the hook payload (7 of them present in the fixture).
const SCHEMA: &str = r#"{"load.ndjson": {
  "type": "object",
  "required": ["session_id", "hook_event_name", "tool_name"],
  "properties": {
    "session_id": {"type": "string", "minLength": 1},
    "transcript_path": {"type": "string"},
    "cwd": {"type": "string"},
    "permission_mode": {"enum": ["default", "plan", "acceptEdits", "bypassPermissions"]},
    "hook_event_name": {"type": "string"},
    "tool_name": {"type": "string"},
    "tool_input": {"type": "object"},
    "agent_type": {"type": "string"},
    "stop_hook_active": {"type": "boolean"},
    "prompt": {"type": "string"}
  }
}}"#;

/// Builds what the run needs.
pub(crate) fn build() -> Result<(), String> {
    super::services::build()?;
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "bus-cel",
        "--example",
        "condition_rate",
    ])
}

/// One daemon (in-memory log, relay and logging off), loaded with NDJSON hook events.
fn ingest(schemas: Option<&std::path::Path>, data: &str, seconds: f64) -> Result<f64, String> {
    let mut command = Command::new(built_binary(Profile::Release, DAEMON_BIN)?);
    command
        .env_clear()
        .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0")
        .env("CLAUDE_MPM_EVENTBUS_STORE", "memory")
        .env("CLAUDE_MPM_RELAY_ENABLED", "false")
        .env("CLAUDE_MPM_EVENTBUS_LOGGING", "false");
    if let Some(file) = schemas {
        command.env("CLAUDE_MPM_EVENTBUS_SCHEMAS", file);
    }
    let (_daemon, addr) = spawn_daemon("eventbus daemon", command)?;
    let output = Command::new(built_example(Profile::Release, "ingest_load")?)
        .args(["--addr", &addr, "--seconds", &seconds.to_string()])
        .args(["--mode", "ndjson", "--connections", "4", "--batch", "5000"])
        .args(["--data", data])
        .output()
        .map_err(|e| format!("could not run ingest_load: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "ingest_load failed ({}): {}{stdout}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if schemas.is_some() {
        let stats: serde_json::Value = ureq::get(format!("http://{addr}/stats"))
            .call()
            .map_err(|e| format!("GET /stats: {e}"))?
            .body_mut()
            .read_json()
            .map_err(|e| e.to_string())?;
        if stats["rules"]["schemas"]["patterns"] != serde_json::json!(["load.ndjson"]) {
            return Err(format!(
                "the daemon did not load the schema: {}",
                stats["rules"]
            ));
        }
    }
    counted_line(&stdout, "ndjson:", "events/s")
}

/// A rate from a line such as `matched: N events = R events/s ...`.
fn rate(stdout: &str, prefix: &str) -> Result<f64, String> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .ok_or_else(|| format!("condition_rate printed no {prefix} line: {stdout}"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "events/s")
        .and_then(|i| words.get(i.wrapping_sub(1)))
        .and_then(|w| w.parse().ok())
        .ok_or_else(|| format!("no rate in {line:?}"))
}

/// Runs the measurements.
pub(crate) fn run(quick: bool) -> Result<RulesBench, String> {
    let fixture_path = workspace_root().join("bus-daemon/tests/fixtures/hooks/PreToolUse.json");
    let fixture = std::fs::read_to_string(&fixture_path)
        .map_err(|e| format!("reading {}: {e}", fixture_path.display()))?;
    let data: serde_json::Value = serde_json::from_str(&fixture).map_err(|e| e.to_string())?;
    let data = data.to_string();
    let dir = std::env::temp_dir().join(format!("xtask-rules-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let schemas = dir.join("schemas.json");
    std::fs::write(&schemas, SCHEMA).map_err(|e| e.to_string())?;

    let (seconds, rounds) = if quick { (1.0, 1) } else { (3.0, 3) };
    let (mut plain, mut validated) = (0f64, 0f64);
    for round in 0..rounds {
        // Alternating, best of each: neither side gets the machine's quieter moments alone.
        let p = ingest(None, &data, seconds)?;
        let v = ingest(Some(&schemas), &data, seconds)?;
        eprintln!("xtask: rules bench: round {round}: plain {p:.0}, validated {v:.0} events/s");
        plain = plain.max(p);
        validated = validated.max(v);
    }
    let _ = std::fs::remove_dir_all(&dir);

    let events = if quick { 1_000_000 } else { 5_000_000 };
    let output = Command::new(built_example(Profile::Release, "condition_rate")?)
        .arg(events.to_string())
        .output()
        .map_err(|e| format!("could not run condition_rate: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "condition_rate failed ({}): {stdout}",
            output.status
        ));
    }
    let matched_line = stdout
        .lines()
        .find(|l| l.starts_with("matched:"))
        .unwrap_or("");
    if !matched_line.contains(&format!("handler counted {events},")) {
        return Err(format!(
            "INVALID: the conditional handler did not see every event: {matched_line}"
        ));
    }
    Ok(RulesBench {
        plain,
        validated,
        matched: rate(&stdout, "matched:")?,
        patterns_only: rate(&stdout, "patterns_only:")?,
        beside: rate(&stdout, "patterns_only_beside_conditions:")?,
        settings: format!(
            "ingest: 4 keep-alive connections, NDJSON batches of 5,000 PreToolUse payloads, {seconds} s per daemon, best of {rounds} alternating rounds; in-process: {events} events, sync subscribers, history off"
        ),
    })
}

/// The BENCHMARKS.md section.
pub(crate) fn render(r: &Result<RulesBench, String>) -> String {
    const HEADING: &str = "## Validating and routing (`cargo xtask bench --rules`)";
    let r = match r {
        Ok(r) => r,
        Err(e) => return format!("{HEADING}\n\nThe rules bench FAILED: {e}\n"),
    };
    let mark = |ok: bool| if ok { "met" } else { "MISS" };
    let m = |v: f64| format!("{:.2} M", v / 1e6);
    let ratio = r.validated / r.plain;
    let beside = r.beside / r.patterns_only;
    format!(
        "{HEADING}\n\n{}. Release build; the daemon as a process on loopback (in-memory log, \
         logging and relay off), the load from `bus-daemon/examples/ingest_load.rs` (every \
         accepted event counted back from `/stats`), the in-process figures from \
         `bus-cel/examples/condition_rate.rs` (condition `data.tool_name in [\"Edit\", \"Write\"]`, \
         every event counted by the handler).\n\n\
         | measurement | result | target | |\n|---|---|---|---|\n\
         | NDJSON ingest of the hook payload, no schemas | {} events/s | | |\n\
         | the same, with a 10-property schema (`reject`) | {} events/s ({ratio:.2}x) | >= 0.7x | {} |\n\
         | a subscriber with a CEL condition on `data.tool_name`, matched in-process | {} events/s | >= 2 M | {} |\n\
         | a patterns-only subscriber, alone | {} events/s | | |\n\
         | the same, beside 4 conditional subscribers on other patterns | {} events/s ({beside:.2}x) | pays nothing | {} |\n",
        r.settings,
        m(r.plain),
        m(r.validated),
        mark(ratio >= 0.7),
        m(r.matched),
        mark(r.matched >= 2e6),
        m(r.patterns_only),
        m(r.beside),
        // Run-to-run noise on this shared machine is a few percent.
        mark(beside >= 0.95),
    )
}
