//! Writes metric families in the Prometheus text exposition format (version 0.0.4).

use std::fmt::Write;

use bus_core::DurationHistogram;

use crate::names::Described;

/// The content type of the text this crate renders.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and line feed.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `{k="v",...}` (nothing for no labels).
fn write_labels(out: &mut String, labels: &[(&str, &str)]) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"{}\"", escape_label_value(value));
    }
    out.push('}');
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub(crate) fn write_header(out: &mut String, (name, help): Described, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Writes one sample line.
pub(crate) fn write_sample(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    value: impl std::fmt::Display,
) {
    out.push_str(name);
    write_labels(out, labels);
    let _ = writeln!(out, " {value}");
}

/// Writes the `_bucket`, `_sum` and `_count` samples of one histogram series.
pub(crate) fn write_histogram(
    out: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    histogram: &DurationHistogram,
) {
    let bucket = format!("{name}_bucket");
    let with_le = |le: &str| -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.push(("le".into(), le.into()));
        all
    };
    let mut write_bucket = |le: &str, count: u64| {
        let owned = with_le(le);
        let borrowed: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        write_sample(out, &bucket, &borrowed, count);
    };
    for (le, count) in &histogram.buckets {
        write_bucket(&le.to_string(), *count);
    }
    write_bucket("+Inf", histogram.count);
    write_sample(out, &format!("{name}_sum"), labels, histogram.sum_seconds);
    write_sample(out, &format!("{name}_count"), labels, histogram.count);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label_value("x\ny"), r"x\ny");
    }

    #[test]
    fn histograms_have_buckets_inf_sum_and_count() {
        let mut out = String::new();
        let h = DurationHistogram {
            buckets: vec![(0.000_005, 1), (0.5, 2)],
            sum_seconds: 0.25,
            count: 3,
        };
        write_histogram(&mut out, "d_seconds", &[("s", "x")], &h);
        assert_eq!(
            out,
            "d_seconds_bucket{s=\"x\",le=\"0.000005\"} 1\n\
             d_seconds_bucket{s=\"x\",le=\"0.5\"} 2\n\
             d_seconds_bucket{s=\"x\",le=\"+Inf\"} 3\n\
             d_seconds_sum{s=\"x\"} 0.25\n\
             d_seconds_count{s=\"x\"} 3\n"
        );
    }
}
