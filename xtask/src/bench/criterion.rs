//! Our numbers: bus-core's criterion benchmarks (`benches/dispatch.rs`), read back from the
//! JSON files criterion writes, not from its console output.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::workspace_root;

/// The criterion benchmarks of the `dispatch` group, in report order.
pub(crate) const BENCHES: [&str; 9] = [
    "exact-1",
    "exact-10",
    "wild-100",
    "async-1",
    "fanout-10",
    "threads-2",
    "exact-1+10k",
    "exact-1-per-thread-ids",
    "threads-2-per-thread-ids",
];

/// Runs the benchmarks and returns events per second by benchmark name (from the median
/// time per iteration and the elements each iteration publishes).
pub(crate) fn run(quick: bool) -> Result<BTreeMap<String, f64>, String> {
    // A directory of our own: others may run `cargo bench` on the shared target meanwhile.
    let home = crate::paths::in_target("xtask-bench")?.join("criterion");
    if home.exists() {
        std::fs::remove_dir_all(&home)
            .map_err(|e| format!("clearing old results in {}: {e}", home.display()))?;
    }
    let mut args = vec!["bench", "-p", "bus-core", "--bench", "dispatch", "--"];
    if quick {
        args.extend([
            "--warm-up-time",
            "0.3",
            "--measurement-time",
            "1",
            "--sample-size",
            "10",
        ]);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(&args)
        .env("CRITERION_HOME", &home)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!("`cargo {}` failed ({status})", args.join(" ")));
    }
    BENCHES
        .iter()
        .map(|name| Ok((name.to_string(), rate(&home.join("dispatch").join(name))?)))
        .collect()
}

/// Events per second of one benchmark's latest run.
pub(crate) fn rate(dir: &Path) -> Result<f64, String> {
    let estimates = read_json(&dir.join("new/estimates.json"))?;
    let benchmark = read_json(&dir.join("new/benchmark.json"))?;
    let median_ns = estimates["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("no median in {}/new/estimates.json", dir.display()))?;
    let elements = benchmark["throughput"]["Elements"]
        .as_f64()
        .ok_or_else(|| format!("no Elements throughput in {}", dir.display()))?;
    Ok(elements / (median_ns / 1e9))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))
}
