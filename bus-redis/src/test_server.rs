//! [`RedisServer`]: a throwaway `redis-server` on a free loopback port, for tests (the
//! `test-server` feature). The project's setup (`cargo xtask ci`) installs `redis-server`.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server` (no RDB snapshots; AOF on with `appendfsync always`, so a
/// [`restart`](Self::restart) keeps every write; in a temporary directory), killed when
/// dropped.
pub struct RedisServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one and waits (up to 10 s) until it accepts connections.
    ///
    /// # Panics
    /// When `redis-server` is not installed (the message says how to install it), or it
    /// does not come up: a test that needs Redis must fail, never skip.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory for redis-server");
        // Bound and released to learn a free port; redis-server binds it right after.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = spawn(port, dir.path());
        let mut server = Self {
            child,
            port,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    /// Kills it (SIGKILL) if it runs, and starts it again on the same port and directory:
    /// its AOF brings back every write it answered.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(self.port, self._dir.path());
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let port = self.port;
        let server = self;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server on port {port} exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not accept connections within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills it now (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(port: u16, dir: &std::path::Path) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--daemonize", "no"])
        .args(["--appendonly", "yes", "--appendfsync", "always"])
        .arg("--dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|err| {
            panic!(
                "cannot run redis-server ({err}): install it (`apt-get install -y \
                 redis-server`; `cargo xtask ci` installs it): the Redis backend's \
                 tests need a real server"
            )
        })
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
