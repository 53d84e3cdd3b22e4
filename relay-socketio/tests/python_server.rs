//! The relay against a real python-socketio 5.x server like the claude-mpm dashboard's
//! (`tools/dashboard_server.py`), killed with SIGKILL and stopped with SIGTERM mid-stream.
//!
//! Needs `EVENTBUS_PYTHON` (see `common::python`); run by `cargo xtask integration`, or:
//!
//! ```text
//! python3 -m venv target/xtask-venv
//! target/xtask-venv/bin/pip install -r tools/requirements.txt
//! EVENTBUS_PYTHON=$PWD/target/xtask-venv/bin/python \
//!     cargo test -p relay-socketio --test python_server -- --ignored
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus_core::EventBus;
use common::python::{PythonServer, interpreter, read_record};
use common::{assert_all_arrived_in_order, event_ids, eventually, free_port, test_config};
use relay_socketio::{RelayConfig, SocketIoRelay};
use serde_json::json;

struct Setup {
    python: PathBuf,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        Setup {
            python: interpreter(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn record(&self) -> PathBuf {
        self.dir.path().join("received.jsonl")
    }

    fn server(&self, port: u16) -> PythonServer {
        let log = self.dir.path().join("server.log");
        PythonServer::start(&self.python, port, Some(&self.record()), &log)
    }

    fn ids(&self) -> Vec<u64> {
        event_ids(&read_record(&self.record()))
    }
}

fn attached(config: RelayConfig) -> (EventBus, Arc<SocketIoRelay>) {
    let bus = EventBus::new();
    let relay = Arc::new(SocketIoRelay::new(config).unwrap());
    relay.attach(&bus).unwrap();
    (bus, relay)
}

/// Publishes `1..=total` in small bursts, as a busy session would.
fn spawn_publisher(bus: &EventBus, total: u64) -> tokio::task::JoinHandle<()> {
    let bus = bus.clone();
    tokio::spawn(async move {
        for n in 1..=total {
            bus.publish("hook.pre_tool", json!({ "n": n }));
            if n % 50 == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
}

fn wait_for_record(path: &Path, at_least: usize) -> bool {
    let started = Instant::now();
    while started.elapsed() < common::PATIENCE {
        if read_record(path).len() >= at_least {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn wait_until_bindable(port: u16) -> bool {
    let started = Instant::now();
    while started.elapsed() < common::PATIENCE {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the python-socketio virtualenv; run by cargo xtask integration"]
async fn the_python_dashboard_receives_every_event_in_order_in_the_original_format() {
    let setup = Setup::new();
    let server = setup.server(0);
    let (bus, relay) = attached(test_config(&server.url()));
    for n in 1..=5_000u64 {
        bus.publish(
            "hook.pre_tool",
            json!({ "n": n, "timestamp": "2025-01-01T00:00:00Z" }),
        );
    }
    bus.publish("hook.user_prompt", json!(["not", "an", "object"]));
    assert!(
        eventually(|| relay.stats().relayed == 5_001).await,
        "{:?}",
        relay.stats()
    );
    let payloads = read_record(&setup.record());
    assert_eq!(event_ids(&payloads), (1..=5_001).collect::<Vec<_>>());
    assert_eq!(
        payloads[41],
        json!({
            "event": "claude_event", "type": "hook", "subtype": "pre_tool",
            "timestamp": "2025-01-01T00:00:00Z",
            "data": { "n": 42, "timestamp": "2025-01-01T00:00:00Z" },
            "source": "event_bus", "event_id": 42
        })
    );
    assert_eq!(payloads[5_000]["data"], json!(["not", "an", "object"]));
    assert_eq!(payloads[5_000]["subtype"], "user_prompt");
    let report = relay.stop(Duration::from_secs(10)).await;
    assert!(report.complete && report.undelivered == 0, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the python-socketio virtualenv; run by cargo xtask integration"]
async fn events_wait_for_a_python_server_started_later() {
    let setup = Setup::new();
    let port = free_port();
    let (bus, relay) = attached(test_config(&format!("http://127.0.0.1:{port}")));
    for n in 1..=300u64 {
        bus.publish("hook.pre_tool", json!({ "n": n }));
    }
    assert!(eventually(|| relay.stats().connection_failures >= 2).await);
    let _server = setup.server(port);
    assert!(
        eventually(|| relay.stats().relayed == 300).await,
        "{:?}",
        relay.stats()
    );
    assert_eq!(setup.ids(), (1..=300).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the python-socketio virtualenv; run by cargo xtask integration"]
async fn no_event_is_lost_when_the_python_server_is_killed_with_sigkill() {
    let setup = Setup::new();
    let mut server = setup.server(0);
    let port = server.port;
    let (bus, relay) = attached(test_config(&server.url()));
    let total = 4_000;
    let publisher = spawn_publisher(&bus, total);

    let record = setup.record();
    assert!(tokio::task::block_in_place(|| wait_for_record(
        &record, 800
    )));
    server.kill();
    let at_kill = setup.ids().len();
    assert!(eventually(|| !relay.stats().connected).await);
    let _server = setup.server(port);
    publisher.await.unwrap();
    assert!(
        eventually(|| relay.stats().relayed == total).await,
        "{:?}",
        relay.stats()
    );
    assert!(at_kill < total as usize, "the server died mid-stream");
    let ids = setup.ids();
    assert_all_arrived_in_order(&ids, &(1..=total).collect::<Vec<_>>());
    let stats = relay.stats();
    assert!(ids.len() as u64 - total <= stats.resent, "{stats:?}");
    assert_eq!(stats.dropped, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the python-socketio virtualenv; run by cargo xtask integration"]
async fn no_event_is_lost_when_the_python_server_is_stopped_with_sigterm() {
    let setup = Setup::new();
    let mut server = setup.server(0);
    let port = server.port;
    let ack_timeout = Duration::from_secs(2);
    let (bus, relay) = attached(RelayConfig {
        ack_timeout,
        ..test_config(&server.url())
    });
    let total = 4_000;
    let publisher = spawn_publisher(&bus, total);

    let record = setup.record();
    assert!(tokio::task::block_in_place(|| wait_for_record(
        &record, 800
    )));
    let failures_before = relay.stats().connection_failures;
    server.terminate();
    let terminated = Instant::now();
    // A graceful shutdown may keep the TCP connection open while answering nothing: the
    // relay must notice within the ack timeout, not when the server finally lets go.
    assert!(eventually(|| relay.stats().connection_failures > failures_before).await);
    let noticed = terminated.elapsed();
    assert!(
        noticed < ack_timeout + Duration::from_secs(3),
        "noticed after {noticed:?}"
    );
    // aiohttp closes its listening socket first and lingers on open connections; the new
    // server can take the port once the listener is gone.
    assert!(tokio::task::block_in_place(|| wait_until_bindable(port)));
    let _server = setup.server(port);
    publisher.await.unwrap();
    assert!(
        eventually(|| relay.stats().relayed == total).await,
        "{:?}",
        relay.stats()
    );
    let ids = setup.ids();
    assert_all_arrived_in_order(&ids, &(1..=total).collect::<Vec<_>>());
    assert!(ids.len() as u64 - total <= relay.stats().resent);
}
