//! `eventbus tail` and `eventbus replay`: the durable log from the command line, over the
//! daemon's HTTP API (`GET /events`, `GET /events/stream`, `POST /events/replay`).
//!
//! `tail` prints one JSON event per line (NDJSON) on stdout, oldest first: what is stored
//! after `--after`/`--since` (everything stored without them), then with `-f` what arrives
//! live (only new events with `-f` alone). `replay` republishes stored events to the live
//! consumers, marked as replays, and prints a summary line. On a terminal both show progress
//! (count, rate, ETA) on stderr for long ranges.

use std::io::{BufRead, IsTerminal, Write};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

use crate::{Client, PublishError};

/// Where to start and what to select, shared by `tail` and `replay`.
#[derive(Clone, Debug, Default, Args)]
pub struct Selection {
    /// Only event types matching this glob, such as hook.*.
    #[arg(long, value_name = "PATTERN")]
    pub pattern: Option<String>,
    /// Start after this event id (from a POST reply, GET /events or a previous tail).
    #[arg(long, value_name = "ID")]
    pub after: Option<String>,
    /// Only events at or after this time: an age (10m, 2h, 7d) or RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
}

impl Selection {
    fn query(&self, after: Option<&str>, limit: usize) -> String {
        let mut q = format!("limit={limit}");
        for (key, value) in [
            ("pattern", self.pattern.as_deref()),
            ("after", after),
            ("since", self.since.as_deref()),
        ] {
            if let Some(v) = value {
                q.push_str(&format!("&{key}={}", encode(v)));
            }
        }
        q
    }
}

/// `eventbus tail`'s options.
#[derive(Clone, Debug, Args)]
pub struct TailArgs {
    /// What to print.
    #[command(flatten)]
    pub selection: Selection,
    /// Keep following: print new events as they are stored.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Only events this CEL condition matches, over type, id, timestamp and data, such as
    /// 'data.tool_name in ["Edit", "Write"]' (checked by the daemon: `?where=`).
    #[arg(long = "where", value_name = "CEL")]
    pub where_: Option<String>,
}

impl TailArgs {
    /// `&where=...` when a condition is given.
    fn where_param(&self) -> String {
        self.where_
            .as_deref()
            .map_or(String::new(), |w| format!("&where={}", encode(w)))
    }
}

/// `eventbus replay`'s options.
#[derive(Clone, Debug, Args)]
pub struct ReplayArgs {
    /// What to replay (`--after` or `--since` is required).
    #[command(flatten)]
    pub selection: Selection,
    /// Count what would be replayed, publish nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Events per request.
const PAGE: usize = 10_000;

/// Percent-encodes a query value (ids, globs and times are short ASCII, but `+`, `&`, `#`,
/// spaces and `?` must not change the query's meaning).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~*:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A progress bar on stderr when it is a terminal and the range is long; hidden otherwise.
fn progress(client: &Client, selection: &Selection, verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let Ok(stats) = client.call_json("GET", "/stats", None) else {
        return ProgressBar::hidden();
    };
    let last = stats["store"]["last_id"].as_u64().unwrap_or(0);
    let stored = stats["store"]["stored"].as_u64().unwrap_or(0);
    let after = selection
        .after
        .as_deref()
        .and_then(|a| a.parse::<u64>().ok());
    let estimate = after.map_or(stored, |a| last.saturating_sub(a).min(stored));
    if estimate < 10_000 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(estimate);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} {{pos}}/~{{len}} events ({{per_sec}}, ETA {{eta}}) {{wide_bar}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// A page of `GET /events` with its events left as text.
#[derive(serde::Deserialize)]
struct RawPage<'a> {
    #[serde(borrow)]
    events: Vec<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    next: Option<std::borrow::Cow<'a, str>>,
}

/// The id of one event, the rest skipped.
#[derive(serde::Deserialize)]
struct RawId<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
}

/// One fetched page: its text and its `next`, read from the text's end.
struct Fetched {
    text: String,
    next: Option<String>,
}

