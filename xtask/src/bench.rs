//! `cargo xtask bench [--quick]`: bus-core's criterion benchmarks and the same workloads on
//! pyee, blinker, Node's EventEmitter and EventEmitter2, then the daemon's HTTP ingest and
//! the relay's rate to python-socketio, the durable log, the hook path, priorities and rate
//! limits, the Redis backend (redis-benchmark, ingest, latency across daemons), and the web
//! view in headless Chromium under a 5-minute flood; writes BENCHMARKS.md
//! at the workspace root.

mod chart;
mod criterion;
mod hookpath;
mod limits;
mod lto;
mod machine;
mod paired;
mod peers;
mod redis;
mod report;
mod rss;
mod rules;
mod services;
mod store;
mod targets;
mod webview;

use std::time::{Duration, Instant};

use crate::{TaskResult, workspace_root};

/// Runs the benchmarks and writes BENCHMARKS.md.
pub(crate) fn run(args: &[String]) -> TaskResult {
    if args.first().map(String::as_str) == Some(rss::WRAPPER_FLAG) {
        return rss::wrapper(&args[1..]);
    }
    if args.iter().any(|a| a == "--hook") {
        // The hook path alone, spliced into the existing BENCHMARKS.md.
        services::build()?;
        let result = hookpath::run();
        let path = workspace_root().join("BENCHMARKS.md");
        store::splice(&path, &hookpath::render(&result))?;
        eprintln!("xtask: wrote the hook-path section of {}", path.display());
        return result.map(|_| ());
    }
    if args.iter().any(|a| a == "--dispatch") {
        // The in-process part alone (ours, the peers, the chart, memory), spliced in.
        let quick = args.iter().any(|a| a == "--quick");
        let result = dispatch_only(quick);
        rss::remove_wrapper_binary();
        return result;
    }
    if args.iter().any(|a| a == "--limits") {
        // Priorities and rate limits alone, spliced into the existing BENCHMARKS.md.
        let quick = args.iter().any(|a| a == "--quick");
        let result = limits::run(quick);
        let path = workspace_root().join("BENCHMARKS.md");
        store::splice(&path, &limits::render(&result))?;
        eprintln!("xtask: wrote the limits section of {}", path.display());
        return limits::check(&result);
    }
    if args.iter().any(|a| a == "--rules") {
        // Schema validation and CEL conditions alone, spliced into the existing BENCHMARKS.md.
        rules::build()?;
        let quick = args.iter().any(|a| a == "--quick");
        let result = rules::run(quick);
        let path = workspace_root().join("BENCHMARKS.md");
        store::splice(&path, &rules::render(&result))?;
        eprintln!(
            "xtask: wrote the validating-and-routing section of {}",
            path.display()
        );
        return result.map(|_| ());
    }
    if args.iter().any(|a| a == "--store") {
        // The durable log's part alone, spliced into the existing BENCHMARKS.md.
        services::build()?;
        let quick = args.iter().any(|a| a == "--quick");
        let result = store::run(quick);
        let path = workspace_root().join("BENCHMARKS.md");
        store::splice(&path, &store::render(&result))?;
        eprintln!("xtask: wrote the durable-log section of {}", path.display());
        return result.map(|_| ());
    }
    if args.iter().any(|a| a == "--redis") {
        // The Redis backend alone (redis-benchmark, ingest, latency), spliced in.
        services::build()?;
        let quick = args.iter().any(|a| a == "--quick");
        let result = redis::run(quick);
        let path = workspace_root().join("BENCHMARKS.md");
        store::splice(&path, &redis::render(&result))?;
        eprintln!("xtask: wrote the Redis section of {}", path.display());
        return redis::check(&result);
    }
    if args.iter().any(|a| a == "--webview") {
        // The web view's memory soak alone, spliced into the existing BENCHMARKS.md.
        let quick = args.iter().any(|a| a == "--quick");
        let result = webview::run(quick);
        let path = workspace_root().join("BENCHMARKS.md");
        store::splice(&path, &webview::render(&result))?;
        eprintln!("xtask: wrote the web view section of {}", path.display());
        return webview::check(&result);
    }
    let quick = match args {
        [] => false,
        [flag] if flag == "--quick" => true,
        other => {
            return Err(format!(
                "bench takes --quick, --dispatch, --store, --redis, --hook, --limits, --rules and --webview, not {other:?}"
            ));
        }
    };
    let result = measure_and_write(quick);
    rss::remove_wrapper_binary();
    result
}

/// What the in-process part measured: ours, our long loops, and the peers.
struct Dispatch {
    ours: std::collections::BTreeMap<String, f64>,
    loops: Vec<report::LoopRun>,
    lto: Result<lto::LtoRuns, String>,
    rss_floor_kb: Result<u64, String>,
    plan: peers::Plan,
    libraries: Vec<peers::Library>,
}

