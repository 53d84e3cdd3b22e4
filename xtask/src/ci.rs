//! `cargo xtask ci`: the one command a contributor (and CI) runs.

use std::time::Instant;

use crate::{TaskResult, cargo};

/// fmt, clippy, the API docs without a warning, every feature combination of every crate,
/// the workspace tests (doc tests included), the queue's loom models, then the integration
/// run.
pub(crate) fn run() -> TaskResult {
    let started = Instant::now();
    timed("set-up", || {
        crate::setup::ensure_system_packages(true)?;
        crate::setup::ensure_cargo_hack()
    })?;
    timed("fmt", || cargo(&["fmt", "--all", "--", "--check"]))?;
    timed("clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    timed("doc", docs)?;
    timed("feature powerset", feature_powerset)?;
    timed("test", || cargo(&["test", "--workspace"]))?;
    timed("loom models", loom_models)?;
    timed("integration", || crate::integration::run(None))?;
    eprintln!(
        "xtask ci: all passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Runs one step and says how long it took, so that a slow CI run shows where the time went.
fn timed(step: &str, run: impl FnOnce() -> TaskResult) -> TaskResult {
    let started = Instant::now();
    let result = run();
    eprintln!(
        "xtask ci: {step} {} in {:.0} s",
        if result.is_ok() { "passed" } else { "failed" },
        started.elapsed().as_secs_f64()
    );
    result
}

/// The model tests of the queue's wake-up protocol: bus-core's `loom` feature puts its
/// queue on loom's primitives, and loom runs every interleaving of a publisher and the
/// worker (within a preemption bound). The feature swaps the queue's primitives for the whole
/// library, so only these tests run with it; a filter that matched nothing would pass
/// silently, hence the count.
fn loom_models() -> TaskResult {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "test",
        "-p",
        "bus-core",
        "--features",
        "loom",
        "--lib",
        "--",
        "queue::loom_model::",
    ];
    let output = std::process::Command::new(&cargo)
        .args(args)
        .current_dir(crate::workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprint!("{stdout}");
    if !output.status.success() {
        return Err(format!(
            "`cargo {}` failed ({})",
            args.join(" "),
            output.status
        ));
    }
    let passed = stdout
        .lines()
        .find_map(|line| line.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or(0);
    if passed == 0 {
        return Err(format!(
            "`cargo {}` ran no test: the loom models were renamed or lost",
            args.join(" ")
        ));
    }
    Ok(())
}

/// `cargo doc` of the workspace's crates with rustdoc's warnings as errors: a broken link,
/// or a public item whose docs point at a private one, leaves users a dead end.
fn docs() -> TaskResult {
    crate::cargo_with_env(
        &["doc", "--no-deps", "--workspace"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )
}

/// `cargo check` of every crate with each combination of its features (`--no-default-features`
/// and the defaults included), without dev-dependencies, so that a feature that only builds
/// because a test or another combination turns on something else is caught. Clippy and the
/// tests above build the default features only. `--keep-going` names every combination that
/// fails, not just the first. (`--no-dev-deps` takes the dev-dependencies out of the real
/// Cargo.toml files while it runs, and puts them back.)
///
/// The unpublished crates (xtask, its Rust peers, the end-to-end tests) have no features and
/// nobody depends on them: clippy above already checks them, and checking each again on its
/// own resolves their large dependency trees anew. (A cold CI's powerset took 365 s with them
/// and 336 s without; incremental compilation was also turned off in between.)
fn feature_powerset() -> TaskResult {
    let mut args = vec![
        "hack",
        "check",
        "--workspace",
        "--feature-powerset",
        "--no-dev-deps",
        "--keep-going",
    ];
    for unpublished in UNPUBLISHED {
        args.extend(["--exclude", unpublished]);
    }
    cargo(&args)
}

/// The workspace's `publish = false` crates.
const UNPUBLISHED: [&str; 3] = ["xtask", "rust-peers", "eventbus-tests"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_powerset_skips_exactly_the_unpublished_crates() {
        // A crate made unpublished (or renamed) must not be checked, or skipped, by mistake.
        let metadata = crate::paths::workspace_metadata().unwrap();
        let metadata: serde_json::Value = serde_json::from_slice(&metadata).unwrap();
        // `publish = false` is reported as an empty list of registries.
        let mut unpublished: Vec<&str> = metadata["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["publish"].as_array().is_some_and(Vec::is_empty))
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        unpublished.sort_unstable();
        let mut expected = UNPUBLISHED.to_vec();
        expected.sort_unstable();
        assert_eq!(unpublished, expected);
    }
}
