//! Reading exposition text in tests: a strict line-by-line check of the text format, and
//! value look-ups through the `prometheus-parse` crate.
//!
//! `prometheus-parse` alone is lenient (it skips lines it cannot read), so every line is
//! first checked here and any malformed line fails the test.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, HashSet};

use prometheus_parse::{Scrape, Value};

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s.contains(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E') => None,
        _ => s.parse().ok(),
    }
}

type Labels = Vec<(String, String)>;

/// Parsed `_bucket`s `(le, count)`, `_sum` and `_count` of one histogram series.
#[derive(Default)]
struct HistogramSeries {
    buckets: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: Option<f64>,
}

/// Parses `{a="b",c="d"}` from the start of `s`; returns the labels and the rest.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let mut rest = s.strip_prefix('{').ok_or("expected {")?;
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let name = &rest[..eq];
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value must be quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

/// The family a sample belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> &'a str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).is_some_and(|t| t == "histogram") {
                return base;
            }
        }
    }
    name
}

/// Checks the whole text against the exposition format (0.0.4) and the conventions the
/// crate promises: every family typed and described once, before its samples, samples of a
/// family together, no duplicate series, counters named `_total` and only counters,
/// histograms with non-decreasing buckets, a `+Inf` bucket equal to `_count`, and a `_sum`.
pub fn validate(text: &str) -> Result<(), String> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut helps: HashSet<String> = HashSet::new();
    let mut finished: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut series: HashSet<String> = HashSet::new();
    // histogram series, by family and labels without le
    let mut histograms: BTreeMap<String, HistogramSeries> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: String| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let name = name
                .filter(|n| is_metric_name(n))
                .ok_or_else(|| fail("bad name".into()))?;
            match keyword {
                Some("HELP") => {
                    if rest.is_none_or(str::is_empty) || !helps.insert(name.to_owned()) {
                        return Err(fail("empty or repeated HELP".into()));
                    }
                }
                Some("TYPE") => {
                    let kind = rest.unwrap_or_default();
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(fail(format!("unknown type {kind:?}")));
                    }
                    if types.insert(name.to_owned(), kind.to_owned()).is_some() {
                        return Err(fail("repeated TYPE".into()));
                    }
                    if (kind == "counter") != name.ends_with("_total") {
                        return Err(fail("counters, and only counters, end in _total".into()));
                    }
                }
                _ => return Err(fail("unknown comment".into())),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| fail("no value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(fail("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end..]).map_err(fail)?
        } else {
            (Vec::new(), &line[name_end..])
        };
        let mut fields = rest
            .strip_prefix(' ')
            .ok_or_else(|| fail("no space before value".into()))?
            .split(' ');
        let value = fields
            .next()
            .and_then(parse_value)
            .ok_or_else(|| fail("bad value".into()))?;
        if let Some(ts) = fields.next() {
            ts.parse::<i64>()
                .map_err(|_| fail("bad timestamp".into()))?;
        }
        if fields.next().is_some() {
            return Err(fail("trailing text".into()));
        }
        let family = family_of(name, &types).to_owned();
        if !types.contains_key(&family) {
            return Err(fail(format!("sample before the TYPE of {family}")));
        }
        if !helps.contains(&family) {
            return Err(fail(format!("{family} has no HELP")));
        }
        if current.as_deref() != Some(family.as_str()) {
            if finished.contains(&family) {
                return Err(fail(format!("samples of {family} are not together")));
            }
            if let Some(previous) = current.replace(family.clone()) {
                finished.insert(previous);
            }
        }
        let mut sorted = labels.clone();
        sorted.sort();
        if !series.insert(format!("{name}{sorted:?}")) {
            return Err(fail("duplicate series".into()));
        }
        if types[&family] == "histogram" {
            let le = labels
                .iter()
                .find(|(k, _)| k == "le")
                .map(|(_, v)| v.clone());
            let without_le: Vec<_> = sorted.iter().filter(|(k, _)| k != "le").collect();
            let entry = histograms
                .entry(format!("{family}{without_le:?}"))
                .or_default();
            match (name.strip_prefix(family.as_str()), le) {
                (Some("_bucket"), Some(le)) => {
                    let le = parse_value(&le).ok_or_else(|| fail("bad le".into()))?;
                    entry.buckets.push((le, value));
                }
                (Some("_sum"), None) => entry.sum = Some(value),
                (Some("_count"), None) => entry.count = Some(value),
                _ => return Err(fail("not a histogram sample".into())),
            }
        }
    }
    for (
        key,
        HistogramSeries {
            buckets,
            sum,
            count,
        },
    ) in &histograms
    {
        let count = count.ok_or(format!("{key}: no _count"))?;
        sum.ok_or(format!("{key}: no _sum"))?;
        if !buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        {
            return Err(format!("{key}: buckets not increasing: {buckets:?}"));
        }
        match buckets.last() {
            Some((le, n)) if le.is_infinite() && *n == count => {}
            _ => return Err(format!("{key}: +Inf bucket missing or != _count")),
        }
    }
    Ok(())
}

/// Validates, then parses with `prometheus-parse`.
pub fn parse(text: &str) -> Scrape {
    if let Err(why) = validate(text) {
        panic!("invalid exposition text: {why}\n{text}");
    }
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parse")
}

fn matches(sample: &prometheus_parse::Sample, name: &str, labels: &[(&str, &str)]) -> bool {
    sample.metric == name
        && sample.labels.len() == labels.len()
        && labels.iter().all(|(k, v)| sample.labels.get(k) == Some(*v))
}

/// The value of the counter, gauge or untyped series `name{labels}`; panics if absent.
pub fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| matches(s, name, labels))
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
    match &found[0].value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{name} is not a scalar: {other:?}"),
    }
}

/// The `(le, cumulative count)` buckets of histogram family `name` (without `_bucket`) and
/// `labels` (without `le`), `+Inf` included.
pub fn buckets(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Vec<(f64, u64)> {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|s| matches(s, name, labels))
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}");
    match &found[0].value {
        Value::Histogram(h) => h.iter().map(|b| (b.less_than, b.count as u64)).collect(),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

/// How many series named `name` there are.
pub fn series_count(scrape: &Scrape, name: &str) -> usize {
    scrape.samples.iter().filter(|s| s.metric == name).count()
}
