//! The same workloads on other emitters: pyee and blinker (Python), Node's EventEmitter and
//! EventEmitter2, and the Rust channels `tokio::sync::broadcast`, flume and async-broadcast
//! (queued workloads only). Each run is a separate process (`xtask/peers/*`) that prints one
//! JSON line; a run whose delivery count is wrong is invalid and its rate is not reported.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::rss::{self, Finished};
use crate::{venv, workspace_root};

/// The workloads every library is asked to run, in report order.
pub(crate) const WORKLOADS: [&str; 6] = [
    "exact-1",
    "exact-10",
    "wild-100",
    "async-1",
    "fanout-10",
    "threads-2",
];

/// The Rust channels: column title, the name `rust-peers` takes, and the crate it comes from.
const RUST_PEERS: [(&str, &str, &str); 3] = [
    ("tokio broadcast", "broadcast", "tokio"),
    ("flume", "flume", "flume"),
    ("async-broadcast", "async-broadcast", "async-broadcast"),
];

/// The name our own harness run takes in `rust-peers`.
const OURS: &str = "eventbus";

/// What became of one library on one workload.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// Every run delivered every event: the median rate and the largest peak RSS.
    Measured { rate: f64, peak_rss_kb: u64 },
    /// The library cannot express the workload (the peer says why).
    NotApplicable(String),
    /// A run lost, duplicated or misrouted events, or crashed.
    Invalid(String),
    /// The runtime is missing, so nothing ran.
    NotRun(String),
}

/// One peer library and its outcome per workload (in the order of [`WORKLOADS`]).
pub(crate) struct Library {
    /// Column title.
    pub(crate) title: String,
    /// Name and version, for the versions list.
    pub(crate) version: String,
    /// One per workload.
    pub(crate) outcomes: Vec<Outcome>,
    /// One per workload: ours and this library through the same harness, run by run in
    /// alternating rounds (the Rust channels' queued workloads; `None` elsewhere), or why
    /// ours was not measured there (a delivery check failed: a bug of ours, never skipped).
    pub(crate) paired: Vec<Option<Result<Paired, String>>>,
}

/// Our rate and a library's through the same harness, one pair per round: each pair was
/// measured seconds apart, so the machine's swings between runs (2× on this VM) fall on
/// both sides of each ratio.
#[derive(Clone, Debug)]
pub(crate) struct Paired {
    /// Ours, in events/s, per round.
    pub(crate) ours: Vec<f64>,
    /// Theirs, in events/s, per round.
    pub(crate) theirs: Vec<f64>,
}

impl Paired {
    /// The per-round ratios ours ÷ theirs, smallest first.
    pub(crate) fn ratios(&self) -> Vec<f64> {
        let mut ratios: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.theirs)
            .map(|(ours, theirs)| ours / theirs)
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios
    }

    /// The median of [`ratios`](Self::ratios).
    pub(crate) fn median_ratio(&self) -> f64 {
        median(&self.ratios())
    }
}

/// The median of `values` (the upper one of an even count); NaN for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// How long and how often each peer workload runs.
pub(crate) struct Plan {
    /// Timed seconds per run.
    pub(crate) seconds: f64,
    /// Runs per workload of the Python and Node peers; the median rate is reported.
    pub(crate) repeats: usize,
    /// Rounds of the Rust channels and ours through their harness. More than `repeats`: a
    /// target's ratio is the median of the rounds' ratios, and on a noisy machine three
    /// rounds leave it at the mercy of one.
    pub(crate) rounds: usize,
}

