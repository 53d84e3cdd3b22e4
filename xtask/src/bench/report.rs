//! Writes BENCHMARKS.md from the measurements.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::machine::Machine;
use super::peers::{Library, Outcome, Plan, WORKLOADS};
use super::services::{Ingest, Relay};

/// One run of our `publish_loop` example, for memory (and a long single-run rate).
pub(crate) struct LoopRun {
    /// `sync` or `async`.
    pub(crate) mode: &'static str,
    /// Events published.
    pub(crate) events: u64,
    /// The rate it printed, in events/s.
    pub(crate) rate: f64,
    /// Its peak RSS, in KiB.
    pub(crate) peak_rss_kb: u64,
}

/// Everything one `cargo xtask bench` run measured.
pub(crate) struct Results {
    /// Whether `--quick` was given.
    pub(crate) quick: bool,
    /// The flag that limited the run to the in-process part (`--dispatch`), or "".
    pub(crate) scope: &'static str,
    /// The machine, read at the start.
    pub(crate) machine: Machine,
    /// The load averages when the measurements were done.
    pub(crate) load_at_end: String,
    /// Our criterion rates by benchmark name.
    pub(crate) ours: BTreeMap<String, f64>,
    /// Our publish_loop runs.
    pub(crate) loops: Vec<LoopRun>,
    /// `publish_loop sync` built with and without cross-crate LTO, or why not.
    pub(crate) lto: Result<super::lto::LtoRuns, String>,
    /// The peak RSS the wrapper reports for `true`, which does nothing (KiB), or why not.
    pub(crate) rss_floor_kb: Result<u64, String>,
    /// How the peers ran.
    pub(crate) plan: Plan,
    /// The peer libraries.
    pub(crate) libraries: Vec<Library>,
    /// The daemon's ingest, or why it failed.
    pub(crate) ingest: Result<Ingest, String>,
    /// The relay, or why it failed.
    pub(crate) relay: Result<Relay, String>,
}

/// Renders BENCHMARKS.md.
pub(crate) fn render(r: &Results) -> String {
    let mut out = String::new();
    let m = &r.machine;
    let mode = if r.quick { "`--quick`" } else { "full" };
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `cargo xtask bench{}` ({mode} run) on {}. Do not edit by hand: run it again.{}\n",
        r.scope,
        m.date,
        if r.scope.is_empty() {
            ""
        } else {
            " The sections this run did not measure (the daemon's ingest and relay, and those \
             of the other flags) are kept from the runs that wrote them."
        }
    );
    let _ = writeln!(
        out,
        "**Machine:** {} ({} logical cores), {} RAM, {}; load average at the start: {}, at the end: {}. \
         The machine is shared with other builds and jobs, so absolute numbers are noisy; \
         the ratios of runs made minutes apart are more telling than any single figure.\n",
        m.cpu, m.cores, m.memory, m.kernel, m.load_average, r.load_at_end
    );
    let mut versions = m.tools.clone();
    versions.extend(r.libraries.iter().map(|l| l.version.clone()));
    let _ = writeln!(out, "**Versions:** {}.\n", versions.join(", "));

    main_table(&mut out, r);
    super::targets::section(&mut out, r);
    super::paired::section(&mut out, &r.libraries, r.plan.seconds);
    super::lto::section(&mut out, &r.lto);
    memory(&mut out, r);
    services(&mut out, r);
    method(&mut out, r);
    out
}

