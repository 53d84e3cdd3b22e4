//! The dispatch table as a chart: one group of bars per workload, ours and every peer that
//! measured it, on a log scale (the rates span three orders of magnitude). Drawn with
//! plotters' SVG backend into `bench/dispatch.svg` beside BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use super::peers::{Library, Outcome, WORKLOADS};

/// Where the chart goes, relative to the workspace root (BENCHMARKS.md links it from there).
pub(crate) const PATH: &str = "bench/dispatch.svg";

/// One bar series: a library's title and its rate per workload (million events/s), if measured.
struct Series {
    title: String,
    rates: Vec<Option<f64>>,
}

/// Draws the chart of `ours` and `libraries` into `path`.
pub(crate) fn draw(
    path: &Path,
    ours: &BTreeMap<String, f64>,
    libraries: &[Library],
) -> Result<(), String> {
    let mut series = vec![Series {
        title: "eventbus (Rust)".into(),
        rates: WORKLOADS
            .iter()
            .map(|w| ours.get(*w).map(|r| r / 1e6))
            .collect(),
    }];
    series.extend(libraries.iter().map(|library| {
        Series {
            title: library.title.clone(),
            rates: library
                .outcomes
                .iter()
                .map(|outcome| match outcome {
                    Outcome::Measured { rate, .. } => Some(rate / 1e6),
                    _ => None,
                })
                .collect(),
        }
    }));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    plot(path, &series).map_err(|e| format!("drawing {}: {e}", path.display()))
}

fn plot(path: &Path, series: &[Series]) -> Result<(), Box<dyn std::error::Error>> {
    let all = series.iter().flat_map(|s| s.rates.iter().flatten());
    let (low, high) = all.fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    if low > high {
        return Err("nothing was measured".into());
    }
    // Whole decades around the data, so the log axis has round ticks, and one more on top
    // where the legend sits clear of the bars.
    let (bottom, top) = (
        10f64.powf(low.log10().floor()),
        10f64.powf(high.log10().ceil() + 1.0),
    );
    let root = SVGBackend::new(path, (1100, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let groups = WORKLOADS.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Dispatch throughput, million events/s (log scale; higher is better)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..groups - 0.5, (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(WORKLOADS.len())
        .x_label_formatter(&|x| {
            // Group i is centred on x = i, where the axis puts its ticks.
            let i = x.round();
            match WORKLOADS.get(i as usize) {
                Some(name) if (x - i).abs() < 1e-6 && i >= 0.0 => (*name).to_owned(),
                _ => String::new(),
            }
        })
        .y_desc("million events/s")
        .draw()?;
    let width = 0.8 / series.len() as f64;
    for (k, s) in series.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        let bars = s.rates.iter().enumerate().filter_map(|(i, rate)| {
            let rate = (*rate)?;
            let left = i as f64 - 0.4 + k as f64 * width;
            Some(Rectangle::new(
                [(left, bottom), (left + width * 0.9, rate)],
                colour.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(s.title.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