/// `eventbus tail`: prints the selected stored events, then (with `-f`) live ones.
pub fn tail(client: &Client, args: &TailArgs) -> Result<(), PublishError> {
    // Stdout is line-buffered: without this, every event would be a write of its own.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let write_failed =
        |e: std::io::Error| PublishError::Input(format!("cannot write to stdout: {e}"));
    let mut after = args.selection.after.clone();
    let backlog = !args.follow || after.is_some() || args.selection.since.is_some();
    if backlog {
        let bar = progress(client, &args.selection, "tail");
        // The next page is fetched while this one is parsed and printed: the daemon reads
        // while this process parses and the terminal (or pipe) writes.
        let (pages, printed) = std::sync::mpsc::sync_channel::<Result<Fetched, PublishError>>(2);
        let start = after.clone();
        after = std::thread::scope(|scope| {
            scope.spawn(move || fetch_pages(client, args, start, &pages));
            let mut follow_from = after.clone();
            for page in printed {
                let page = page?;
                let (events, next) = locate(client, &page.text)?;
                if next != page.next {
                    return Err(client.unexpected_text(&page.text));
                }
                for range in &events {
                    out.write_all(page.text[range.clone()].as_bytes())
                        .and_then(|()| out.write_all(b"\n"))
                        .map_err(write_failed)?;
                }
                bar.inc(events.len() as u64);
                follow_from = match (next, events.last()) {
                    (Some(next), _) => Some(next),
                    (None, Some(last)) => {
                        let text = &page.text[last.clone()];
                        let id: RawId<'_> =
                            serde_json::from_str(text).map_err(|e| client.unexpected(&e, text))?;
                        Some(id.id.into_owned())
                    }
                    (None, None) => follow_from,
                };
            }
            Ok::<_, PublishError>(follow_from)
        })?;
        bar.finish_and_clear();
        out.flush().map_err(write_failed)?;
    }
    if !args.follow {
        return Ok(());
    }
    // Live: the SSE stream from where the backlog ended (or from now).
    let mut params = Vec::new();
    if let Some(p) = &args.selection.pattern {
        params.push(format!("pattern={}", encode(p)));
    }
    if let Some(w) = &args.where_ {
        params.push(format!("where={}", encode(w)));
    }
    let query = if params.is_empty() {
        String::new()
    } else {
        format!("?{}", params.join("&"))
    };
    let reader = client.open_stream(&format!("/events/stream{query}"), after.as_deref())?;
    for line in reader.lines() {
        let line = line.map_err(|e| PublishError::Unreachable {
            addr: client.addr(),
            reason: format!("the event stream broke off: {e}"),
        })?;
        if let Some(data) = line.strip_prefix("data: ") {
            if data.starts_with('{') {
                writeln!(out, "{data}").map_err(write_failed)?;
                out.flush().map_err(write_failed)?;
            } else {
                // The daemon's final `event: error` (this client fell behind the retention).
                return Err(PublishError::Input(data.to_owned()));
            }
        }
    }
    Ok(())
}

/// Fetches the backlog page by page into `pages` until a page has no `next`, an error (sent
/// on for the printer to report), or the printer stops listening. Each page's `next` is read
/// from the end of its text, so the next request goes out before this page is parsed.
fn fetch_pages(
    client: &Client,
    args: &TailArgs,
    mut after: Option<String>,
    pages: &std::sync::mpsc::SyncSender<Result<Fetched, PublishError>>,
) {
    loop {
        let path = format!(
            "/events?{}{}",
            args.selection.query(after.as_deref(), PAGE),
            args.where_param()
        );
        let fetched = client.call_text("GET", &path, None).and_then(|text| {
            let next =
                crate::read::page_next(&text).ok_or_else(|| client.unexpected_text(&text))?;
            Ok(Fetched { text, next })
        });
        let next = fetched.as_ref().ok().and_then(|page| page.next.clone());
        if pages.send(fetched).is_err() {
            return; // the printer stopped (it reports why)
        }
        match next {
            Some(next) => after = Some(next),
            None => return,
        }
    }
}

/// Where each event of a `GET /events` page lies in its text, and the page's `next`: the
/// events are printed as the daemon wrote them, never parsed and printed again.
fn locate(
    client: &Client,
    text: &str,
) -> Result<(Vec<std::ops::Range<usize>>, Option<String>), PublishError> {
    let page: RawPage<'_> = serde_json::from_str(text).map_err(|e| client.unexpected(&e, text))?;
    let base = text.as_ptr() as usize;
    let events = page
        .events
        .iter()
        .map(|e| {
            let start = e.get().as_ptr() as usize - base;
            start..start + e.get().len()
        })
        .collect();
    Ok((events, page.next.map(std::borrow::Cow::into_owned)))
}

/// `eventbus replay`: republishes the selected stored events, page by page; returns the
/// summary `{"replayed": N, "dry_run": bool}`.
pub fn replay(client: &Client, args: &ReplayArgs) -> Result<Value, PublishError> {
    if args.selection.after.is_none() && args.selection.since.is_none() {
        return Err(PublishError::Input(
            "say where to start: --after ID or --since TIME (such as --since 10m)".into(),
        ));
    }
    let bar = progress(client, &args.selection, "replay");
    let mut after = args.selection.after.clone();
    let mut total = 0u64;
    loop {
        let mut query = args.selection.query(after.as_deref(), PAGE);
        if args.dry_run {
            query.push_str("&dry_run=true");
        }
        let page = client.call_json("POST", &format!("/events/replay?{query}"), None)?;
        let n = page["replayed"].as_u64().unwrap_or(0);
        total += n;
        bar.inc(n);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    bar.finish_and_clear();
    Ok(serde_json::json!({ "replayed": total, "dry_run": args.dry_run }))
}
