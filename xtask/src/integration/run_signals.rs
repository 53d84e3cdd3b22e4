//! `cargo xtask run` as a supervisor or a terminal stops it: SIGTERM, then (in a second run)
//! SIGINT, sent to the pid of `cargo xtask run` itself. Each time the daemon must have drained
//! and exited, and xtask must have exited 0 after it, leaving no daemon behind.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::Env;
use super::peers::{PATIENCE, free_port, wait_for};
use crate::paths::DAEMON_BIN;
use crate::proc::Guarded;
use crate::workspace_root;

/// Both signals, one `cargo xtask run` each.
pub(crate) fn check(env: &Env) -> Result<String, String> {
    let mut held = Vec::new();
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        held.push(stop_with(env, signal)?);
    }
    Ok(held.join("; "))
}

fn stop_with(env: &Env, signal: Signal) -> Result<String, String> {
    let addr = format!("127.0.0.1:{}", free_port()?);
    let log_path = env.work.join(format!("xtask-run-{signal}.log"));
    let mut log = std::fs::File::create(&log_path)
        .map_err(|e| format!("creating {}: {e}", log_path.display()))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // The dev profile: the integration run has just built it, so nothing is compiled here.
    command
        .args(["xtask", "run", "--dev"])
        .current_dir(workspace_root())
        .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", &addr)
        .env("CLAUDE_MPM_RELAY_ENABLED", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut xtask = Guarded::spawn("cargo xtask run", command)?;
    let stderr = xtask.child_mut().stderr.take().expect("stderr is piped");
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let mut read_lines = |until: &dyn Fn(&str) -> bool| -> Result<String, String> {
        loop {
            let line = lines.recv_timeout(PATIENCE).map_err(|_| {
                format!(
                    "cargo xtask run printed nothing for {PATIENCE:?} (log: {})",
                    log_path.display()
                )
            })?;
            let _ = writeln!(log, "{line}");
            seen.push(line.clone());
            if until(&line) {
                return Ok(line);
            }
        }
    };
    // `xtask: started /path/to/target/debug/eventbus (pid N)`
    let started = read_lines(&|line| daemon_pid(line).is_some())?;
    let daemon = daemon_pid(&started).expect("matched above");
    wait_for(&format!("the daemon on {addr}"), || {
        TcpStream::connect(&addr).ok().map(|_| ())
    })?;
    xtask.signal(signal)?;
    let code = xtask.wait_exit(PATIENCE);
    // Whatever xtask printed after the signal.
    while let Ok(line) = lines.recv_timeout(Duration::from_secs(2)) {
        let _ = writeln!(log, "{line}");
        seen.push(line);
    }
    let left = Path::new(&format!("/proc/{daemon}")).exists();
    if left {
        // Never leave it behind, even when the check fails.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(daemon as i32), Signal::SIGKILL);
    }
    let code = code?;
    if left {
        return Err(format!(
            "after {signal}, cargo xtask run exited ({code:?}) but the daemon (pid {daemon}) was still running; see {}",
            log_path.display()
        ));
    }
    if code != Some(0) {
        return Err(format!(
            "cargo xtask run exited with {code:?} after {signal}, expected 0; see {}",
            log_path.display()
        ));
    }
    if !seen.iter().any(|l| l.starts_with("eventbus: shut down")) {
        return Err(format!(
            "the daemon did not report its shutdown after {signal}; see {}",
            log_path.display()
        ));
    }
    if TcpStream::connect(&addr).is_ok() {
        return Err(format!(
            "something still listens on {addr} after the daemon stopped"
        ));
    }
    Ok(format!(
        "{signal} to cargo xtask run: the daemon (pid {daemon}) drained and exited, xtask exited 0, nothing left on {addr}"
    ))
}

/// The pid in xtask's `started .../eventbus (pid N)` line.
fn daemon_pid(line: &str) -> Option<u32> {
    let rest = line.strip_prefix("xtask: started ")?;
    let (path, pid) = rest.rsplit_once(" (pid ")?;
    if !path.ends_with(&format!("/{DAEMON_BIN}")) {
        return None;
    }
    pid.strip_suffix(')')?.parse().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_daemon_pid_in_xtasks_line() {
        use super::daemon_pid;
        assert_eq!(
            daemon_pid("xtask: started /tmp/t/debug/eventbus (pid 42)"),
            Some(42)
        );
        assert_eq!(
            daemon_pid("xtask: started cargo build -p bus-config --bin eventbus (pid 41)"),
            None
        );
        assert_eq!(daemon_pid("eventbus: listening"), None);
    }
}
