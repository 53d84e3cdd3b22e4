//! A read load for a running `eventbus` daemon: how fast its stored events come back.
//!
//! ```text
//! cargo run --release -p bus-daemon --example read_load -- --addr 127.0.0.1:8770 --mode page
//! cargo run --release -p bus-daemon --example read_load -- --addr 127.0.0.1:8770 --mode sse --events 1000000
//! eventbus tail --after 0 | cargo run --release -p bus-daemon --example read_load -- --mode lines
//! ```
//!
//! `page` walks `GET /events` from the start of the log in pages of `--limit` events, passing
//! each page's `next` back as `after`, until a page has no `next` (fetching the next page
//! while it parses one, as `eventbus tail` does); `sse` reads
//! `GET /events/stream?after=0` until `--events` events have arrived. Both check what they
//! count (every event's JSON is parsed far enough to be counted; ids must increase) and print
//! one line: `page: N events in S s: R events/s` (or `sse: ...`). `lines` counts the NDJSON
//! events on stdin (what `eventbus tail` prints), each line's decimal id checked to increase,
//! so that a tail is measured without a slow reader behind it.

use std::io::{BufRead, BufReader};
use std::time::Instant;

use clap::Parser;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Measures how fast a running eventbus daemon serves its stored events.
#[derive(Debug, Parser)]
struct Args {
    /// The daemon's address.
    #[arg(long, default_value = "127.0.0.1:8770")]
    addr: String,
    /// What to read: page (GET /events), sse (GET /events/stream) or lines (NDJSON on stdin).
    #[arg(long, default_value = "page")]
    mode: String,
    /// Events per page (`page`).
    #[arg(long, default_value_t = 10_000)]
    limit: usize,
    /// Events to wait for (`sse`).
    #[arg(long, default_value_t = 0)]
    events: u64,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// A page with its events left as text; only their ids are read.
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    next: Option<String>,
}

#[derive(Deserialize)]
struct Id<'a> {
    id: &'a str,
}

/// Checks that `id` (decimal) is above `last`, and returns it.
fn increasing(id: &str, last: u64) -> Result<u64, Failure> {
    let id: u64 = id.parse()?;
    if id <= last {
        return Err(format!("id {id} after id {last}: ids must increase").into());
    }
    Ok(id)
}

fn page_all(args: &Args) -> Result<u64, Failure> {
    // As `eventbus tail` does: each page's `next` is read from the end of its text, so the
    // next request goes out while this page is parsed and checked.
    let (pages, fetched) = std::sync::mpsc::sync_channel::<Result<String, Failure>>(2);
    let (addr, limit) = (args.addr.clone(), args.limit);
    let fetcher = std::thread::spawn(move || {
        let agent = ureq::Agent::new_with_defaults();
        let mut after = "0".to_owned();
        loop {
            let url = format!("http://{addr}/events?limit={limit}&after={after}");
            let text = agent
                .get(&url)
                .call()
                .and_then(|mut reply| {
                    reply
                        .body_mut()
                        .with_config()
                        .limit(1 << 31)
                        .read_to_string()
                })
                .map_err(Failure::from);
            let next = text.as_deref().ok().map(bus_daemon::read::page_next);
            if pages.send(text).is_err() {
                return;
            }
            match next {
                Some(Some(Some(next))) => after = next,
                _ => return,
            }
        }
    });
    let (mut seen, mut last) = (0u64, 0u64);
    for text in fetched {
        let text = text?;
        let page: Page<'_> = serde_json::from_str(&text)?;
        if bus_daemon::read::page_next(&text) != Some(page.next.clone()) {
            return Err(format!("a page's next was not its last field: {text}").into());
        }
        // The first and last ids of each page are checked; the daemon's own tests check
        // the order within a page.
        if let (Some(first), Some(end)) = (page.events.first(), page.events.last()) {
            last = increasing(serde_json::from_str::<Id<'_>>(first.get())?.id, last)?;
            last = last.max(serde_json::from_str::<Id<'_>>(end.get())?.id.parse()?);
        }
        seen += page.events.len() as u64;
        if page.next.is_none() {
            break;
        }
    }
    fetcher.join().map_err(|_| "the fetching thread panicked")?;
    Ok(seen)
}

fn sse_all(args: &Args) -> Result<u64, Failure> {
    let url = format!("http://{}/events/stream?after=0", args.addr);
    let body = ureq::get(&url).call()?.into_body().into_reader();
    let reader = BufReader::with_capacity(1 << 20, body);
    let (mut seen, mut last) = (0u64, 0u64);
    for line in reader.split(b'\n') {
        let line = line?;
        if let Some(id) = line.strip_prefix(b"id: ") {
            last = increasing(std::str::from_utf8(id)?, last)?;
        } else if line.starts_with(b"data: ") {
            seen += 1;
            if seen == args.events {
                return Ok(seen);
            }
        }
    }
    Err(format!("the stream ended after {seen} of {} events", args.events).into())
}

fn lines_on_stdin() -> Result<u64, Failure> {
    let stdin = std::io::stdin().lock();
    let reader = BufReader::with_capacity(1 << 20, stdin);
    let (mut seen, mut last) = (0u64, 0u64);
    for line in reader.split(b'\n') {
        let line = line?;
        let id = line
            .strip_prefix(b"{\"id\":\"")
            .and_then(|rest| rest.split(|&b| b == b'"').next())
            .ok_or_else(|| {
                format!(
                    "line {}: not an event: {}",
                    seen + 1,
                    String::from_utf8_lossy(&line)
                )
            })?;
        last = increasing(std::str::from_utf8(id)?, last)?;
        seen += 1;
    }
    Ok(seen)
}

#[allow(clippy::print_stdout)] // a measuring tool reports on stdout
fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let started = Instant::now();
    let seen = match args.mode.as_str() {
        "page" => page_all(&args)?,
        "sse" if args.events > 0 => sse_all(&args)?,
        "sse" => return Err("--mode sse needs --events N (how many to wait for)".into()),
        "lines" => lines_on_stdin()?,
        other => return Err(format!("--mode {other:?}: expected page, sse or lines").into()),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}: {seen} events in {seconds:.3} s: {:.0} events/s",
        args.mode,
        seen as f64 / seconds
    );
    Ok(())
}
