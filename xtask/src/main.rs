//! Project automation, in plain Rust: `cargo xtask <command>`.
//!
//! - `run`: installs what a fresh machine lacks, then runs the `eventbus` daemon (release
//!   build) on its defaults; arguments go to `eventbus`.
//! - `ci`: everything a contributor runs before pushing: fmt, clippy, the workspace tests
//!   (doc tests included) and `integration`.
//! - `integration`: the whole system against real peers (a python-socketio server, the
//!   `eventbus` daemon as a process), with fault injection.
//! - `bench`: the bus-core benchmarks beside pyee, blinker and Node's emitters; writes
//!   BENCHMARKS.md.

mod bench;
mod ci;
mod integration;
mod proc;
mod setup;
mod venv;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What a task returns: `Err` carries the message printed before exiting non-zero.
pub(crate) type TaskResult = Result<(), String>;

const USAGE: &str = "usage: cargo xtask <run|ci|integration|bench> [options]

  run           install missing system packages, then run the eventbus daemon
                (release build; arguments after `--` go to eventbus)
  ci            fmt --check, clippy -D warnings, cargo test --workspace, then integration
  integration   end-to-end run against a real python-socketio server and the eventbus daemon
                (an argument runs only the checks whose name contains it)
  bench         criterion benchmarks and peers (pyee, blinker, Node); writes BENCHMARKS.md
                (--quick: shorter runs)";

fn main() -> ExitCode {
    proc::install_interrupt_cleanup();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run_daemon(&args[1..]),
        Some("ci") => ci::run(),
        Some("integration") => integration::run(args.get(1).map(String::as_str)),
        Some("bench") => bench::run(&args[1..]),
        Some("help" | "--help" | "-h") => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!(
            "unknown command {}\n{USAGE}",
            other.map_or("(none)".into(), |o| format!("{o:?}"))
        )),
    };
    proc::kill_all();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask run`: the daemon on its embedded defaults (or the environment's settings).
fn run_daemon(args: &[String]) -> TaskResult {
    setup::ensure_system_packages(false)?;
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--")
        .collect();
    let mut cargo_args = vec![
        "run",
        "--release",
        "--quiet",
        "-p",
        "bus-daemon",
        "--bin",
        "eventbus",
    ];
    if !args.is_empty() {
        cargo_args.push("--");
        cargo_args.extend(args);
    }
    cargo(&cargo_args)
}

/// The workspace root (the parent of this crate's directory).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}

/// Runs `cargo` with `args` in the workspace root, streaming its output.
pub(crate) fn cargo(args: &[&str]) -> TaskResult {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}
