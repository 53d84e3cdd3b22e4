//! `cargo xtask run`: builds the daemon with cargo's progress shown, then runs the built
//! binary (found through cargo's target directory) as xtask's own child.
//!
//! SIGINT, SIGTERM and SIGHUP sent to xtask go to the child that runs (cargo while it builds,
//! then the daemon), and xtask waits for it and exits with its exit code: Ctrl-C or a
//! supervisor's SIGTERM stops the daemon the way it stops by itself (it drains its consumers
//! and exits 0), and never leaves it serving without xtask. `cargo xtask` is `cargo run`,
//! which replaces itself with xtask, so the pid a supervisor sees is this process.

use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitCode, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::paths::{self, DAEMON_BIN, DAEMON_PACKAGE, Profile};

/// Runs `cargo xtask run ARGS` to the end; the exit code is the daemon's.
pub(crate) fn run(args: &[String]) -> ExitCode {
    let outcome = parse_args(args).and_then(|(profile, daemon_args)| {
        let forwarder = Forwarder::start()?;
        run_daemon(&forwarder, profile, &daemon_args)
    });
    match outcome {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Splits `run`'s own options (`--dev`, before any `--`) from the daemon's arguments (the
/// rest, without the first `--`).
fn parse_args(args: &[String]) -> Result<(Profile, Vec<String>), String> {
    let mut profile = Profile::Release;
    let mut daemon_args = Vec::new();
    let mut separated = false;
    for arg in args {
        match arg.as_str() {
            "--" if !separated => separated = true,
            "--dev" if !separated => profile = Profile::Dev,
            "--release" if !separated => profile = Profile::Release,
            _ => daemon_args.push(arg.clone()),
        }
    }
    Ok((profile, daemon_args))
}

fn run_daemon(
    forwarder: &Forwarder,
    profile: Profile,
    daemon_args: &[String],
) -> Result<ExitCode, String> {
    crate::setup::ensure_system_packages(false)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build_args = vec!["build"];
    build_args.extend(profile.cargo_flags());
    build_args.extend(["-p", DAEMON_PACKAGE, "--bin", DAEMON_BIN]);
    let mut build = Command::new(&cargo);
    build.args(&build_args).current_dir(paths::workspace_root());
    let built = match forwarder.supervise(&format!("cargo {}", build_args.join(" ")), build)? {
        Supervised::Exited(status) => status,
        Supervised::NotStarted(signal) => return Ok(interrupted_before_start(signal)),
    };
    if let Some(signal) = forwarder.received() {
        eprintln!("xtask: the build was stopped by {signal}; the daemon was not started");
        return Ok(exit_code(built));
    }
    if !built.success() {
        return Err(format!("`cargo {}` failed ({built})", build_args.join(" ")));
    }
    let binary = paths::built_binary(profile, DAEMON_BIN)?;
    let mut daemon = Command::new(&binary);
    daemon.args(daemon_args);
    match forwarder.supervise(&binary.display().to_string(), daemon)? {
        Supervised::Exited(status) => {
            if !status.success() {
                eprintln!("xtask: {DAEMON_BIN} exited with {status}");
            }
            Ok(exit_code(status))
        }
        Supervised::NotStarted(signal) => Ok(interrupted_before_start(signal)),
    }
}

fn interrupted_before_start(signal: Signal) -> ExitCode {
    eprintln!("xtask: {signal} received before the daemon started; not starting it");
    ExitCode::from(128 + signal as u8)
}

/// The exit code a shell would report for a child that ended with `status`: its own code,
/// or 128 + the signal that killed it.
fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        (None, Some(signal)) => ExitCode::from(128 + u8::try_from(signal).unwrap_or(0)),
        (None, None) => ExitCode::FAILURE,
    }
}

/// How a supervised child ended.
enum Supervised {
    /// It ran and exited.
    Exited(ExitStatus),
    /// A signal had already been received, so it was not started.
    NotStarted(Signal),
}

/// Receives the forwarded signals on a thread of its own and passes each one to the current
/// child.
struct Forwarder {
    /// The running child; the signal thread sends to it under this lock, and the child is
    /// reaped under it too, so a signal never goes to a reaped (and perhaps reused) pid.
    child: Arc<Mutex<Option<Child>>>,
    /// The last signal received (0: none).
    received: Arc<AtomicI32>,
}

impl Forwarder {
    /// Installs handlers for the forwarded signals (before this returns, so none of them can
    /// kill xtask from here on) and starts the thread that passes them on. Handlers, not a
    /// blocked signal mask: a child inherits a mask, but exec resets handlers to the default,
    /// so the daemon and cargo get every signal the ordinary way.
    fn start() -> Result<Forwarder, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| format!("could not start the signal runtime: {e}"))?;
        let listen = |kind: SignalKind| {
            let _entered = runtime.enter();
            signal(kind).map_err(|e| format!("could not handle signal {kind:?}: {e}"))
        };
        let mut interrupt = listen(SignalKind::interrupt())?;
        let mut terminate = listen(SignalKind::terminate())?;
        let mut hangup = listen(SignalKind::hangup())?;
        let child: Arc<Mutex<Option<Child>>> = Arc::default();
        let received = Arc::new(AtomicI32::new(0));
        let (to_child, record) = (child.clone(), received.clone());
        std::thread::Builder::new()
            .name("signal-forwarder".into())
            .spawn(move || {
                runtime.block_on(async move {
                    loop {
                        let signal = tokio::select! {
                            _ = interrupt.recv() => Signal::SIGINT,
                            _ = terminate.recv() => Signal::SIGTERM,
                            _ = hangup.recv() => Signal::SIGHUP,
                        };
                        let running = to_child.lock().unwrap_or_else(PoisonError::into_inner);
                        record.store(signal as i32, Ordering::SeqCst);
                        if let Some(child) = running.as_ref() {
                            let _ = kill(Pid::from_raw(child.id() as i32), signal);
                        }
                    }
                })
            })
            .map_err(|e| format!("could not start the signal thread: {e}"))?;
        Ok(Forwarder { child, received })
    }

    /// The last signal received, if any.
    fn received(&self) -> Option<Signal> {
        Signal::try_from(self.received.load(Ordering::SeqCst)).ok()
    }

    /// Starts `command` (unless a signal came already), passes it the signals that arrive
    /// while it runs, and waits for it to exit.
    fn supervise(&self, name: &str, mut command: Command) -> Result<Supervised, String> {
        {
            let mut slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(signal) = self.received() {
                return Ok(Supervised::NotStarted(signal));
            }
            let child = command
                .spawn()
                .map_err(|e| format!("could not start {name}: {e}"))?;
            eprintln!("xtask: started {name} (pid {})", child.id());
            *slot = Some(child);
        }
        loop {
            {
                let mut slot = self.child.lock().unwrap_or_else(PoisonError::into_inner);
                let child = slot.as_mut().expect("the child stays until reaped here");
                match child.try_wait() {
                    Ok(Some(status)) => {
                        *slot = None;
                        return Ok(Supervised::Exited(status));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("waiting for {name}: {e}")),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn release_by_default_and_everything_else_goes_to_the_daemon() {
        let (profile, rest) = parse_args(&strings(&["--", "config"])).unwrap();
        assert_eq!(profile, Profile::Release);
        assert_eq!(rest, ["config"]);
        let (profile, rest) = parse_args(&strings(&["--dev", "--", "publish", "--", "x"])).unwrap();
        assert_eq!(profile, Profile::Dev);
        assert_eq!(rest, ["publish", "--", "x"]);
        // After `--`, `--dev` belongs to the daemon.
        let (profile, rest) = parse_args(&strings(&["--", "--dev"])).unwrap();
        assert_eq!(profile, Profile::Release);
        assert_eq!(rest, ["--dev"]);
    }

    #[test]
    fn exit_codes_are_the_childs_or_128_plus_its_signal() {
        let exited = |code: i32| ExitStatus::from_raw(code << 8);
        assert_eq!(exit_code(exited(0)), ExitCode::SUCCESS);
        assert_eq!(exit_code(exited(2)), ExitCode::from(2));
        assert_eq!(
            exit_code(ExitStatus::from_raw(Signal::SIGKILL as i32)),
            ExitCode::from(137)
        );
    }
}
