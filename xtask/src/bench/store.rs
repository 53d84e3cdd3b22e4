//! The durable log's speed, side by side in one run: NDJSON ingest with `STORE_SYNC=full`
//! against the in-memory log, 64 concurrent single-event clients on `full` (group commit),
//! reading a warm store (`GET /events` paging, `eventbus tail`, one SSE client), and the
//! daemon's peak RSS at two store sizes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::services::{counted_line, peak_rss_of_live, spawn_daemon};
use crate::paths::{DAEMON_BIN, Profile, built_binary, built_example, in_target};
use crate::proc::Guarded;

/// What the store bench measured.
pub(crate) struct StoreBench {
    /// NDJSON ingest, events/s, in-memory log.
    pub(crate) ndjson_memory: f64,
    /// NDJSON ingest, events/s, SQLite with `full` sync.
    pub(crate) ndjson_full: f64,
    /// 64 clients posting one event per request, `full`: events/s.
    pub(crate) single64_full: f64,
    /// Events in the warm store the reads ran over.
    pub(crate) stored: u64,
    /// `GET /events` paging (pages of 10,000), events/s.
    pub(crate) paging: f64,
    /// `eventbus tail` to /dev/null, events/s.
    pub(crate) tail: f64,
    /// One SSE client from the start of the log, events/s.
    pub(crate) sse: f64,
    /// Daemon peak RSS (KiB) after loading and reading `stored` events, and `big` events.
    pub(crate) rss_kb: (u64, u64),
    /// The larger store size of the RSS comparison.
    pub(crate) big: u64,
}

/// A daemon on `store` (a path, or `memory`), logging off, relay off.
struct BenchDaemon {
    process: Guarded,
    addr: String,
}