/// An interpreter and the peer script it runs (none for a compiled peer).
struct Runner {
    interpreter: PathBuf,
    script: Option<PathBuf>,
    envs: Vec<(&'static str, String)>,
}

/// Runs every peer library on every workload.
pub(crate) fn run_all(plan: &Plan) -> Vec<Library> {
    let peers = workspace_root().join("xtask/peers");
    let mut libraries = rust_peers(plan);
    match venv::python() {
        Ok(python) => {
            let runner = Runner {
                interpreter: python.clone(),
                script: Some(peers.join("python_peer.py")),
                envs: Vec::new(),
            };
            let version = |package| python_package_version(&python, package);
            libraries.push(measure(
                &runner,
                "pyee (Python)",
                "pyee",
                version("pyee"),
                plan,
            ));
            libraries.push(measure(
                &runner,
                "blinker (Python)",
                "blinker",
                version("blinker"),
                plan,
            ));
        }
        Err(e) => {
            for name in ["pyee (Python)", "blinker (Python)"] {
                libraries.push(not_run(name, &format!("Python peers not run: {e}")));
            }
        }
    }
    let node_version = match command_output("node", &["--version"]) {
        Ok(version) => version,
        Err(e) => {
            let reason = format!("Node peers not run: node is not installed ({e})");
            libraries.push(not_run("Node EventEmitter", &reason));
            libraries.push(not_run("EventEmitter2 (Node)", &reason));
            return libraries;
        }
    };
    let node_modules = match crate::paths::in_target("xtask-node") {
        Ok(dir) => dir.join("node_modules"),
        Err(e) => {
            let reason = format!("Node peers not run: {e}");
            libraries.push(not_run("Node EventEmitter", &reason));
            libraries.push(not_run("EventEmitter2 (Node)", &reason));
            return libraries;
        }
    };
    let runner = Runner {
        interpreter: PathBuf::from("node"),
        script: Some(peers.join("node_peer.js")),
        envs: vec![("NODE_PATH", node_modules.display().to_string())],
    };
    let events_title = "Node EventEmitter";
    libraries.push(measure(
        &runner,
        events_title,
        "events",
        format!("EventEmitter (built into node {node_version})"),
        plan,
    ));
    match install_eventemitter2(&peers) {
        Ok(version) => {
            let version = format!("eventemitter2 {version}");
            libraries.push(measure(
                &runner,
                "EventEmitter2 (Node)",
                "eventemitter2",
                version,
                plan,
            ));
        }
        Err(e) => libraries.push(not_run("EventEmitter2 (Node)", &format!("not run: {e}"))),
    }
    libraries
}

/// The Rust channels, through the release `rust-peers` binary (xtask/peers/rust), in rounds
/// that also run ours through the same harness: each round runs every workload once on ours
/// and on each channel, one after another, so that each channel's rate can be paired with
/// ours from seconds before.
fn rust_peers(plan: &Plan) -> Vec<Library> {
    let built = crate::cargo(&["build", "--release", "-p", "rust-peers"])
        .and_then(|()| crate::paths::built_binary(crate::paths::Profile::Release, "rust-peers"));
    let program = match built {
        Ok(program) => program,
        Err(e) => {
            let reason = format!("Rust peers not run: {e}");
            return RUST_PEERS
                .iter()
                .map(|(title, ..)| not_run(title, &reason))
                .collect();
        }
    };
    let runner = Runner {
        interpreter: program,
        script: None,
        envs: Vec::new(),
    };
    let names: Vec<&str> = std::iter::once(OURS)
        .chain(RUST_PEERS.iter().map(|(_, name, _)| *name))
        .collect();
    // runs[library][workload]: one outcome per round.
    let mut runs = vec![vec![Vec::new(); WORKLOADS.len()]; names.len()];
    for round in 0..plan.rounds {
        for (w, workload) in WORKLOADS.iter().enumerate() {
            for (l, name) in names.iter().enumerate() {
                let so_far: &mut Vec<Outcome> = &mut runs[l][w];
                // A workload a library cannot run (or ran wrong) is not run again.
                if round > 0 && !matches!(so_far.last(), Some(Outcome::Measured { .. })) {
                    continue;
                }
                let outcome = run_once(&runner, name, workload, plan.seconds)
                    .unwrap_or_else(Outcome::Invalid);
                eprintln!(
                    "xtask: round {} {name} {workload}: {}",
                    round + 1,
                    describe(&outcome)
                );
                so_far.push(outcome);
            }
        }
    }
    let ours = &runs[0];
    RUST_PEERS
        .iter()
        .zip(&runs[1..])
        .map(|((title, _, krate), runs)| {
            let paired = runs
                .iter()
                .zip(ours)
                .map(|(outcomes, ours)| {
                    let theirs = rates(outcomes);
                    if theirs.is_empty() {
                        return None;
                    }
                    let ours_rates = rates(ours);
                    Some(if ours_rates.len() == theirs.len() {
                        Ok(Paired {
                            ours: ours_rates,
                            theirs,
                        })
                    } else {
                        Err(describe(&summarize(ours)))
                    })
                })
                .collect();
            Library {
                title: (*title).to_owned(),
                version: format!("{krate} {}", locked_version(krate)),
                outcomes: runs.iter().map(|outcomes| summarize(outcomes)).collect(),
                paired,
            }
        })
        .collect()
}

/// The rates of `outcomes`, in run order, if every run was measured; none otherwise.
fn rates(outcomes: &[Outcome]) -> Vec<f64> {
    let rates: Vec<f64> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            Outcome::Measured { rate, .. } => Some(*rate),
            _ => None,
        })
        .collect();
    if rates.len() == outcomes.len() {
        rates
    } else {
        Vec::new()
    }
}