fn main_table(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "## Dispatch throughput (million events/s; ours ÷ theirs in brackets)\n"
    );
    let mut header = "| Workload | eventbus (Rust) |".to_owned();
    let mut rule = "|---|---:|".to_owned();
    for library in &r.libraries {
        let _ = write!(header, " {} |", library.title);
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut notes = Vec::new();
    for (i, workload) in WORKLOADS.iter().enumerate() {
        let ours = r.ours.get(*workload).copied();
        let mut row = format!(
            "| {workload} | {} |",
            ours.map_or("missing".into(), millions)
        );
        for library in &r.libraries {
            let cell = match &library.outcomes[i] {
                Outcome::Measured { rate, .. } => match ours {
                    Some(ours) => format!("{} ({}×)", millions(*rate), ratio(ours / rate)),
                    None => millions(*rate),
                },
                Outcome::NotApplicable(why) => {
                    notes.push((&library.title, *workload, format!("n/a, {why}")));
                    "n/a".into()
                }
                Outcome::Invalid(why) => {
                    notes.push((&library.title, *workload, format!("INVALID, {why}")));
                    "INVALID".into()
                }
                Outcome::NotRun(why) => {
                    notes.push((&library.title, *workload, why.clone()));
                    "not run".into()
                }
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
    for note in dedup(notes) {
        let _ = writeln!(out, "- {note}");
    }
    let _ = writeln!(
        out,
        "\nThe same as a chart (drawn by the bench, log scale): [{0}]({0})\n\n![Dispatch throughput: ours and each peer per workload]({0})\n",
        super::chart::PATH
    );
}

/// One note per library and reason, naming every workload it applies to (a missing runtime,
/// or a channel without sync handlers, is one reason for many cells).
fn dedup(notes: Vec<(&String, &str, String)>) -> Vec<String> {
    let mut grouped: Vec<(&String, Vec<&str>, String)> = Vec::new();
    for (title, workload, why) in notes {
        match grouped
            .iter_mut()
            .find(|(t, _, w)| *t == title && *w == why)
        {
            Some((_, workloads, _)) => workloads.push(workload),
            None => grouped.push((title, vec![workload], why)),
        }
    }
    grouped
        .into_iter()
        .map(|(title, workloads, why)| format!("{title} {}: {why}.", workloads.join(", ")))
        .collect()
}

fn memory(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## Peak memory (max RSS of the whole process, MiB)\n");
    let _ = writeln!(
        out,
        "| Run | Events | Rate (million/s) | Peak RSS |\n|---|---:|---:|---:|"
    );
    for run in &r.loops {
        let _ = writeln!(
            out,
            "| eventbus `publish_loop {} {}` | {} | {} | {} |",
            run.events,
            run.mode,
            run.events,
            millions(run.rate),
            mib(run.peak_rss_kb)
        );
    }
    if let Ok(ingest) = &r.ingest {
        let _ = writeln!(
            out,
            "| eventbus daemon after the ingest load below | | | {} |",
            mib(ingest.daemon_peak_rss_kb)
        );
    }
    let _ = match &r.rss_floor_kb {
        Ok(floor) => writeln!(
            out,
            "\nThe floor: `true`, which does nothing, measures {} MiB this way. The kernel \
             counts the pages the forked wrapper had before the `exec` in the child's peak, so \
             a figure near the floor says the program used at most that.",
            mib(*floor)
        ),
        Err(e) => writeln!(
            out,
            "\nThe floor (`true` under the wrapper) was not measured: {e}."
        ),
    };
    let _ = writeln!(
        out,
        "\nPeers, per workload (each run is its own process):\n"
    );
    let mut header = "| Workload |".to_owned();
    let mut rule = "|---|".to_owned();
    for library in &r.libraries {
        let _ = write!(header, " {} |", library.title);
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    for (i, workload) in WORKLOADS.iter().enumerate() {
        let mut row = format!("| {workload} |");
        for library in &r.libraries {
            let cell = match &library.outcomes[i] {
                Outcome::Measured { peak_rss_kb, .. } => mib(*peak_rss_kb),
                _ => "–".into(),
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
}

fn services(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "## Daemon HTTP ingest (`eventbus` + `ingest_load`, loopback)\n"
    );
    match &r.ingest {
        Ok(ingest) => {
            let _ = writeln!(
                out,
                "| Mode | Rate |\n|---|---:|\n| NDJSON batches (`POST /events?ids=false`) | {:.0} events/s |\n| One event per `POST /events` | {:.0} requests/s |\n",
                ingest.ndjson_events_per_s, ingest.single_posts_per_s
            );
            let _ = writeln!(
                out,
                "{}; relay and logging consumers off, everything else default. Every accepted \
                 event was checked against the daemon's `/stats` count.\n",
                ingest.settings
            );
        }
        Err(e) => {
            let _ = writeln!(out, "FAILED: {e}\n");
        }
    }
    let _ = writeln!(
        out,
        "## Relay to python-socketio (`throughput` example, tools/dashboard_server.py)\n"
    );
    match &r.relay {
        Ok(relay) => {
            let _ = writeln!(
                out,
                "| Mode | Rate |\n|---|---:|\n| Bare client, plain emits (what the server takes) | {:.0} events/s |\n| Relay (checkpoint acks) | {:.0} events/s |\n| One acknowledged emit at a time | {:.0} events/s |\n",
                relay.plain_events_per_s, relay.relay_events_per_s, relay.acked_events_per_s
            );
            let _ = writeln!(out, "{}.\n", relay.detail);
        }
        Err(e) => {
            let _ = writeln!(out, "FAILED: {e}\n");
        }
    }
}

fn method(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "## How it was measured\n\n\
         Every workload publishes one prebuilt shared payload \
         `{{\"tool_name\":\"Read\",\"file_path\":\"/example.py\",\"sessionId\":\"abc-123\"}}` \
         to `hook.pre_tool`:\n\n\
         - exact-1: 1 sync handler; exact-10: 10 sync handlers;\n\
         - wild-100: 100 non-matching `svcN.*` patterns plus `hook.*` (only libraries with wildcards);\n\
         - async-1: 1 async handler, timed until every event is handled (ours: `Overflow::Block`, nothing dropped);\n\
         - fanout-10: 10 async handlers on the one type, the same way (each handles every event);\n\
         - threads-2: 2 publisher threads on one emitter, 1 handler.\n\n\
         **Ours:** `cargo bench -p bus-core --bench dispatch` (bus-core/benches/dispatch.rs, \
         history 100 and stats on), events/s from criterion's median time per iteration in \
         `estimates.json` and the elements per iteration in `benchmark.json`. Every bench asserts \
         that each event reached each handler.\n\n\
         **Peers:** `xtask/peers/python_peer.py` and `xtask/peers/node_peer.js`, one process per \
         library and workload, {} timed seconds after a short warm-up, {} run(s) each, median \
         reported. Each prints its counts; xtask checks delivered = events × handlers and that \
         no non-matching handler ran, else the cell is INVALID and no rate is reported.\n\n\
         - pyee: `EventEmitter` for the sync workloads, `pyee.asyncio.AsyncIOEventEmitter` for \
         async-1 (each emit schedules a task; batches of 20,000 are awaited until all ran).\n\
         - blinker: `Signal.send`; async-1 uses `send_async`, which awaits the receiver before \
         returning (no queue). blinker has no wildcards.\n\
         - Python threads-2: two `threading.Thread`s emitting on one emitter; CPython's GIL \
         runs one at a time, so this shows the GIL's cost, not parallelism.\n\
         - Node EventEmitter: async-1 uses an `async` listener (its body runs inside `emit`; \
         the batch then waits one `setImmediate`). No wildcards. threads-2 is n/a: an emitter \
         belongs to one thread (worker_threads would each need their own).\n\
         - EventEmitter2: `new EventEmitter2({{ wildcard: true }})`; async-1 awaits `emitAsync` \
         promises per batch of 20,000.\n\
         - Rust channels (`xtask/peers/rust`, release build): the main thread sends batches of \
         20,000 `(sequence number, shared payload)` messages losslessly into a channel of \
         10,000 (our default queue capacity), receiver tasks on a two-thread tokio runtime (as \
         the bus's own) count them, and each batch is timed until every receiver handled it; \
         each receiver checks it saw every sequence number once, in order. \
         `tokio::sync::broadcast` never waits for room (a full channel overwrites and \
         receivers lag), so its sender asks `len()` for room once its last known room is used \
         up and yields while there is none; flume's `send` and async-broadcast's \
         `broadcast_blocking` wait by themselves. flume has no broadcast (each message goes to \
         one receiver), so no fanout-10; channels have no sync handlers or patterns, so only \
         the queued workloads apply. Their runs alternate with ours through the same harness \
         (`rust-peers eventbus`), round by round, {} rounds (see the paired section).\n\n\
         **Memory:** peak RSS from `getrusage(RUSAGE_CHILDREN)` of a wrapper process whose only \
         child is the measured program (so it covers that program alone); for the daemon, \
         `VmHWM` from /proc while it runs.\n\n\
         ## Reproduce\n\n\
         ```sh\n\
         cargo xtask bench          # full run (criterion defaults, 3 runs per Python and Node peer, 9 Rust rounds)\n\
         cargo xtask bench --quick  # shorter settings (this file was written by a {} run)\n\
         ```\n\n\
         It needs python3 with the venv module (pyee and blinker are installed into \
         target/xtask-venv from xtask/requirements.txt) and node with npm (eventemitter2 is \
         installed into target/xtask-node from xtask/peers/package.json); a missing runtime is \
         reported in this file as \"not run\".",
        r.plan.seconds,
        r.plan.repeats,
        r.plan.rounds,
        if r.quick { "`--quick`" } else { "full" }
    );
}

/// `old` with the preamble and every `## ` section of `new` put in place of the ones with the
/// same heading, except the sections whose heading starts with one of `keep`, which stay as
/// they are in `old`. A section `old` lacks goes right after the one `new` puts before it
/// (at the end when it is `new`'s first).
pub(crate) fn replace_sections(old: &str, new: &str, keep: &[&str]) -> String {
    let (_, old_sections) = sections(old);
    let (preamble, new_sections) = sections(new);
    let mut out: Vec<String> = old_sections.iter().map(|s| s.to_string()).collect();
    // Where the last section of `new` handled so far sits in `out`.
    let mut previous: Option<usize> = None;
    for section in new_sections {
        let heading = section.lines().next().unwrap_or_default();
        let found = out.iter().position(|s| s.lines().next() == Some(heading));
        let at = match found {
            Some(at) => {
                if !keep.iter().any(|k| heading.starts_with(k)) {
                    out[at] = section.to_owned();
                }
                at
            }
            None => {
                let at = previous.map_or(out.len(), |p| p + 1);
                out.insert(at, section.to_owned());
                at
            }
        };
        previous = Some(at);
    }
    let body: Vec<&str> = out.iter().map(|s| s.trim_end()).collect();
    format!("{}\n\n{}\n", preamble.trim_end(), body.join("\n\n"))
}

/// The text before the first `## ` heading, and each section from its heading on.
pub(crate) fn sections(text: &str) -> (&str, Vec<&str>) {
    let mut starts: Vec<usize> = text.match_indices("\n## ").map(|(i, _)| i + 1).collect();
    if text.starts_with("## ") {
        starts.insert(0, 0);
    }
    let preamble = &text[..starts.first().copied().unwrap_or(text.len())];
    let sections = starts
        .iter()
        .enumerate()
        .map(|(k, &start)| &text[start..starts.get(k + 1).copied().unwrap_or(text.len())])
        .collect();
    (preamble, sections)
}

/// A rate in million events/s, with about three significant digits.
pub(crate) fn millions(rate: f64) -> String {
    let m = rate / 1e6;
    if m >= 10.0 {
        format!("{m:.1}")
    } else if m >= 1.0 {
        format!("{m:.2}")
    } else {
        format!("{m:.3}")
    }
}

/// Ours ÷ theirs, with two significant digits below 10.
fn ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}")
    } else if r >= 1.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1}", kb as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::replace_sections;

    #[test]
    fn sections_are_replaced_in_place_and_kept_ones_stay() {
        let old = "# T\nold preamble\n\n## A\nold a\n\n## Keep\nold keep\n\n## B\nold b\n";
        let new = "# T\nnew preamble\n\n## A\nnew a\n\n## Keep\nnew keep\n\n## C\nnew c\n";
        let merged = replace_sections(old, new, &["## Keep"]);
        assert_eq!(
            merged,
            "# T\nnew preamble\n\n## A\nnew a\n\n## Keep\nold keep\n\n## C\nnew c\n\n## B\nold b\n"
        );
    }

    #[test]
    fn a_new_section_goes_after_its_predecessor_and_a_lone_one_at_the_end() {
        let old = "# T\n\n## A\na\n\n## B\nb\n";
        let new = "# T\n\n## A\na2\n\n## New\nn\n";
        assert_eq!(
            replace_sections(old, new, &[]),
            "# T\n\n## A\na2\n\n## New\nn\n\n## B\nb\n"
        );
        let lone = "# T\n\n## Other\no\n";
        assert_eq!(
            replace_sections(old, lone, &[]),
            "# T\n\n## A\na\n\n## B\nb\n\n## Other\no\n"
        );
    }
}
