//! Measures how fast events reach a Socket.IO server: plain emits with a bare rust_socketio
//! client (what the server can receive), the relay (checkpoint acknowledgements), and one
//! acknowledged emit at a time (stop-and-wait), for comparison.
//!
//! ```text
//! # against tools/dashboard_server.py (python-socketio 5.x on aiohttp), started here:
//! EVENTBUS_PYTHON=$PWD/target/xtask-venv/bin/python \
//!     cargo run --release -p relay-socketio --example throughput -- --server python
//! # against the in-process socketioxide server, or a server already running:
//! cargo run --release -p relay-socketio --example throughput -- --server socketioxide
//! cargo run --release -p relay-socketio --example throughput -- --server http://localhost:8765
//! ```
//!
//! Options: `--events N` (default 20,000), `--acked N` events for stop-and-wait (default
//! 2,000). Prints one line per measurement.

#![allow(clippy::print_stdout)] // a benchmark program: its output is the point

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bus_core::{Event, EventBus};
use futures_util::FutureExt;
use relay_socketio::{RelayConfig, SocketIoRelay, wire_payload};
use rust_socketio::Payload;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use serde_json::json;
use tokio::sync::mpsc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Options {
    server: String,
    events: u64,
    acked: u64,
}

fn options() -> Result<Options, BoxError> {
    let mut options = Options {
        server: if std::env::var_os("EVENTBUS_PYTHON").is_some() {
            "python".into()
        } else {
            "socketioxide".into()
        },
        events: 20_000,
        acked: 2_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--server" => options.server = value()?,
            "--events" => options.events = value()?.parse()?,
            "--acked" => options.acked = value()?.parse()?,
            // `cargo bench`-style harness flags are accepted and ignored.
            "--bench" => {}
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    Ok(options)
}

fn payload(n: u64) -> Payload {
    let event = Event::new(n, "hook.pre_tool", json!({ "n": n, "tool_name": "Read" }));
    Payload::Text(vec![wire_payload(&event, "claude_event")])
}

async fn connect(url: &str) -> Result<Client, BoxError> {
    let (open_tx, mut open_rx) = mpsc::unbounded_channel();
    let client = ClientBuilder::new(url)
        .reconnect(false)
        .on("open", move |_, _| {
            let _ = open_tx.send(());
            async {}.boxed()
        })
        .connect()
        .await?;
    tokio::time::timeout(Duration::from_secs(10), open_rx.recv())
        .await?
        .ok_or("no open event")?;
    Ok(client)
}

async fn emit_acked(client: &Client, n: u64) -> Result<(), BoxError> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    client
        .emit_with_ack(
            "claude_event",
            payload(n),
            Duration::from_secs(30),
            move |_, _| {
                let _ = tx.send(());
                async {}.boxed()
            },
        )
        .await?;
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await?
        .ok_or("no ack")?;
    Ok(())
}

/// Plain emits, then one acknowledged emit: when its ack is back, the server has received
/// (handled, in order) everything before it.
async fn plain_emits(url: &str, events: u64) -> Result<f64, BoxError> {
    let client = connect(url).await?;
    let started = Instant::now();
    for n in 1..events {
        client.emit("claude_event", payload(n)).await?;
    }
    emit_acked(&client, events).await?;
    let rate = events as f64 / started.elapsed().as_secs_f64();
    client.disconnect().await?;
    Ok(rate)
}

async fn stop_and_wait(url: &str, events: u64) -> Result<f64, BoxError> {
    let client = connect(url).await?;
    let started = Instant::now();
    for n in 1..=events {
        emit_acked(&client, n).await?;
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    client.disconnect().await?;
    Ok(rate)
}

async fn relay(url: &str, events: u64) -> Result<(f64, relay_socketio::RelayStats), BoxError> {
    let capacity = usize::try_from(events)?.max(10_000);
    let bus = EventBus::builder().queue_capacity(capacity).build()?;
    let relay = Arc::new(SocketIoRelay::new(RelayConfig {
        url: url.to_owned(),
        buffer_capacity: capacity,
        ..RelayConfig::default()
    })?);
    relay.attach(&bus)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !relay.stats().connected {
        if Instant::now() > deadline {
            return Err("the relay did not connect".into());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    for n in 1..=events {
        bus.publish("hook.pre_tool", json!({ "n": n, "tool_name": "Read" }));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    while relay.stats().relayed < events {
        if Instant::now() > deadline {
            return Err(format!("relay stalled: {:?}", relay.stats()).into());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = events as f64 / started.elapsed().as_secs_f64();
    relay.stop(Duration::from_secs(5)).await;
    Ok((rate, relay.stats()))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let options = options()?;
    let dir = tempfile::tempdir()?;
    let _python;
    let _socketioxide;
    let (url, label) = match options.server.as_str() {
        "python" => {
            let python = common::python::interpreter();
            let server = common::python::PythonServer::start(
                &python,
                0,
                None,
                &dir.path().join("server.log"),
            );
            let url = server.url();
            _python = server;
            (url, "python-socketio (tools/dashboard_server.py)")
        }
        "socketioxide" => {
            let recorder = Arc::new(common::Recorder::default());
            let server = common::TestServer::start(0, recorder, common::Behaviour::acking());
            let url = server.url();
            _socketioxide = server;
            (url, "socketioxide (in-process)")
        }
        url => (url.to_owned(), "the given server"),
    };
    println!("server: {label} at {url}");
    let plain = plain_emits(&url, options.events).await?;
    println!(
        "plain emits (bare client)  : {plain:>8.0} events/s ({} events)",
        options.events
    );
    let (relayed, stats) = relay(&url, options.events).await?;
    println!(
        "relay (checkpoint acks)    : {relayed:>8.0} events/s ({} events, {} resent, {} ack timeouts)",
        options.events, stats.resent, stats.ack_timeouts
    );
    let acked = stop_and_wait(&url, options.acked).await?;
    println!(
        "one ack per event          : {acked:>8.0} events/s ({} events)",
        options.acked
    );
    Ok(())
}
