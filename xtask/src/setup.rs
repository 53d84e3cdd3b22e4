//! What a fresh Debian machine needs beyond the Rust toolchain, installed when missing:
//! `pkg-config` and `libssl-dev` (rust_socketio uses openssl through native-tls), the
//! Python venv module (`python3-venv`) for the integration peers, and `cargo-hack` (every
//! feature combination is checked in CI), `redis-server` (the Redis backend's tests start
//! their own on a loopback port) and `redis-tools` (`redis-benchmark`, for `cargo xtask bench`); for the web view's browser check, headless
//! Chromium and its WebDriver (`chromium`, `chromium-driver`).

use std::process::{Command, Stdio};

use crate::TaskResult;

/// Installs the missing system packages with apt-get (as root, or through sudo); without a
/// way to install them, fails with the command to run.
pub(crate) fn ensure_system_packages(need_python: bool) -> TaskResult {
    let mut missing = Vec::new();
    if !succeeds("pkg-config", &["--version"]) {
        missing.push("pkg-config");
    }
    if !succeeds("pkg-config", &["--exists", "openssl"]) {
        missing.push("libssl-dev");
    }
    if !succeeds("redis-server", &["--version"]) {
        missing.push("redis-server");
    }
    // `cargo xtask bench` compares the daemon's Redis ingest with Redis's own XADD rate.
    if !succeeds("redis-benchmark", &["--version"]) {
        missing.push("redis-tools");
    }
    if need_python {
        if !succeeds("python3", &["--version"]) {
            missing.push("python3");
        }
        if !succeeds("python3", &["-c", "import venv, ensurepip"]) {
            missing.push("python3-venv");
        }
    }
    install(&missing)
}

/// Installs Debian's `chromium` and `chromium-driver` when `chromium` or `chromedriver` does
/// not run: the browser the web view's integration check drives.
pub(crate) fn ensure_browser() -> TaskResult {
    let mut missing = Vec::new();
    if !succeeds("chromium", &["--version"]) {
        missing.push("chromium");
    }
    if !succeeds("chromedriver", &["--version"]) {
        missing.push("chromium-driver");
    }
    install(&missing)
}

/// Installs `missing` with apt-get, as root or through `sudo -n`; nothing to do when empty.
fn install(missing: &[&str]) -> TaskResult {
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!("apt-get install -y {}", missing.join(" "));
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let prefix: &[&str] = if root {
        &[]
    } else if succeeds("sudo", &["-n", "true"]) {
        &["sudo", "-n"]
    } else {
        return Err(format!(
            "missing system packages: {}. Install them (Debian/Ubuntu: `sudo {install}`) and run again",
            missing.join(", ")
        ));
    };
    eprintln!(
        "xtask: installing missing system packages: {}",
        missing.join(" ")
    );
    let apt = |args: &[&str]| -> bool {
        let (program, rest) = match prefix.split_first() {
            Some((sudo, flags)) => (*sudo, [flags, &["apt-get"][..], args].concat()),
            None => ("apt-get", args.to_vec()),
        };
        Command::new(program)
            .args(rest)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install_args: Vec<&str> = ["install", "-y", "-qq"]
        .into_iter()
        .chain(missing.iter().copied())
        .collect();
    // A fresh machine may have empty package lists: update once if the first try fails.
    let installed = apt(&install_args) || (apt(&["update", "-qq"]) && apt(&install_args));
    if installed {
        Ok(())
    } else {
        Err(format!(
            "`{install}` failed; install the packages by hand and run again"
        ))
    }
}

/// Installs `cargo-hack` with `cargo install cargo-hack --locked` unless `cargo hack` runs.
pub(crate) fn ensure_cargo_hack() -> TaskResult {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    if succeeds(&cargo, &["hack", "--version"]) {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-hack (cargo install cargo-hack --locked)");
    let status = Command::new(&cargo)
        .args(["install", "cargo-hack", "--locked"])
        .status()
        .map_err(|e| format!("could not run {cargo} install: {e}"))?;
    if status.success() && succeeds(&cargo, &["hack", "--version"]) {
        Ok(())
    } else {
        Err(format!(
            "`cargo install cargo-hack --locked` failed ({status}); install it by hand and run again"
        ))
    }
}

fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
