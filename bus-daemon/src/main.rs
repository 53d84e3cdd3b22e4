//! `eventbus`: the event bus daemon (`serve`), its client (`publish`) and `config`.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use bus_config::{ClientSettings, Config};
use bus_daemon::{Client, Daemon, Outcome, PublishError, ServeError};
use clap::{Parser, Subcommand};

/// The eventbus daemon: an in-process event bus behind a small HTTP API, with logging,
/// metrics and an optional Socket.IO relay to the claude-mpm dashboard.
///
/// Configured with CLAUDE_MPM_* environment variables; `eventbus config` lists them.
#[derive(Debug, Parser)]
#[command(name = "eventbus", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon (the default when no command is given).
    Serve,
    /// Publish to a running daemon: `publish TYPE [JSON]`, or `publish -` for NDJSON on stdin
    /// (one {"type": ..., "data": ...} object per line).
    Publish {
        /// The daemon's address (default: CLAUDE_MPM_EVENTBUS_HTTP_ADDR, else 127.0.0.1:8770).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<String>,
        /// The event type, such as hook.pre_tool; `-` reads NDJSON events from stdin.
        #[arg(value_name = "TYPE")]
        event_type: String,
        /// The payload, as JSON (default: null).
        #[arg(value_name = "JSON")]
        data: Option<String>,
    },
    /// A Claude Code hook command: publishes the hook input on stdin as `hook.<subtype>`; prints
    /// nothing, always exits 0, spools the event while the daemon is down.
    Hook(bus_daemon::hook::HookArgs),
    /// Print stored events as NDJSON, oldest first (`--since 10m`, `--after ID`, `--pattern P`);
    /// `-f` follows live.
    Tail {
        /// The daemon's address (default: CLAUDE_MPM_EVENTBUS_HTTP_ADDR, else 127.0.0.1:8770).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<String>,
        #[command(flatten)]
        args: bus_daemon::logcmd::TailArgs,
    },
    /// Republish stored events to the live consumers, marked as replays (`--after ID` or
    /// `--since T`, `--pattern P`, `--dry-run`).
    Replay {
        /// The daemon's address (default: CLAUDE_MPM_EVENTBUS_HTTP_ADDR, else 127.0.0.1:8770).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<String>,
        #[command(flatten)]
        args: bus_daemon::logcmd::ReplayArgs,
    },
    /// Print the URL of the daemon's web view (a live view of the bus), once the daemon
    /// answers there.
    Open {
        /// The daemon's address (default: CLAUDE_MPM_EVENTBUS_HTTP_ADDR, else 127.0.0.1:8770).
        #[arg(long, value_name = "IP:PORT")]
        addr: Option<String>,
    },
    /// Print the effective configuration (token masked) and exit.
    Config {
        /// Print it as JSON instead of NAME=value lines.
        #[arg(long)]
        json: bool,
    },
}

/// A failure, with the exit code it maps to: 2 for bad input or configuration, 3 and 4 for
/// events `publish` sent that the bus refused or filtered, 1 otherwise.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return bus_daemon::hook::refused_command_line(e),
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(),
        Command::Publish {
            addr,
            event_type,
            data,
        } => publish(addr, event_type, data),
        Command::Config { json } => print_config(json),
        Command::Open { addr } => open(addr),
        Command::Tail { addr, args } => log_client(addr)
            .and_then(|c| bus_daemon::logcmd::tail(&c, &args).map_err(publish_failure)),
        Command::Replay { addr, args } => log_client(addr).and_then(|c| {
            let summary = bus_daemon::logcmd::replay(&c, &args).map_err(publish_failure)?;
            write_stdout(&format!("{summary}\n"))
        }),
        Command::Hook(args) => return bus_daemon::hook::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("eventbus: error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn load_config() -> Result<Config, Failure> {
    let config = Config::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    for warning in &config.warnings {
        eprintln!("eventbus: warning: {warning}");
    }
    Ok(config)
}

fn print_config(json: bool) -> Result<(), Failure> {
    let config = load_config()?;
    let text = if json {
        serde_json::to_string_pretty(&config.to_json())
            .map_err(|e| Failure::usage(e.to_string()))?
            + "\n"
    } else {
        config.render_env()
    };
    write_stdout(&text)
}

fn write_stdout(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot write to stdout: {e}"),
        })
}

fn serve() -> Result<(), Failure> {
    let config = load_config()?;
    bus_config::wiring::install_logging(&config).map_err(Failure::usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("eventbus")
        .build()
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot start the async runtime: {e}"),
        })?;
    let outcome = runtime.block_on(async {
        let stop = bus_daemon::shutdown_signal();
        let daemon = Daemon::start(&config).await?;
        for warning in daemon.warnings() {
            eprintln!("eventbus: warning: {warning}");
        }
        eprintln!(
            "eventbus: listening on http://{} (consumers: {}; auth: {}); web view: {}",
            daemon.local_addr(),
            if daemon.consumers().is_empty() {
                "none".to_owned()
            } else {
                daemon.consumers().join(", ")
            },
            if config.http.token.is_some() {
                "bearer token"
            } else {
                "none"
            },
            bus_daemon::ui::page_url(daemon.local_addr()),
        );
        daemon.run(stop).await
    });
    match outcome {
        Ok(outcome) => {
            report_shutdown(&outcome);
            Ok(())
        }
        Err(e) => Err(Failure {
            code: match e {
                ServeError::Server(_) => 1,
                _ => 2,
            },
            message: e.to_string(),
        }),
    }
}

