//! Runs `tools/dashboard_server.py`, a python-socketio 5.x server like the dashboard's, as
//! a child process that can be killed (SIGKILL) or stopped (SIGTERM).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::PATIENCE;

const SETUP_HINT: &str = "create the virtualenv with `python3 -m venv target/xtask-venv && \
     target/xtask-venv/bin/pip install -r tools/requirements.txt` and set \
     EVENTBUS_PYTHON=$PWD/target/xtask-venv/bin/python (`cargo xtask integration` does both, \
     in cargo's target directory: target/ unless CARGO_TARGET_DIR or build.target-dir says \
     otherwise)";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The interpreter named by `EVENTBUS_PYTHON`, checked to have python-socketio 5.x and
/// aiohttp. Panics with instructions otherwise: these tests never skip silently.
pub fn interpreter() -> PathBuf {
    let Some(raw) = std::env::var_os("EVENTBUS_PYTHON") else {
        panic!("EVENTBUS_PYTHON is not set: this test needs python-socketio 5.x; {SETUP_HINT}");
    };
    let mut python = PathBuf::from(&raw);
    // Tests run in the crate's directory; a relative path is meant from the workspace root.
    if python.is_relative() && !python.exists() && workspace_root().join(&python).exists() {
        python = workspace_root().join(&python);
    }
    let check = "import importlib.metadata as m, socketio, aiohttp\n\
                 v = m.version('python-socketio')\n\
                 assert v.startswith('5.'), 'python-socketio ' + v + ' is not 5.x'\n\
                 print(v)";
    let output = Command::new(&python)
        .args(["-c", check])
        .output()
        .unwrap_or_else(|e| panic!("EVENTBUS_PYTHON={raw:?} cannot be run ({e}); {SETUP_HINT}"));
    assert!(
        output.status.success(),
        "EVENTBUS_PYTHON={raw:?} lacks python-socketio 5.x or aiohttp:\n{}\n{SETUP_HINT}",
        String::from_utf8_lossy(&output.stderr)
    );
    python
}

/// A running `dashboard_server.py`.
pub struct PythonServer {
    child: Child,
    pub port: u16,
    log: PathBuf,
}

impl PythonServer {
    /// Starts the server on `port` (0: any free port), recording to `record` (if given);
    /// returns once it listens. Its stderr goes to `log`.
    pub fn start(python: &Path, port: u16, record: Option<&Path>, log: &Path) -> PythonServer {
        let script = workspace_root().join("tools/dashboard_server.py");
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut command = Command::new(python);
        command
            .arg(&script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(record) = record {
            command.arg("--record").arg(record);
        }
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", script.display()));
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line.strip_prefix("LISTENING ") {
                    let _ = tx.send(port.trim().parse::<u16>().ok());
                }
            }
        });
        let mut server = PythonServer {
            child,
            port: 0,
            log: log.to_owned(),
        };
        match rx.recv_timeout(PATIENCE) {
            Ok(Some(port)) => server.port = port,
            _ => {
                server.kill();
                panic!(
                    "dashboard_server.py did not start listening; its log:\n{}",
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                );
            }
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: the process dies at once, its connections with it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: aiohttp's graceful shutdown, which keeps open connections for a while.
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("the `kill` command is available");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `limit` for the process to end; true if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The payloads recorded so far (a partly written last line is left for later).
pub fn read_record(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| serde_json::from_str(line).expect("the record holds JSON lines"))
        .collect()
}