fn measure_dispatch(quick: bool) -> Result<Dispatch, String> {
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "bus-core",
        "--example",
        "publish_loop",
    ])?;
    let ours = criterion::run(quick)?;
    let loop_events = if quick { 2_000_000 } else { 10_000_000 };
    let loops = vec![
        publish_loop("sync", loop_events)?,
        publish_loop("async", loop_events)?,
    ];
    let lto = lto::run(quick);
    let rss_floor_kb = rss::run_measured(
        std::path::Path::new("true"),
        &[],
        &[],
        Duration::from_secs(30),
    )
    .map(|finished| finished.peak_rss_kb);
    let plan = peers::Plan {
        seconds: if quick { 0.5 } else { 2.0 },
        repeats: if quick { 1 } else { 3 },
        rounds: if quick { 1 } else { 9 },
    };
    let libraries = peers::run_all(&plan);
    let chart = workspace_root().join(chart::PATH);
    chart::draw(&chart, &ours, &libraries)?;
    eprintln!("xtask: drew {}", chart.display());
    Ok(Dispatch {
        ours,
        loops,
        lto,
        rss_floor_kb,
        plan,
        libraries,
    })
}

/// `--dispatch`: the in-process sections of BENCHMARKS.md measured again and replaced in
/// place; the daemon's sections are left as they were.
fn dispatch_only(quick: bool) -> TaskResult {
    let machine = machine::describe();
    let d = measure_dispatch(quick)?;
    let skipped = "not measured in a --dispatch run";
    let results = report::Results {
        quick,
        scope: " --dispatch",
        machine,
        load_at_end: machine::load_average(),
        ours: d.ours,
        loops: d.loops,
        lto: d.lto,
        rss_floor_kb: d.rss_floor_kb,
        plan: d.plan,
        libraries: d.libraries,
        ingest: Err(skipped.to_owned()),
        relay: Err(skipped.to_owned()),
    };
    let path = workspace_root().join("BENCHMARKS.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = report::replace_sections(
        &old,
        &report::render(&results),
        &["## Daemon HTTP ingest", "## Relay to"],
    );
    std::fs::write(&path, new).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("xtask: wrote the dispatch sections of {}", path.display());
    Ok(())
}

fn measure_and_write(quick: bool) -> TaskResult {
    let started = Instant::now();
    // Before anything of ours adds to it.
    let machine = machine::describe();
    services::build()?;
    let Dispatch {
        ours,
        loops,
        lto,
        rss_floor_kb,
        plan,
        libraries,
    } = measure_dispatch(quick)?;

    eprintln!("xtask: daemon ingest");
    let ingest = services::ingest(if quick { 1.5 } else { 5.0 });
    eprintln!("xtask: relay to python-socketio");
    let relay = if quick {
        services::relay(5_000, 500)
    } else {
        services::relay(20_000, 2_000)
    };

    let results = report::Results {
        quick,
        scope: "",
        machine,
        load_at_end: machine::load_average(),
        ours,
        loops,
        lto,
        rss_floor_kb,
        plan,
        libraries,
        ingest,
        relay,
    };
    eprintln!("xtask: the durable log");
    let store = store::run(quick);
    eprintln!("xtask: the Redis backend");
    let redis = redis::run(quick);
    eprintln!("xtask: the hook path");
    let hook = hookpath::run();
    eprintln!("xtask: priorities and rate limits");
    let limits = limits::run(quick);
    eprintln!("xtask: the web view under a flood");
    let web = webview::run(quick);
    let path = workspace_root().join("BENCHMARKS.md");
    std::fs::write(&path, report::render(&results))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    store::splice(&path, &store::render(&store))?;
    store::splice(&path, &redis::render(&redis))?;
    store::splice(&path, &hookpath::render(&hook))?;
    store::splice(&path, &limits::render(&limits))?;
    store::splice(&path, &webview::render(&web))?;
    eprintln!(
        "xtask: wrote {} in {:.0} s",
        path.display(),
        started.elapsed().as_secs_f64()
    );
    // The file records the failure; the run still fails.
    results.ingest.map_err(|e| format!("daemon ingest: {e}"))?;
    results.relay.map_err(|e| format!("relay: {e}"))?;
    limits::check(&limits).map_err(|e| format!("limits: {e}"))?;
    redis::check(&redis).map_err(|e| format!("redis: {e}"))?;
    webview::check(&web)?;
    Ok(())
}

/// Runs our release `publish_loop` example (which asserts every event was handled) for its
/// peak RSS and its rate over one long run.
fn publish_loop(mode: &'static str, events: u64) -> Result<report::LoopRun, String> {
    let program = crate::paths::built_example(crate::paths::Profile::Release, "publish_loop")?;
    let (rate, peak_rss_kb) = loop_rate(&program, mode, events, Duration::from_secs(600))?;
    eprintln!(
        "xtask: publish_loop {events} {mode}: {:.2} million events/s, peak RSS {peak_rss_kb} KiB",
        rate / 1e6
    );
    Ok(report::LoopRun {
        mode,
        events,
        rate,
        peak_rss_kb,
    })
}

/// Runs a build of `publish_loop` once: its rate (events/s) and peak RSS (KiB).
fn loop_rate(
    program: &std::path::Path,
    mode: &str,
    events: u64,
    limit: Duration,
) -> Result<(f64, u64), String> {
    let args = [events.to_string(), mode.to_owned()];
    let finished = rss::run_measured(program, &args, &[], limit)?;
    if finished.code != Some(0) {
        return Err(format!(
            "{} {events} {mode} failed ({:?}): {}",
            program.display(),
            finished.code,
            finished.stderr.trim()
        ));
    }
    // It prints `N events in T: R million events/s` on stderr.
    let rate = finished
        .stderr
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|r| r.parse::<f64>().ok())
        .ok_or_else(|| format!("publish_loop printed no rate: {}", finished.stderr.trim()))?;
    Ok((rate * 1e6, finished.peak_rss_kb))
}
