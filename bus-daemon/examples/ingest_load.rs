//! A load generator for a running `eventbus` daemon: measures ingest over loopback HTTP.
//!
//! ```text
//! cargo run --release -p bus-daemon --bin eventbus &       # the daemon, 127.0.0.1:8770
//! cargo run --release -p bus-daemon --example ingest_load -- --addr 127.0.0.1:8770
//! ```
//!
//! Two phases, each for `--seconds`: NDJSON batches of `--batch` events (`?ids=false`) over
//! `--connections` keep-alive connections, then single-event POSTs (one JSON object each,
//! ids returned) over the same number of connections. It speaks HTTP/1.1 on raw TCP so the
//! client costs as little CPU as possible, checks every answer (status 200, `accepted`), and
//! cross-checks its count against the daemon's `/stats` (`events_published`; on a Redis log
//! `store.appended`, what this daemon wrote to the shared stream).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Measures how fast a running eventbus daemon ingests events.
#[derive(Debug, Parser)]
struct Args {
    /// The daemon's address.
    #[arg(long, default_value = "127.0.0.1:8770")]
    addr: SocketAddr,
    /// Seconds per phase.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Events per NDJSON batch.
    #[arg(long, default_value_t = 5000)]
    batch: usize,
    /// Which phases to run: ndjson, single or both.
    #[arg(long, default_value = "both")]
    mode: String,
    /// The payload of every NDJSON event, as JSON (default `{"i": N, "tool_name": "Read"}`);
    /// `cargo xtask bench --rules` sends a hook payload, with and without a schema for it.
    #[arg(long, value_name = "JSON")]
    data: Option<String>,
    /// Bearer token, when the daemon has one (default: CLAUDE_MPM_EVENTBUS_TOKEN).
    #[arg(long, env = "CLAUDE_MPM_EVENTBUS_TOKEN")]
    token: Option<String>,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// One keep-alive HTTP/1.1 connection.
struct Connection {
    stream: BufReader<TcpStream>,
    line: String,
    body: Vec<u8>,
}

impl Connection {
    async fn open(addr: SocketAddr) -> Result<Self, Failure> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufReader::new(stream),
            line: String::new(),
            body: Vec::new(),
        })
    }

    /// Sends a prepared request and returns (status, body).
    async fn round_trip(&mut self, request: &[u8]) -> Result<(u16, &[u8]), Failure> {
        self.stream.get_mut().write_all(request).await?;
        self.line.clear();
        self.stream.read_line(&mut self.line).await?;
        let status: u16 = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {:?}", self.line))?;
        let mut length = 0usize;
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                return Err("connection closed mid-response".into());
            }
            let header = self.line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse()?;
            }
        }
        self.body.resize(length, 0);
        self.stream.read_exact(&mut self.body).await?;
        Ok((status, &self.body))
    }
}

/// The `Authorization` header line (with its CRLF), or nothing without a token.
fn authorization(args: &Args) -> String {
    args.token
        .as_ref()
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default()
}

fn request(args: &Args, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let auth = authorization(args);
    let mut out = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n{auth}Content-Length: {}\r\n\r\n",
        args.addr,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn accepted(body: &[u8]) -> Result<u64, Failure> {
    let reply: serde_json::Value = serde_json::from_slice(body)?;
    reply["accepted"]
        .as_u64()
        .ok_or_else(|| format!("no `accepted` in {reply}").into())
}

/// Runs `connections` loops sending `request` until the deadline; returns (requests, events).
async fn phase(args: &Args, request: Vec<u8>) -> Result<(u64, u64, Duration), Failure> {
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let request = request.clone();
        let addr = args.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(addr).await?;
            let (mut requests, mut events) = (0u64, 0u64);
            while Instant::now() < deadline {
                let (status, body) = conn.round_trip(&request).await?;
                if status != 200 {
                    return Err(
                        format!("status {status}: {}", String::from_utf8_lossy(body)).into(),
                    );
                }
                events += accepted(body)?;
                requests += 1;
            }
            Ok::<_, Failure>((requests, events))
        }));
    }
    let (mut requests, mut events) = (0, 0);
    for task in tasks {
        let (r, e) = task.await??;
        requests += r;
        events += e;
    }
    Ok((requests, events, started.elapsed()))
}

async fn published(args: &Args) -> Result<u64, Failure> {
    let addr = args.addr;
    let mut conn = Connection::open(addr).await?;
    // With a token set, the daemon wants it on reads too.
    let request = format!(
        "GET /stats HTTP/1.1\r\nHost: {addr}\r\n{}\r\n",
        authorization(args)
    );
    let (_, body) = conn.round_trip(request.as_bytes()).await?;
    let stats: serde_json::Value = serde_json::from_slice(body)?;
    // On a shared (Redis) log the daemon's bus publishes what the log feed reads back, later
    // and from every daemon: what this daemon accepted is what it appended to the log.
    let field = if stats["store"]["backend"] == "redis" {
        &stats["store"]["appended"]
    } else {
        &stats["events_published"]
    };
    field
        .as_u64()
        .ok_or_else(|| "no events_published (or store.appended on Redis) in /stats".into())
}

#[allow(clippy::print_stdout)] // a measuring tool reports on stdout
async fn run(args: Args) -> Result<(), Failure> {
    let run_ndjson = matches!(args.mode.as_str(), "ndjson" | "both");
    let run_single = matches!(args.mode.as_str(), "single" | "both");
    if !run_ndjson && !run_single {
        return Err(format!("--mode {:?}: expected ndjson, single or both", args.mode).into());
    }
    println!(
        "eventbus ingest load: {} connections, {} s per phase, daemon at {}",
        args.connections, args.seconds, args.addr
    );
    if run_ndjson {
        let mut body = Vec::new();
        let fixed = match &args.data {
            Some(text) => Some(serde_json::from_str::<serde_json::Value>(text)?.to_string()),
            None => None,
        };
        for i in 0..args.batch {
            let line = match &fixed {
                Some(data) => format!("{{\"type\":\"load.ndjson\",\"data\":{data}}}\n"),
                None => format!(
                    "{{\"type\":\"load.ndjson\",\"data\":{{\"i\":{i},\"tool_name\":\"Read\"}}}}\n"
                ),
            };
            body.extend_from_slice(line.as_bytes());
        }
        let req = request(&args, "/events?ids=false", "application/x-ndjson", &body);
        let before = published(&args).await?;
        let (requests, events, took) = phase(&args, req).await?;
        let after = published(&args).await?;
        println!(
            "ndjson: {events} events in {requests} batches of {} ({} bytes) in {:.2} s = {:.0} events/s (daemon counted {})",
            args.batch,
            body.len(),
            took.as_secs_f64(),
            events as f64 / took.as_secs_f64(),
            after - before
        );
    }
    if run_single {
        let body = br#"{"type":"load.single","data":{"tool_name":"Read"}}"#;
        let req = request(&args, "/events", "application/json", body);
        let before = published(&args).await?;
        let (requests, events, took) = phase(&args, req).await?;
        let after = published(&args).await?;
        println!(
            "single: {events} events in {requests} POSTs in {:.2} s = {:.0} requests/s (daemon counted {})",
            took.as_secs_f64(),
            requests as f64 / took.as_secs_f64(),
            after - before
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ingest_load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