/// One cell from a workload's runs: the median rate and largest peak RSS if every run was
/// measured, else the first run that was not.
fn summarize(outcomes: &[Outcome]) -> Outcome {
    if let Some(bad) = outcomes
        .iter()
        .find(|outcome| !matches!(outcome, Outcome::Measured { .. }))
    {
        return bad.clone();
    }
    let rates = rates(outcomes);
    let peak_rss_kb = outcomes
        .iter()
        .map(|outcome| match outcome {
            Outcome::Measured { peak_rss_kb, .. } => *peak_rss_kb,
            _ => 0,
        })
        .max()
        .unwrap_or(0);
    match rates.is_empty() {
        true => Outcome::Invalid("no run".to_owned()),
        false => Outcome::Measured {
            rate: median(&rates),
            peak_rss_kb,
        },
    }
}

/// The version of `krate` in the workspace's Cargo.lock (what `rust-peers` was built with).
fn locked_version(krate: &str) -> String {
    let lock = std::fs::read_to_string(workspace_root().join("Cargo.lock")).unwrap_or_default();
    let needle = format!("name = \"{krate}\"\nversion = \"");
    lock.split_once(&needle)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or_else(|| "(version unknown)".to_owned(), |(v, _)| v.to_owned())
}

fn not_run(title: &str, reason: &str) -> Library {
    eprintln!("xtask: {title}: {reason}");
    Library {
        title: title.to_owned(),
        version: format!("{title}: not run"),
        outcomes: WORKLOADS
            .iter()
            .map(|_| Outcome::NotRun(reason.to_owned()))
            .collect(),
        paired: vec![None; WORKLOADS.len()],
    }
}

fn measure(runner: &Runner, title: &str, library: &str, version: String, plan: &Plan) -> Library {
    let outcomes = WORKLOADS
        .iter()
        .map(|workload| {
            let outcome = measure_workload(runner, library, workload, plan);
            eprintln!("xtask: {title} {workload}: {}", describe(&outcome));
            outcome
        })
        .collect();
    Library {
        title: title.to_owned(),
        version,
        outcomes,
        paired: vec![None; WORKLOADS.len()],
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Measured { rate, peak_rss_kb } => {
            format!("{rate:.0} events/s, peak RSS {peak_rss_kb} KiB")
        }
        Outcome::NotApplicable(why) => format!("n/a ({why})"),
        Outcome::Invalid(why) => format!("INVALID ({why})"),
        Outcome::NotRun(why) => format!("not run ({why})"),
    }
}

/// Runs one workload `plan.repeats` times; any bad run makes the whole cell bad.
fn measure_workload(runner: &Runner, library: &str, workload: &str, plan: &Plan) -> Outcome {
    let mut outcomes = Vec::new();
    for _ in 0..plan.repeats {
        let outcome =
            run_once(runner, library, workload, plan.seconds).unwrap_or_else(Outcome::Invalid);
        let measured = matches!(outcome, Outcome::Measured { .. });
        outcomes.push(outcome);
        if !measured {
            break;
        }
    }
    summarize(&outcomes)
}

