//! What priorities and rate limits cost: bus-core's `limits` criterion benchmarks, all four
//! in one run so that the ratios compare like with like (issue 13's targets: async-1 with
//! priorities configured but every event `normal` at least 0.9x async-1 without; a
//! rate-limited consumer costs the publisher nothing extra, read as at least 0.9x).

use std::collections::BTreeMap;
use std::process::Command;

use crate::workspace_root;

/// The benchmarks of the `limits` group.
const BENCHES: [&str; 4] = [
    "async-1",
    "async-1-prio",
    "publish-async",
    "publish-limited",
];

/// The target both ratios must meet.
const TARGET: f64 = 0.9;

/// Events per second by benchmark name.
pub(crate) type Rates = BTreeMap<String, f64>;

/// Runs `cargo bench -p bus-core --bench limits` into a criterion home of our own.
pub(crate) fn run(quick: bool) -> Result<Rates, String> {
    let home = crate::paths::in_target("xtask-bench")?.join("criterion-limits");
    if home.exists() {
        std::fs::remove_dir_all(&home)
            .map_err(|e| format!("clearing old results in {}: {e}", home.display()))?;
    }
    let mut args = vec!["bench", "-p", "bus-core", "--bench", "limits", "--"];
    if quick {
        args.extend(["--warm-up-time", "0.3", "--measurement-time", "1"]);
        args.extend(["--sample-size", "10"]);
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
        .map(|name| {
            let dir = home.join("limits").join(name);
            Ok((name.to_string(), super::criterion::rate(&dir)?))
        })
        .collect()
}

/// The two ratios: (priorities configured / not, limited consumer's publisher / unlimited).
pub(crate) fn ratios(r: &Rates) -> (f64, f64) {
    (
        r["async-1-prio"] / r["async-1"],
        r["publish-limited"] / r["publish-async"],
    )
}

/// Fails when a ratio misses its target.
pub(crate) fn check(r: &Result<Rates, String>) -> Result<(), String> {
    let r = r.as_ref().map_err(Clone::clone)?;
    let (prio, limited) = ratios(r);
    if prio < TARGET || limited < TARGET {
        return Err(format!(
            "priorities {prio:.2}x, rate-limited publisher {limited:.2}x (target >= {TARGET}x)"
        ));
    }
    Ok(())
}

/// The BENCHMARKS.md section.
pub(crate) fn render(r: &Result<Rates, String>) -> String {
    let heading = "## Priorities and rate limits";
    let r = match r {
        Ok(r) => r,
        Err(e) => return format!("{heading}\n\nThe limits bench FAILED: {e}\n"),
    };
    let (prio, limited) = ratios(r);
    let mark = |x: f64| if x >= TARGET { "met" } else { "MISS" };
    let m = |name: &str| r[name] / 1e6;
    format!(
        "{heading}\n\n\
         bus-core's `limits` criterion group (`benches/limits.rs`), the four in one run; \
         `cargo xtask bench --limits` for this part alone. Million events per second \
         (medians; load average {} when written, on the shared 2-core machine).\n\n\
         | workload | rate | ratio | target | |\n|---|---|---|---|---|\n\
         | async-1: one async consumer (`Block`), until handled | {:.2} | 1.00x | | |\n\
         | async-1-prio: the same, priority rules set, every event `normal` | {:.2} | {prio:.2}x | >= {TARGET}x | {} |\n\
         | publish-async: publisher's time alone, one async consumer | {:.2} | 1.00x | | |\n\
         | publish-limited: the same, consumer limited to `10/s drop` | {:.2} | {limited:.2}x | >= {TARGET}x | {} |\n",
        super::machine::load_average(),
        m("async-1"),
        m("async-1-prio"),
        mark(prio),
        m("publish-async"),
        m("publish-limited"),
        mark(limited),
    )
}
