//! BENCHMARKS.md's section on the queued workloads run in alternating rounds: ours and each
//! Rust channel through the same harness, every ratio taken within one round.

use std::fmt::Write;

use super::peers::{Library, Paired, WORKLOADS, median};

/// The paired runs of `title` on `workload` (or why ours failed in them), if they ran.
pub(crate) fn find<'a>(
    libraries: &'a [Library],
    title: &str,
    workload: &str,
) -> Option<&'a Result<Paired, String>> {
    let i = WORKLOADS.iter().position(|w| *w == workload)?;
    libraries.iter().find(|l| l.title == title)?.paired[i].as_ref()
}

/// Writes the section; nothing when no library ran paired.
pub(crate) fn section(out: &mut String, libraries: &[Library], seconds: f64) {
    let paired: Vec<&Library> = libraries
        .iter()
        .filter(|l| l.paired.iter().any(Option::is_some))
        .collect();
    let Some(rounds) = paired
        .iter()
        .flat_map(|l| l.paired.iter().flatten())
        .map(|p| p.as_ref().map_or(0, |p| p.theirs.len()))
        .max()
    else {
        return;
    };
    let each_round = match rounds {
        1 => "one round runs".to_owned(),
        n => format!("each of {n} rounds runs"),
    };
    let _ = writeln!(
        out,
        "## Queued workloads in alternating rounds (ours ÷ theirs, median of the rounds)\n\n\
         Ours and the peers above are measured minutes apart, and this machine's speed can \
         change by 2× between runs. Here {each_round} every queued workload \
         on ours and then on each Rust channel, {seconds} s each, through one harness \
         (`rust-peers eventbus`: `EventBus::publish` into `on_async` handlers behind \
         `Overflow::Block` queues of 10,000, history 100 and stats on, the workers on the \
         harness's two-thread runtime, ids checked in order as the channels' sequence \
         numbers); each ratio compares two runs seconds apart. Range of the rounds in brackets.\n"
    );
    let mut header = "| Workload | eventbus (this harness) |".to_owned();
    let mut rule = "|---|---:|".to_owned();
    for library in &paired {
        let _ = write!(header, " {} |", library.title);
        rule.push_str("---:|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    let mut details = Vec::new();
    for (i, workload) in WORKLOADS.iter().enumerate() {
        let pairs: Vec<Option<&Result<Paired, String>>> =
            paired.iter().map(|l| l.paired[i].as_ref()).collect();
        let Some(ours) = pairs.iter().flatten().next() else {
            continue;
        };
        let ours = match ours {
            Ok(pair) => rate(median(&pair.ours)),
            Err(why) => {
                details.push(format!("- {workload}, ours: INVALID, {why}"));
                "INVALID".to_owned()
            }
        };
        let mut row = format!("| {workload} | {ours} |");
        for (library, pair) in paired.iter().zip(&pairs) {
            let cell = match pair {
                Some(Err(_)) => "INVALID".to_owned(),
                Some(Ok(pair)) => {
                    let ratios = pair.ratios();
                    details.push(format!(
                        "- {workload}, {}: ours {}; theirs {} (million events/s, round by round)",
                        library.title,
                        list(&pair.ours),
                        list(&pair.theirs)
                    ));
                    format!(
                        "{} ({}–{})",
                        times(median(&ratios)),
                        times(ratios[0]),
                        times(ratios[ratios.len() - 1])
                    )
                }
                None => "n/a".to_owned(),
            };
            let _ = write!(row, " {cell} |");
        }
        let _ = writeln!(out, "{row}");
    }
    let _ = writeln!(out);
    for line in details {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out);
}

/// A rate in million events/s, as the tables write it.
pub(crate) fn rate(events_per_second: f64) -> String {
    format!("{:.2}", events_per_second / 1e6)
}

/// Rates round by round, as the tables' notes write them.
pub(crate) fn list(rates: &[f64]) -> String {
    rates
        .iter()
        .map(|r| rate(*r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A ratio as the targets table writes it.
pub(crate) fn times(x: f64) -> String {
    format!("{x:.2}×")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::peers::Outcome;

    fn library(title: &str, paired: Option<Result<Paired, String>>) -> Library {
        let mut pairs = vec![None; WORKLOADS.len()];
        let async_1 = WORKLOADS.iter().position(|w| *w == "async-1").unwrap();
        pairs[async_1] = paired;
        Library {
            title: title.to_owned(),
            version: String::new(),
            outcomes: WORKLOADS
                .iter()
                .map(|_| Outcome::NotApplicable(String::new()))
                .collect(),
            paired: pairs,
        }
    }

    #[test]
    fn ratios_are_taken_within_rounds_and_the_median_reported() {
        // Round 2 is slow for both: compared across rounds, ours would look 2x off.
        let pair = Paired {
            ours: vec![4e6, 2e6, 4.4e6],
            theirs: vec![5e6, 2.5e6, 4e6],
        };
        assert_eq!(pair.ratios(), [0.8, 0.8, 1.1]);
        assert_eq!(pair.median_ratio(), 0.8);
        let libraries = [
            library("tokio broadcast", Some(Ok(pair))),
            library("pyee", None),
        ];
        assert!(find(&libraries, "tokio broadcast", "async-1").is_some());
        assert!(find(&libraries, "tokio broadcast", "fanout-10").is_none());
        let mut out = String::new();
        section(&mut out, &libraries, 2.0);
        assert!(
            out.contains("| async-1 | 4.00 | 0.80× (0.80×–1.10×) |"),
            "{out}"
        );
        assert!(
            out.contains("each of 3 rounds runs every queued workload"),
            "{out}"
        );
        assert!(
            out.contains("ours 4.00, 2.00, 4.40; theirs 5.00, 2.50, 4.00"),
            "{out}"
        );
        assert!(
            !out.contains("pyee"),
            "only the paired libraries get columns: {out}"
        );
    }

    #[test]
    fn ours_failing_its_delivery_check_shows_as_invalid() {
        let failed = Err("INVALID (delivered 9 of 10 handler calls)".to_owned());
        let libraries = [library("tokio broadcast", Some(failed))];
        let mut out = String::new();
        section(&mut out, &libraries, 2.0);
        assert!(out.contains("| async-1 | INVALID | INVALID |"), "{out}");
        assert!(
            out.contains("- async-1, ours: INVALID, INVALID (delivered 9"),
            "{out}"
        );
    }

    #[test]
    fn no_paired_runs_no_section() {
        let mut out = String::new();
        section(&mut out, &[library("pyee", None)], 2.0);
        assert!(out.is_empty());
    }
}
