//! Project automation, in plain Rust: `cargo xtask <command>`.
//!
//! - `run`: installs what a fresh machine lacks, builds the `eventbus` daemon (release build,
//!   cargo's progress shown), then runs it on its defaults; arguments go to `eventbus`.
//!   SIGINT and SIGTERM are passed on to the daemon, and xtask exits with its exit code.
//! - `ci`: everything a contributor runs before pushing: fmt, clippy, the workspace tests
//!   (doc tests included) and `integration`.
//! - `integration`: the whole system against real peers (a python-socketio server, the
//!   `eventbus` daemon as a process), with fault injection.
//! - `bench`: the bus-core benchmarks beside pyee, blinker and Node's emitters; writes
//!   BENCHMARKS.md.

mod bench;
mod ci;
mod integration;
mod paths;
mod proc;
mod run;
mod setup;
mod venv;

use std::process::ExitCode;

pub(crate) use paths::workspace_root;

/// What a task returns: `Err` carries the message printed before exiting non-zero.
pub(crate) type TaskResult = Result<(), String>;

const USAGE: &str = "usage: cargo xtask <run|ci|integration|bench> [options]

  run           install missing system packages, build the eventbus daemon (release; --dev:
                the dev profile), then run it; SIGINT/SIGTERM go to the daemon and xtask
                exits with its exit code (arguments after `--` go to eventbus)
  ci            fmt --check, clippy -D warnings, every feature combination (cargo hack),
                cargo test --workspace, the queue's loom models, then integration
  integration   end-to-end run against a real python-socketio server and the eventbus daemon
                (an argument runs only the checks whose name contains it)
  bench         criterion benchmarks and peers (pyee, blinker, Node); writes BENCHMARKS.md
                (--quick: shorter runs; --store, --hook or --rules: that section alone,
                spliced into BENCHMARKS.md)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("run") {
        // `run` hands SIGINT and SIGTERM to the daemon and exits with its exit code.
        return run::run(&args[1..]);
    }
    proc::install_interrupt_cleanup();
    let result = match args.first().map(String::as_str) {
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

/// Runs `cargo` with `args` in the workspace root, streaming its output.
pub(crate) fn cargo(args: &[&str]) -> TaskResult {
    cargo_with_env(args, &[])
}

/// [`cargo`] with environment variables set for it.
pub(crate) fn cargo_with_env(args: &[&str], envs: &[(&str, &str)]) -> TaskResult {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(&cargo)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        let envs: Vec<String> = envs.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
        Err(format!(
            "`{}cargo {}` failed ({status})",
            envs.concat(),
            args.join(" ")
        ))
    }
}
