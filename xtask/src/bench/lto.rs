//! What cross-crate LTO gives a publish: `publish_loop sync` built with the workspace's
//! release profile (thin LTO, as the `eventbus` binary and the criterion benches are built)
//! against the same example built with the `release-no-lto` profile (cargo's default, no
//! LTO across crates: what a program using bus-core as a library gets unless it turns LTO
//! on), in alternating rounds, so that each ratio compares two runs seconds apart.

use std::fmt::Write;
use std::time::Duration;

use super::paired::{list, rate};
use super::peers::{Paired, median};
use crate::paths::Profile;

/// Both builds' rates, round by round (events/s).
pub(crate) struct LtoRuns {
    /// Events each run published.
    pub(crate) events: u64,
    /// `ours`: the release profile's build (thin LTO); `theirs`: the `release-no-lto` one.
    pub(crate) rounds: Paired,
}

/// Builds the example without cross-crate LTO (the LTO build is `measure_dispatch`'s) and runs
/// the two in alternating order.
pub(crate) fn run(quick: bool) -> Result<LtoRuns, String> {
    let mut build = vec!["build"];
    build.extend(Profile::ReleaseNoLto.cargo_flags());
    build.extend(["-p", "bus-core", "--example", "publish_loop"]);
    crate::cargo(&build)?;
    let with = crate::paths::built_example(Profile::Release, "publish_loop")?;
    let without = crate::paths::built_example(Profile::ReleaseNoLto, "publish_loop")?;
    let (events, rounds) = if quick {
        (1_000_000, 2)
    } else {
        (5_000_000, 7)
    };
    let mut runs = LtoRuns {
        events,
        rounds: Paired {
            ours: Vec::new(),
            theirs: Vec::new(),
        },
    };
    for round in 0..rounds {
        // Alternating which goes first, so that neither always meets the machine warmer.
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for lto in order {
            let program = if lto { &with } else { &without };
            let rate = super::loop_rate(program, "sync", events, Duration::from_secs(300))?.0;
            if lto {
                runs.rounds.ours.push(rate);
            } else {
                runs.rounds.theirs.push(rate);
            }
        }
    }
    eprintln!(
        "xtask: publish_loop {events} sync, thin LTO ÷ none: {:.2}×",
        runs.rounds.median_ratio()
    );
    Ok(runs)
}

/// Writes the section.
pub(crate) fn section(out: &mut String, runs: &Result<LtoRuns, String>) {
    let _ = writeln!(out, "## Built with and without cross-crate LTO\n");
    let runs = match runs {
        Ok(runs) => runs,
        Err(why) => {
            let _ = writeln!(out, "Not measured: {why}.\n");
            return;
        }
    };
    let no_lto = Profile::ReleaseNoLto.dir_name();
    let _ = writeln!(
        out,
        "The workspace's release profile (which the criterion benches above and the `eventbus` \
         binary use) turns on thin LTO, so that the publish path inlines what it calls in other \
         crates (the clock, the standard library's time and queue code). A program that uses \
         bus-core as a library decides that in its own profile; cargo's default is no LTO \
         across crates (the `{no_lto}` profile here). `publish_loop {} sync` (one sync \
         handler, history and stats on), {} alternating rounds:\n\n\
         | Build | Median (million events/s) | Rounds |\n|---|---:|---|\n\
         | thin LTO (release) | {} | {} |\n\
         | no LTO across crates ({no_lto}) | {} | {} |\n\n\
         Thin LTO ÷ none, median of the rounds' ratios: {:.2}×. To get the same in a program \
         of your own, set `lto = \"thin\"` under `[profile.release]` in its Cargo.toml.\n",
        runs.events,
        runs.rounds.ours.len(),
        rate(median(&runs.rounds.ours)),
        list(&runs.rounds.ours),
        rate(median(&runs.rounds.theirs)),
        list(&runs.rounds.theirs),
        runs.rounds.median_ratio()
    );
}
