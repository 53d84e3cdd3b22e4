//! Child processes that never outlive the xtask run: not on success, not on failure, not when
//! the run is interrupted.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Pids of live children, killed on exit or interrupt.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// On Ctrl-C or SIGTERM: kill every child, then exit non-zero.
pub(crate) fn install_interrupt_cleanup() {
    let _ = ctrlc::set_handler(|| {
        kill_all();
        eprintln!("xtask: interrupted; child processes stopped");
        std::process::exit(130);
    });
}

/// Kills every child still registered.
pub(crate) fn kill_all() {
    let pids = std::mem::take(&mut *LIVE.lock().unwrap_or_else(PoisonError::into_inner));
    for pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// A child process that is killed (SIGKILL) and reaped when dropped.
pub(crate) struct Guarded {
    child: Option<Child>,
    name: String,
}

impl Guarded {
    /// Spawns `command`, naming it `name` in messages.
    pub(crate) fn spawn(name: &str, mut command: Command) -> Result<Self, String> {
        let child = command
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("could not start {name}: {e}"))?;
        LIVE.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(child.id());
        Ok(Guarded {
            child: Some(child),
            name: name.to_owned(),
        })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The child itself, for its pipes.
    pub(crate) fn child_mut(&mut self) -> &mut Child {
        self.child
            .as_mut()
            .expect("the child is present until dropped")
    }

    /// Sends `signal` to the process.
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), String> {
        kill(Pid::from_raw(self.pid() as i32), signal)
            .map_err(|e| format!("could not send {signal} to {}: {e}", self.name))
    }

    /// Waits up to `timeout` for the process to exit; returns its exit code (None: by signal).
    pub(crate) fn wait_exit(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Option<i32>, String> {
        let start = std::time::Instant::now();
        loop {
            match self.child_mut().try_wait() {
                Ok(Some(status)) => {
                    forget(self.pid());
                    return Ok(status.code());
                }
                Ok(None) if start.elapsed() < timeout => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Ok(None) => return Err(format!("{} did not exit within {timeout:?}", self.name)),
                Err(e) => return Err(format!("waiting for {}: {e}", self.name)),
            }
        }
    }
}

fn forget(pid: u32) {
    LIVE.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|p| *p != pid);
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            forget(child.id());
        }
    }
}
