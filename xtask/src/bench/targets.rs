//! BENCHMARKS.md's table of the targets, each with what this run measured.

use std::fmt::Write;

use super::paired::times;
use super::peers::{Outcome, WORKLOADS};
use super::report::{Results, millions};

/// Writes the targets table and the figures it leaves out.
pub(crate) fn section(out: &mut String, r: &Results) {
    let _ = writeln!(out, "## Targets (from the issue; this 2-core machine)\n");
    let _ = writeln!(out, "| Target | Measured | Result |\n|---|---:|---|");
    let get = |name: &str| r.ours.get(name).copied().unwrap_or(f64::NAN);
    let (exact, wild, asynchronous) = (get("exact-1"), get("wild-100"), get("async-1"));
    let (threads, crowded, fanout) = (get("threads-2"), get("exact-1+10k"), get("fanout-10"));
    let (exact_pt, threads_pt) = (
        get("exact-1-per-thread-ids"),
        get("threads-2-per-thread-ids"),
    );
    // Against a Rust channel, the median of the rounds that ran ours and it side by side;
    // criterion's rate against the channel's runs only when those did not run.
    let versus = |title: &str, workload: &str, ours: f64| match super::paired::find(
        &r.libraries,
        title,
        workload,
    ) {
        Some(Ok(pair)) => {
            let ratio = pair.median_ratio();
            (format!("{} (paired)", times(ratio)), ratio)
        }
        Some(Err(why)) => (
            format!("ours INVALID in the paired rounds: {why}"),
            f64::NAN,
        ),
        None => {
            let ratio = ours / peer_rate(r, title, workload);
            (times(ratio), ratio)
        }
    };
    let vs_broadcast = versus("tokio broadcast", "async-1", asynchronous);
    let vs_flume = versus("flume", "async-1", asynchronous);
    let fanout_vs_broadcast = versus("tokio broadcast", "fanout-10", fanout);
    let async_loop_rss = r
        .loops
        .iter()
        .find(|l| l.mode == "async")
        .map_or(f64::NAN, |l| l.peak_rss_kb as f64 / 1024.0);
    let rows = [
        (
            "exact-1 ≥ 12 million events/s (history and stats on)",
            millions(exact),
            exact >= 12e6,
        ),
        (
            "wild-100 within 1.5× of exact-1 (exact-1 ÷ wild-100 ≤ 1.5)",
            times(exact / wild),
            exact / wild <= 1.5,
        ),
        (
            "async-1 ≥ 3 million events/s",
            millions(asynchronous),
            asynchronous >= 3e6,
        ),
        (
            "async-1 ≥ 1.5× tokio broadcast async-1",
            vs_broadcast.0,
            vs_broadcast.1 >= 1.5,
        ),
        (
            "async-1 ≥ 1.0× flume async-1",
            vs_flume.0,
            vs_flume.1 >= 1.0,
        ),
        (
            "fanout-10 ≥ 1.0× tokio broadcast fanout-10",
            fanout_vs_broadcast.0,
            fanout_vs_broadcast.1 >= 1.0,
        ),
        (
            "threads-2 ≥ 1.5× the single-thread rate (threads-2 ÷ exact-1)",
            times(threads / exact),
            threads / exact >= 1.5,
        ),
        (
            "the same with `IdOrder::PerThread` (threads-2 ÷ exact-1, both on that bus)",
            times(threads_pt / exact_pt),
            threads_pt / exact_pt >= 1.5,
        ),
        (
            "10,000 non-matching subscriptions slow exact-1 by < 2× (exact-1 ÷ exact-1+10k)",
            times(exact / crowded),
            exact / crowded < 2.0,
        ),
        (
            "peak RSS of `publish_loop 10000000 async` < 8 MiB",
            format!("{async_loop_rss:.1} MiB"),
            async_loop_rss < 8.0,
        ),
    ];
    for (target, measured, met) in rows {
        let _ = writeln!(
            out,
            "| {target} | {measured} | {} |",
            if met { "met" } else { "MISS" }
        );
    }
    let _ = writeln!(
        out,
        "\n\"(paired)\": ours ÷ the channel in the alternating rounds of the next section, \
         where each ratio compares two runs seconds apart; the dispatch table's brackets \
         compare criterion's run with the channel's, minutes apart."
    );
    let _ = writeln!(
        out,
        "\nexact-1+10k (exact-1 with 10,000 non-matching subscriptions added) runs {} million events/s. \
         On a bus built with `IdOrder::PerThread` (each thread numbers its events from blocks \
         of ids of its own, so ids no longer follow acceptance order across threads) exact-1 runs {} \
         million and threads-2 {} million events/s.\n",
        millions(crowded),
        millions(exact_pt),
        millions(threads_pt)
    );
}

/// A peer's measured rate on a workload, if it has one.
fn peer_rate(r: &Results, title: &str, workload: &str) -> f64 {
    let i = WORKLOADS.iter().position(|w| *w == workload);
    r.libraries
        .iter()
        .find(|l| l.title == title)
        .zip(i)
        .and_then(|(l, i)| match &l.outcomes[i] {
            Outcome::Measured { rate, .. } => Some(*rate),
            _ => None,
        })
        .unwrap_or(f64::NAN)
}
