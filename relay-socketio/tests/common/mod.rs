//! A real in-process Socket.IO server (socketioxide on axum) for the relay's tests, on an
//! ephemeral 127.0.0.1 port, with its own thread and runtime so that stopping it drops every
//! connection at once, like a killed process.

#![allow(dead_code)]

pub mod python;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::get;
use serde_json::Value;
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};
use tokio::sync::oneshot;

/// Generous limit for anything a test waits for, on a loaded machine.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Everything the server received, over restarts.
#[derive(Default)]
pub struct Recorder {
    received: Mutex<Vec<Value>>,
}

impl Recorder {
    pub fn payloads(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    pub fn len(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// The `event_id` of every payload received, in arrival order (duplicates included).
    pub fn ids(&self) -> Vec<u64> {
        event_ids(&self.payloads())
    }

    fn record(&self, payload: Value) -> usize {
        let mut received = self.received.lock().unwrap();
        received.push(payload);
        received.len()
    }
}

pub fn event_ids(payloads: &[Value]) -> Vec<u64> {
    payloads
        .iter()
        .map(|p| {
            p["event_id"]
                .as_u64()
                .expect("every payload has an event_id")
        })
        .collect()
}

/// Checks at-least-once delivery of `expected` ids: all there, first arrivals in order.
pub fn assert_all_arrived_in_order(ids: &[u64], expected: &[u64]) {
    let mut seen = HashSet::new();
    let firsts: Vec<u64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    let missing: Vec<u64> = expected
        .iter()
        .copied()
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} events never arrived, first ones: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(firsts, expected, "first arrivals are not in publish order");
}

/// How the server treats `claude_event`.
#[derive(Default)]
pub struct Behaviour {
    /// Answer the client's acknowledgement requests.
    pub ack: AtomicBool,
    /// When non-zero: disconnect the client once this many events were received in total.
    pub disconnect_at: AtomicU64,
    /// How many times the server disconnected a client.
    pub disconnects: AtomicU64,
    /// Clients that completed the namespace connection.
    pub connections: AtomicU64,
    /// Clients connected now, on this server instance.
    pub live: AtomicU64,
    /// The most clients ever connected at the same time.
    pub max_live: AtomicU64,
}

impl Behaviour {
    pub fn acking() -> Arc<Self> {
        let b = Behaviour::default();
        b.ack.store(true, Ordering::SeqCst);
        Arc::new(b)
    }
}

/// A running server; dropping or [`stop`](TestServer::stop)ping it closes every connection.
pub struct TestServer {
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    /// Starts on `port` (0: an ephemeral one); listening when this returns.
    pub fn start(port: u16, recorder: Arc<Recorder>, behaviour: Arc<Behaviour>) -> TestServer {
        let listener = bind_with_retry(port);
        // A new instance has no clients yet; those of a killed one are gone.
        behaviour.live.store(0, Ordering::SeqCst);
        let port = listener.local_addr().unwrap().port();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            // Current-thread: handlers run in arrival order, as in python-socketio.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(listener, recorder, behaviour, stop_rx));
            // Dropping the runtime drops every connection task: the clients see the
            // connection die without a goodbye.
            drop(runtime);
        });
        TestServer {
            port,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server abruptly and waits until its port is closed.
    pub fn stop(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shut();
    }
}

fn bind_with_retry(port: u16) -> std::net::TcpListener {
    let started = Instant::now();
    loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => {
                listener.set_nonblocking(true).unwrap();
                return listener;
            }
            Err(e) if started.elapsed() < PATIENCE => {
                eprintln!("rebinding port {port}: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("cannot bind 127.0.0.1:{port}: {e}"),
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    recorder: Arc<Recorder>,
    behaviour: Arc<Behaviour>,
    stop: oneshot::Receiver<()>,
) {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", move |socket: SocketRef| {
        let (recorder, behaviour) = (recorder.clone(), behaviour.clone());
        async move {
            behaviour.connections.fetch_add(1, Ordering::SeqCst);
            let live = behaviour.live.fetch_add(1, Ordering::SeqCst) + 1;
            behaviour.max_live.fetch_max(live, Ordering::SeqCst);
            let gone = behaviour.clone();
            socket.on_disconnect(move || {
                let gone = gone.clone();
                async move {
                    let _ = gone
                        .live
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                }
            });
            socket.on(
                "claude_event",
                move |socket: SocketRef, Data::<Value>(payload), ack: AckSender| {
                    let (recorder, behaviour) = (recorder.clone(), behaviour.clone());
                    async move {
                        let count = recorder.record(payload) as u64;
                        let disconnect_at = behaviour.disconnect_at.load(Ordering::SeqCst);
                        if disconnect_at != 0 && count >= disconnect_at {
                            behaviour.disconnect_at.store(0, Ordering::SeqCst);
                            behaviour.disconnects.fetch_add(1, Ordering::SeqCst);
                            let _ = socket.disconnect();
                            return;
                        }
                        if behaviour.ack.load(Ordering::SeqCst) {
                            let _ = ack.send("ok");
                        }
                    }
                },
            );
        }
    });
    let app = axum::Router::new()
        .route("/", get(|| async { "relay-socketio test server" }))
        .layer(layer);
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    tokio::select! {
        result = axum::serve(listener, app) => result.unwrap(),
        _ = stop => {}
    }
}

/// Polls `condition` until it holds or [`PATIENCE`] runs out; returns whether it held.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition()
}

/// A relay configuration for tests: quick retries, short timeouts.
pub fn test_config(url: &str) -> relay_socketio::RelayConfig {
    relay_socketio::RelayConfig {
        url: url.to_owned(),
        retry_delay: Duration::from_millis(50),
        max_retries: 3,
        connection_cooldown: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(5),
        ack_timeout: Duration::from_secs(2),
        ..relay_socketio::RelayConfig::default()
    }
}

/// A port that is free now (for a server that will start later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