fn report_shutdown(outcome: &Outcome) {
    let report = &outcome.report;
    if report.undelivered == 0 {
        eprintln!(
            "eventbus: shut down: every consumer drained its queue{}",
            if report.complete {
                ""
            } else {
                " (some did not finish their own shutdown in time)"
            }
        );
    } else {
        let who: Vec<String> = report
            .subscribers
            .iter()
            .map(|s| format!("{} ({} queued, {} held)", s.name, s.queued, s.held))
            .collect();
        eprintln!(
            "eventbus: shut down: {} events could not be delivered in time: {}",
            report.undelivered,
            who.join(", ")
        );
    }
    let stats = &outcome.stats;
    eprintln!(
        "eventbus: totals: published {}, filtered {}, failed {}, dropped {}",
        stats.events_published, stats.events_filtered, stats.events_failed, stats.events_dropped
    );
    for sub in stats.subscribers.iter().filter(|s| s.queue_capacity > 0) {
        eprintln!(
            "eventbus: consumer {}: delivered {}, failed {}, dropped from its bus queue {}",
            sub.name, sub.delivered, sub.failed, sub.dropped
        );
    }
    // A consumer's own figures (the relay's buffer drops, say) are not the bus's row above.
    for (key, figures) in &outcome.consumer_stats {
        let Some(fields) = figures.as_object() else {
            continue;
        };
        let numbers: Vec<String> = fields
            .iter()
            .filter(|(_, v)| v.is_number())
            .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
            .collect();
        if !numbers.is_empty() {
            eprintln!("eventbus: {key}: {}", numbers.join(", "));
        }
    }
}

/// A client for `tail` and `replay`: the daemon's address and token as `publish` finds them.
fn log_client(addr: Option<String>) -> Result<Client, Failure> {
    let settings = ClientSettings::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let addr: SocketAddr = match addr {
        Some(raw) => bus_config::parse_addr(&raw)
            .map_err(|expected| Failure::usage(format!("--addr {raw:?}: expected {expected}")))?,
        None => settings.addr,
    };
    Client::new(addr, settings.token).map_err(publish_failure)
}

/// `eventbus open`: the page's URL on stdout, once `GET /healthz` answers there.
fn open(addr: Option<String>) -> Result<(), Failure> {
    let client = log_client(addr)?;
    let url = bus_daemon::ui::page_url(client.addr());
    client
        .call_json("GET", "/healthz", None)
        .map_err(|e| Failure {
            code: 1,
            message: format!(
                "{e}; the web view would be at {url} once `eventbus serve` runs there"
            ),
        })?;
    write_stdout(&format!("{url}\n"))
}

fn publish(addr: Option<String>, event_type: String, data: Option<String>) -> Result<(), Failure> {
    let settings = ClientSettings::from_env().map_err(|e| Failure::usage(e.to_string()))?;
    let addr: SocketAddr = match addr {
        Some(raw) => bus_config::parse_addr(&raw)
            .map_err(|expected| Failure::usage(format!("--addr {raw:?}: expected {expected}")))?,
        None => settings.addr,
    };
    let client = Client::new(addr, settings.token).map_err(publish_failure)?;
    let request = if event_type == "-" {
        if data.is_some() {
            return Err(Failure::usage(
                "`publish -` reads NDJSON events from stdin and takes no JSON argument",
            ));
        }
        let mut body = Vec::new();
        std::io::stdin()
            .read_to_end(&mut body)
            .map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
        Request::Ndjson(body)
    } else {
        let data = match data {
            None => serde_json::Value::Null,
            Some(raw) => serde_json::from_str(&raw).map_err(|e| {
                Failure::usage(format!(
                    "the JSON argument is not valid JSON ({e}); quote it, e.g. '{{\"tool\": \"Read\"}}'"
                ))
            })?,
        };
        Request::One(event_type, data)
    };
    let reply = match request {
        Request::Ndjson(body) => client.publish_ndjson(&body),
        Request::One(t, d) => client.publish(&t, &d),
    }
    .map_err(publish_failure)?;
    let line = serde_json::to_string(&reply).map_err(|e| Failure::usage(e.to_string()))?;
    write_stdout(&(line + "\n"))?;
    not_all_accepted(&reply).map_or(Ok(()), Err)
}

/// Exit code of `eventbus publish` when the daemon refused events because the bus is off or
/// shutting down.
const EXIT_REFUSED: u8 = 3;
/// Exit code of `eventbus publish` when the bus's filters dropped events (and none was
/// refused).
const EXIT_FILTERED: u8 = 4;

/// The failure for a reply that did not take every event: 3 when some were refused, else 4
/// when some were filtered.
fn not_all_accepted(reply: &bus_daemon::IngestReply) -> Option<Failure> {
    let total = reply.accepted + reply.refused + reply.filtered;
    if reply.refused > 0 {
        Some(Failure {
            code: EXIT_REFUSED,
            message: format!(
                "{} of {total} events refused: the bus is disabled or shutting down (CLAUDE_MPM_EVENTBUS_ENABLED, PATCH /config)",
                reply.refused
            ),
        })
    } else if reply.filtered > 0 {
        Some(Failure {
            code: EXIT_FILTERED,
            message: format!(
                "{} of {total} events filtered out by the bus's filters (CLAUDE_MPM_EVENTBUS_FILTERS, GET /config)",
                reply.filtered
            ),
        })
    } else {
        None
    }
}

enum Request {
    One(String, serde_json::Value),
    Ndjson(Vec<u8>),
}

fn publish_failure(e: PublishError) -> Failure {
    Failure {
        code: match e {
            PublishError::Input(_) => 2,
            // Events that break their schema: the input was well-formed, the content refused.
            PublishError::Refused { status: 422, .. } => 1,
            PublishError::Refused { status, .. } if (400..500).contains(&status) => 2,
            _ => 1,
        },
        message: e.to_string(),
    }
}