fn run_once(
    runner: &Runner,
    library: &str,
    workload: &str,
    seconds: f64,
) -> Result<Outcome, String> {
    let mut args: Vec<String> = runner
        .script
        .iter()
        .map(|script| script.display().to_string())
        .collect();
    args.extend([library.to_owned(), workload.to_owned(), seconds.to_string()]);
    let timeout = Duration::from_secs_f64(seconds * 20.0 + 60.0);
    let finished = rss::run_measured(&runner.interpreter, &args, &runner.envs, timeout)?;
    match finished.code {
        Some(0) => check(&finished, workload),
        Some(3) => Ok(Outcome::NotApplicable(finished.stderr.trim().to_owned())),
        code => Err(format!("exited with {code:?}: {}", finished.stderr.trim())),
    }
}

/// Checks the peer's counts: every event reached every handler once, and no other handler.
fn check(finished: &Finished, workload: &str) -> Result<Outcome, String> {
    let line = finished.stdout.trim().lines().last().unwrap_or_default();
    let report: Value =
        serde_json::from_str(line).map_err(|e| format!("bad JSON {line:?}: {e}"))?;
    let number = |field: &str| {
        report[field]
            .as_f64()
            .ok_or_else(|| format!("no {field} in {line}"))
    };
    let (events, seconds) = (number("events")?, number("seconds")?);
    let (delivered, misdelivered) = (number("delivered")?, number("misdelivered")?);
    let handlers = if workload == "exact-10" || workload == "fanout-10" {
        10.0
    } else {
        1.0
    };
    if events <= 0.0 || seconds <= 0.0 {
        return Ok(Outcome::Invalid(format!("nothing measured: {line}")));
    }
    if delivered != events * handlers || misdelivered != 0.0 {
        return Ok(Outcome::Invalid(format!(
            "delivered {delivered} of {} handler calls ({misdelivered} to non-matching handlers)",
            events * handlers
        )));
    }
    Ok(Outcome::Measured {
        rate: events / seconds,
        peak_rss_kb: finished.peak_rss_kb,
    })
}

/// Installs the pinned eventemitter2 into xtask-node in the target directory (once); returns its version.
fn install_eventemitter2(peers: &Path) -> Result<String, String> {
    let manifest = std::fs::read_to_string(peers.join("package.json"))
        .map_err(|e| format!("reading xtask/peers/package.json: {e}"))?;
    let pinned: Value = serde_json::from_str(&manifest)
        .map_err(|e| format!("parsing xtask/peers/package.json: {e}"))?;
    let pinned = pinned["dependencies"]["eventemitter2"]
        .as_str()
        .ok_or("xtask/peers/package.json does not pin eventemitter2")?
        .to_owned();
    let dir = crate::paths::in_target("xtask-node")?;
    let installed = dir.join("node_modules/eventemitter2/package.json");
    let installed_version = || -> Option<String> {
        let text = std::fs::read_to_string(&installed).ok()?;
        let value: Value = serde_json::from_str(&text).ok()?;
        value["version"].as_str().map(str::to_owned)
    };
    if installed_version().as_deref() == Some(pinned.as_str()) {
        return Ok(pinned);
    }
    command_output("npm", &["--version"]).map_err(|e| format!("npm is not installed ({e})"))?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    std::fs::write(dir.join("package.json"), &manifest)
        .map_err(|e| format!("writing {}/package.json: {e}", dir.display()))?;
    eprintln!(
        "xtask: npm install eventemitter2@{pinned} into {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .map_err(|e| format!("could not run npm: {e}"))?;
    match installed_version() {
        Some(version) if status.success() && version == pinned => Ok(version),
        other => Err(format!(
            "npm install failed ({status}; installed: {other:?})"
        )),
    }
}

fn python_package_version(python: &Path, package: &str) -> String {
    let script = format!("import importlib.metadata as m; print(m.version({package:?}))");
    match command_output(&python.display().to_string(), &["-c", &script]) {
        Ok(version) => format!("{package} {version}"),
        Err(e) => format!("{package} (version unknown: {e})"),
    }
}

/// Runs a short command and returns its trimmed stdout.
pub(crate) fn command_output(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("could not run {program}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`{program} {}` failed ({})",
            args.join(" "),
            output.status
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