impl BenchDaemon {
    fn start(store: &str) -> Result<Self, String> {
        let mut command = Command::new(built_binary(Profile::Release, DAEMON_BIN)?);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0")
            .env("CLAUDE_MPM_EVENTBUS_STORE", store)
            .env("CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS", "100000000")
            .env("CLAUDE_MPM_EVENTBUS_LOGGING", "false")
            .env("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "0");
        let (process, addr) = spawn_daemon("eventbus daemon", command)?;
        Ok(BenchDaemon { process, addr })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Runs `ingest_load` against `daemon`; returns its stdout.
fn load(
    daemon: &BenchDaemon,
    mode: &str,
    connections: usize,
    seconds: f64,
) -> Result<String, String> {
    let output = Command::new(built_example(Profile::Release, "ingest_load")?)
        .args(["--addr", &daemon.addr, "--seconds", &seconds.to_string()])
        .args([
            "--connections",
            &connections.to_string(),
            "--batch",
            "5000",
            "--mode",
            mode,
        ])
        .output()
        .map_err(|e| format!("could not run ingest_load: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "ingest_load failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(stdout)
}

/// Appends `n` small events to `daemon` in NDJSON batches of 10,000.
fn fill(daemon: &BenchDaemon, n: u64) -> Result<(), String> {
    let batch: String = (0..10_000)
        .map(|i| {
            format!(
                "{{\"type\":\"hook.pre_tool\",\"data\":{{\"tool_name\":\"Read\",\"i\":{i}}}}}\n"
            )
        })
        .collect();
    let agent = ureq::Agent::new_with_defaults();
    for _ in 0..n.div_ceil(10_000) {
        agent
            .post(daemon.url("/events?ids=false"))
            .content_type("application/x-ndjson")
            .send(&batch)
            .map_err(|e| format!("filling the store: {e}"))?;
    }
    Ok(())
}

/// Runs `read_load` (a release build, so the client's parsing is not what is measured)
/// against `daemon`; returns (events it counted, seconds).
fn read_load(daemon: &BenchDaemon, args: &[&str]) -> Result<(u64, f64), String> {
    let output = Command::new(built_example(Profile::Release, "read_load")?)
        .args(["--addr", &daemon.addr])
        .args(args)
        .output()
        .map_err(|e| format!("could not run read_load: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "read_load {args:?} failed: {}{stdout}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // `page: N events in S s: R events/s`
    let words: Vec<&str> = stdout.split_whitespace().collect();
    match (words.get(1), words.get(4)) {
        (Some(n), Some(s)) => Ok((
            n.parse()
                .map_err(|_| format!("read_load said {stdout:?}"))?,
            s.parse()
                .map_err(|_| format!("read_load said {stdout:?}"))?,
        )),
        _ => Err(format!("read_load said {stdout:?}")),
    }
}

/// Pages through the whole log with `GET /events`; returns (events, seconds).
fn page_all(daemon: &BenchDaemon) -> Result<(u64, f64), String> {
    read_load(daemon, &["--mode", "page", "--limit", "10000"])
}

/// `eventbus tail --after 0` into a pipe that read_load (release) drains, counting the
/// events and checking their ids; returns (lines, seconds for the whole pipeline).
fn tail_all(daemon: &BenchDaemon) -> Result<(u64, f64), String> {
    let started = Instant::now();
    let mut tail = Command::new(built_binary(Profile::Release, DAEMON_BIN)?)
        .env_clear()
        .args(["tail", "--addr", &daemon.addr, "--after", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("eventbus tail: {e}"))?;
    let printed = tail.stdout.take().ok_or("no stdout")?;
    let counted = Command::new(built_example(Profile::Release, "read_load")?)
        .args(["--mode", "lines"])
        .stdin(Stdio::from(printed))
        .output()
        .map_err(|e| format!("could not run read_load: {e}"));
    let status = tail.wait().map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let counted = counted?;
    let stdout = String::from_utf8_lossy(&counted.stdout);
    if !status.success() || !counted.status.success() {
        return Err(format!(
            "eventbus tail exited {status}; read_load --mode lines: {}{stdout}",
            String::from_utf8_lossy(&counted.stderr)
        ));
    }
    // `lines: N events in S s: R events/s`
    let lines = stdout
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("read_load said {stdout:?}"))?;
    Ok((lines, seconds))
}

/// One SSE client from the start of the log until it has `n` events; returns seconds.
fn sse_all(daemon: &BenchDaemon, n: u64) -> Result<f64, String> {
    let (seen, seconds) = read_load(daemon, &["--mode", "sse", "--events", &n.to_string()])?;
    if seen != n {
        return Err(format!("the SSE client counted {seen} of {n} events"));
    }
    Ok(seconds)
}

/// Runs the store bench (`quick`: smaller stores, shorter phases).
pub(crate) fn run(quick: bool) -> Result<StoreBench, String> {
    let seconds = if quick { 1.5 } else { 4.0 };
    let dir = in_target("xtask-bench-store")?;
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = |name: &str| dir.join(name).display().to_string();

    eprintln!("xtask: store bench: NDJSON ingest, memory vs full");
    let memory = BenchDaemon::start("memory")?;
    let ndjson_memory = counted_line(&load(&memory, "ndjson", 4, seconds)?, "ndjson:", "events/s")?;
    drop(memory);
    let full = BenchDaemon::start(&file("ingest.db"))?;
    let ndjson_full = counted_line(&load(&full, "ndjson", 4, seconds)?, "ndjson:", "events/s")?;
    eprintln!("xtask: store bench:   NDJSON memory {ndjson_memory:.0}/s, full {ndjson_full:.0}/s");
    drop(full);

    eprintln!("xtask: store bench: 64 single-event clients, full");
    let full = BenchDaemon::start(&file("single.db"))?;
    let single64_full = counted_line(
        &load(&full, "single", 64, seconds)?,
        "single:",
        "requests/s",
    )?;
    drop(full);

    let (stored, big) = if quick {
        (200_000, 1_000_000)
    } else {
        (1_000_000, 10_000_000)
    };
    let mut rss_kb = (0, 0);
    let mut reads = (0.0, 0.0, 0.0);
    for (i, n) in [stored, big].into_iter().enumerate() {
        eprintln!("xtask: store bench: {n} stored events, read back");
        let daemon = BenchDaemon::start(&file(&format!("warm-{n}.db")))?;
        let filling = Instant::now();
        fill(&daemon, n)?;
        eprintln!(
            "xtask: store bench:   filled in {:.1} s",
            filling.elapsed().as_secs_f64()
        );
        let (paged, paging_s) = page_all(&daemon)?;
        eprintln!("xtask: store bench:   GET /events paged {paged} in {paging_s:.2} s");
        if paged != n {
            return Err(format!("GET /events paged {paged} of {n} events"));
        }
        let (tailed, tail_s) = tail_all(&daemon)?;
        eprintln!("xtask: store bench:   eventbus tail printed {tailed} in {tail_s:.2} s");
        if tailed != n {
            return Err(format!("eventbus tail printed {tailed} of {n} events"));
        }
        let sse_s = sse_all(&daemon, n)?;
        eprintln!("xtask: store bench:   SSE read {n} in {sse_s:.2} s");
        let rss = peak_rss_of_live(daemon.process.pid())?;
        if i == 0 {
            reads = (n as f64 / paging_s, n as f64 / tail_s, n as f64 / sse_s);
            rss_kb.0 = rss;
        } else {
            rss_kb.1 = rss;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(StoreBench {
        ndjson_memory,
        ndjson_full,
        single64_full,
        stored,
        paging: reads.0,
        tail: reads.1,
        sse: reads.2,
        rss_kb,
        big,
    })
}

/// The BENCHMARKS.md section.
pub(crate) fn render(r: &Result<StoreBench, String>) -> String {
    let r = match r {
        Ok(r) => r,
        Err(e) => return format!("## The durable log\n\nThe store bench FAILED: {e}\n"),
    };
    let mark = |ok: bool| if ok { "met" } else { "MISS" };
    let ratio = r.ndjson_full / r.ndjson_memory;
    let rss_ratio = r.rss_kb.1 as f64 / r.rss_kb.0.max(1) as f64;
    let m = |x: f64| format!("{:.2} M", x / 1e6);
    format!(
        "## The durable log\n\n\
         `cargo xtask bench` (or `cargo xtask bench --store` for this part alone): the release \
         daemon as a process on loopback, logging and history off, relay off; the load from \
         `bus-daemon/examples/ingest_load.rs` (raw HTTP/1.1 keep-alive connections, every accepted \
         event counted back from `/stats`), the reads from `bus-daemon/examples/read_load.rs` \
         (release build; ids checked in order; like `eventbus tail`, it reads each page's `next` from \
         the end of its text and asks for the following page while it parses this one, so the \
         daemon serves one page after another while the client parses) and `eventbus tail`. Side by side in one run.\n\n\
         | measurement | result | target | |\n|---|---|---|---|\n\
         | NDJSON ingest (4 connections, batches of 5,000), `memory` | {} events/s | | |\n\
         | NDJSON ingest, SQLite `STORE_SYNC=full` | {} events/s ({ratio:.2}x memory) | >= 0.5x memory | {} |\n\
         | 64 clients, one event per POST, `full` (group commit) | {:.0} events/s | >= 10,000 | {} |\n\
         | `GET /events` paging (10,000 a page) over {} stored events | {} events/s | >= 1 M | {} |\n\
         | `eventbus tail --after 0` (to a pipe, counted by a release reader) over {} events | {} events/s | >= 1 M | {} |\n\
         | one SSE client from the start of the log, {} events | {} events/s | >= 200,000 | {} |\n\
         | daemon peak RSS, {} vs {} events stored (and read back) | {} MiB vs {} MiB ({rss_ratio:.2}x) | within 2x | {} |\n",
        m(r.ndjson_memory),
        m(r.ndjson_full),
        mark(ratio >= 0.5),
        r.single64_full,
        mark(r.single64_full >= 10_000.0),
        r.stored,
        m(r.paging),
        mark(r.paging >= 1e6),
        r.stored,
        m(r.tail),
        mark(r.tail >= 1e6),
        r.stored,
        m(r.sse),
        mark(r.sse >= 2e5),
        r.stored,
        r.big,
        r.rss_kb.0 / 1024,
        r.rss_kb.1 / 1024,
        mark(rss_ratio <= 2.0),
    )
}

/// Replaces, in place, the section of the BENCHMARKS.md at `path` with the same `## `
/// heading line as `section` (or appends it).
pub(crate) fn splice(path: &Path, section: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, spliced(&text, section))
        .map_err(|e| format!("writing {}: {e}", path.display()))
}

/// `text` with the section whose whole heading line is `section`'s put in its place (appended
/// when there is none): "## Redis" is not "## Redis: the spread between runs", a hand-written
/// section that follows it.
fn spliced(text: &str, section: &str) -> String {
    let (preamble, _) = super::report::sections(text);
    super::report::replace_sections(text, &format!("{preamble}{section}"), &[])
}

#[cfg(test)]
mod tests {
    use super::spliced;

    #[test]
    fn a_section_is_replaced_in_place_by_its_whole_heading() {
        let text =
            "# Title\n\n## Redis: the spread\n\nnotes\n\n## Redis\n\nold\n\n## Last\n\nend\n";
        assert_eq!(
            spliced(text, "## Redis\n\nnew\n"),
            "# Title\n\n## Redis: the spread\n\nnotes\n\n## Redis\n\nnew\n\n## Last\n\nend\n"
        );
    }

    #[test]
    fn a_missing_section_is_appended() {
        assert_eq!(
            spliced("# Title\n\n## A\n\na\n", "## B\n\nb\n"),
            "# Title\n\n## A\n\na\n\n## B\n\nb\n"
        );
    }
}
