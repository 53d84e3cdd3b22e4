//! End-to-end latency through the event log: posts events to one daemon at a steady rate and
//! times their arrival at an SSE client of another (on the same shared log, such as one Redis
//! stream), or of the same daemon.
//!
//! ```text
//! cargo run --release -p bus-daemon --example latency_load -- \
//!     --post 127.0.0.1:8770 --sse 127.0.0.1:8771 --rate 10000 --seconds 10
//! ```
//!
//! `--posters` threads each post a batch of `--batch` events in turn, so the batches go out
//! every `batch / rate` seconds and one slow POST does not hold up the others. Every event
//! carries its sequence number and the wall clock when its POST was sent; the SSE client takes
//! the difference on arrival. It prints one line:
//! `latency: N events at R events/s: p50 A ms, p99 B ms, max C ms` (the first `--warmup`
//! events left out of the percentiles), and fails unless every event arrived exactly once.

use std::io::BufRead;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

/// Measures post -> SSE latency between two running eventbus daemons.
#[derive(Debug, Parser)]
struct Args {
    /// The daemon to POST to.
    #[arg(long)]
    post: String,
    /// The daemon whose `GET /events/stream` is read.
    #[arg(long)]
    sse: String,
    /// Events per second posted, in all.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long to post.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events per POST.
    #[arg(long, default_value_t = 10)]
    batch: u64,
    /// Posting threads.
    #[arg(long, default_value_t = 4)]
    posters: u64,
    /// Events at the start left out of the percentiles (connections warming up).
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[derive(serde::Deserialize)]
struct Arrived {
    data: Stamp,
}

#[derive(serde::Deserialize)]
struct Stamp {
    seq: u64,
    sent_us: u64,
}

/// Reads the stream until all `total` events arrived; their latencies in sequence order.
fn receive(url: &str, total: u64, ready: std::sync::mpsc::Sender<()>) -> Result<Vec<u64>, Failure> {
    let response = ureq::get(url).call()?;
    let _ = ready.send(());
    let mut latencies = vec![u64::MAX; total as usize];
    let mut received = 0u64;
    let reader = std::io::BufReader::new(response.into_body().into_reader());
    for line in reader.lines() {
        let line = line?;
        let Some(json) = line.strip_prefix("data: ") else {
            continue;
        };
        let arrived = now_us();
        let Ok(event) = serde_json::from_str::<Arrived>(json) else {
            continue; // not one of ours
        };
        let slot = latencies
            .get_mut(event.data.seq as usize)
            .ok_or_else(|| format!("sequence number {} out of range", event.data.seq))?;
        if *slot != u64::MAX {
            return Err(format!("event {} arrived twice", event.data.seq).into());
        }
        *slot = arrived.saturating_sub(event.data.sent_us);
        received += 1;
        if received == total {
            return Ok(latencies);
        }
    }
    Err(format!("the stream ended after {received} of {total} events").into())
}

/// Poster `p` of `posters`: its batches, every `every`, staggered by `p` turns.
fn post(args: &Args, p: u64, started: Instant, every: Duration) -> Result<(), Failure> {
    let agent = ureq::Agent::new_with_defaults();
    let url = format!("http://{}/events?ids=false", args.post);
    let total = args.rate * args.seconds;
    let turn = every / args.posters as u32;
    let mut next = started + turn * p as u32;
    let mut k = 0u64;
    loop {
        let first = (k * args.posters + p) * args.batch;
        if first >= total {
            return Ok(());
        }
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        }
        next += every;
        let sent = now_us();
        let body: String = (first..(first + args.batch).min(total))
            .map(|seq| {
                format!(
                    "{{\"type\":\"bench.latency\",\"data\":{{\"seq\":{seq},\"sent_us\":{sent}}}}}\n"
                )
            })
            .collect();
        agent
            .post(&url)
            .content_type("application/x-ndjson")
            .send(body.as_str())?;
        k += 1;
    }
}

#[allow(clippy::print_stdout)] // a measuring tool reports on stdout
fn main() -> Result<(), Failure> {
    let args = Args::parse();
    if args.rate == 0 || args.seconds == 0 || args.batch == 0 || args.posters == 0 {
        return Err("--rate, --seconds, --batch and --posters must be above 0".into());
    }
    let total = args.rate * args.seconds;
    let sse_url = format!("http://{}/events/stream", args.sse);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || receive(&sse_url, total, ready_tx));
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .map_err(|_| "the SSE client did not connect within 30 s")?;
    // The stream is open; let the daemon's follower settle before the clock starts.
    thread::sleep(Duration::from_millis(300));
    // One batch goes out every batch/rate seconds, the posters taking turns.
    let every = Duration::from_secs_f64((args.batch * args.posters) as f64 / args.rate as f64);
    let started = Instant::now();
    thread::scope(|scope| {
        let posters: Vec<_> = (0..args.posters)
            .map(|p| {
                let args = &args;
                scope.spawn(move || post(args, p, started, every))
            })
            .collect();
        posters.into_iter().try_for_each(|poster| {
            poster
                .join()
                .map_err(|_| Failure::from("a poster panicked"))?
        })
    })?;
    let posted_per_s = total as f64 / started.elapsed().as_secs_f64();
    let latencies = reader.join().map_err(|_| "the SSE client panicked")??;
    let mut measured: Vec<u64> = latencies.into_iter().skip(args.warmup).collect();
    if measured.is_empty() {
        return Err("no events left after the warm-up".into());
    }
    measured.sort_unstable();
    let ms = |us: u64| us as f64 / 1000.0;
    let pct = |p: f64| {
        let i = ((measured.len() as f64 * p).ceil() as usize).clamp(1, measured.len()) - 1;
        ms(measured[i])
    };
    println!(
        "latency: {total} events at {posted_per_s:.0} events/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50),
        pct(0.99),
        ms(*measured.last().unwrap_or(&0))
    );
    Ok(())
}
