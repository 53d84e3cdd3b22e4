//! `eventbus hook`: a Claude Code hook command that publishes its input to the daemon.
//!
//! Claude Code runs a hook command per event with one JSON object on stdin, reads its stdout
//! as instructions, and treats exit code 2 as "block this". So this command prints nothing on
//! stdout and always exits 0: whatever goes wrong (daemon down, bad input, bad flags) is at
//! most one line on stderr, and only with `--verbose` or `CLAUDE_MPM_EVENTBUS_DEBUG` on. It
//! publishes `hook.<subtype>` with the input object as `data`, gives up on the daemon after
//! `--timeout`, and then appends the event to the [spool] instead, which the
//! daemon takes in when it runs.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::Value;

use crate::client::Client;
use crate::error::PublishError;
use crate::spool;

/// The default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a hook waits for other hooks' spool writes (each holds the lock for one `write`).
pub const SPOOL_BUDGET: Duration = Duration::from_secs(1);
/// The largest input taken: the daemon's default body limit (16 MiB), less room for the
/// `{"type", "data"}` envelope.
pub const MAX_INPUT_BYTES: usize = (16 << 20) - 4096;

/// Claude Code's hook events, the subtype each is published as, and whether it takes a tool
/// matcher.
pub const EVENTS: &[(&str, &str, bool)] = &[
    ("PreToolUse", "pre_tool", true),
    ("PostToolUse", "post_tool", true),
    ("UserPromptSubmit", "user_prompt", false),
    ("Notification", "notification", false),
    ("Stop", "stop", false),
    ("SubagentStop", "subagent_stop", false),
    ("PreCompact", "pre_compact", false),
    ("SessionStart", "session_start", false),
    ("SessionEnd", "session_end", false),
];

/// The arguments of `eventbus hook`.
#[derive(Debug, Default, clap::Args)]
pub struct HookArgs {
    /// The daemon's address (default: CLAUDE_MPM_EVENTBUS_HTTP_ADDR, else 127.0.0.1:8770).
    #[arg(long, value_name = "IP:PORT")]
    pub addr: Option<String>,
    /// How long to wait for the daemon before spooling the event instead (250ms, 1s, 0.5).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Say on stderr why an event was spooled or dropped (also when CLAUDE_MPM_EVENTBUS_DEBUG
    /// is on).
    #[arg(long, short)]
    pub verbose: bool,
    /// Print the `hooks` block of a Claude Code settings.json that runs this command for
    /// every hook event, and exit.
    #[arg(long)]
    pub settings: bool,
}

/// What became of the event.
#[derive(Debug)]
enum Delivery {
    Published,
    Spooled {
        path: std::path::PathBuf,
        why: String,
    },
}

/// Runs `eventbus hook`: exit code 0 whatever happens (but for a `--settings` that cannot be
/// printed).
pub fn run(args: &HookArgs) -> ExitCode {
    if args.settings {
        return print_settings();
    }
    let verbose = args.verbose || debug_from_env();
    if !verbose {
        std::panic::set_hook(Box::new(|_| {}));
    }
    let outcome = std::panic::catch_unwind(|| deliver(args));
    let note = match outcome {
        Ok(Ok(Delivery::Published)) => None,
        Ok(Ok(Delivery::Spooled { path, why })) => {
            Some(format!("{why}; event spooled to {}", path.display()))
        }
        Ok(Err(reason)) => Some(reason),
        Err(_) => Some("internal error; event dropped".to_owned()),
    };
    if let (true, Some(note)) = (verbose, note) {
        say(&note);
    }
    ExitCode::SUCCESS
}

/// What `main` does with a command line clap refuses. For `eventbus hook` that is exit 0
/// (a reason on stderr when verbose): a hook with a bad flag must not block every tool call.
/// Anything else (and help or version requests) is clap's usual answer.
pub fn refused_command_line(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let args: Vec<String> = std::env::args().collect();
    let is_hook = args.get(1).map(String::as_str) == Some("hook");
    let display = matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !is_hook || display {
        error.exit();
    }
    if args.iter().any(|a| a == "--verbose" || a == "-v") || debug_from_env() {
        let text = error.to_string();
        say(text.lines().next().unwrap_or("bad arguments"));
    }
    ExitCode::SUCCESS
}

fn say(note: &str) {
    let line = note.lines().next().unwrap_or_default();
    let _ = writeln!(std::io::stderr(), "eventbus hook: {line}");
}

fn debug_from_env() -> bool {
    std::env::var("CLAUDE_MPM_EVENTBUS_DEBUG")
        .ok()
        .and_then(|v| bus_config::parse_bool(&v).ok())
        .unwrap_or(false)
}

/// The event type a hook event name is published as: `hook.` and its subtype.
pub fn event_type(hook_event_name: &str) -> Option<String> {
    let subtype = EVENTS
        .iter()
        .find(|(name, _, _)| *name == hook_event_name)
        .map(|(_, subtype, _)| (*subtype).to_owned())
        .unwrap_or_else(|| snake_case(hook_event_name));
    (!subtype.is_empty()).then(|| format!("hook.{subtype}"))
}

/// `PostToolUseFailure` -> `post_tool_use_failure`; anything but ASCII letters and digits
/// becomes one `_`.
fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if c.is_ascii_uppercase() && i > 0 && !out.is_empty() && !out.ends_with('_') {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out.trim_end_matches('_').to_owned()
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    data: &'a Value,
}

fn deliver(args: &HookArgs) -> Result<Delivery, String> {
    let input = read_input()?;
    let name = match input.get("hook_event_name") {
        Some(Value::String(name)) => name,
        Some(_) => return Err("\"hook_event_name\" is not a string; event dropped".into()),
        None => return Err("the input has no \"hook_event_name\"; event dropped".into()),
    };
    let event_type = event_type(name)
        .ok_or_else(|| format!("hook_event_name {name:?} names no event; event dropped"))?;
    let body = serde_json::to_vec(&Envelope {
        event_type: &event_type,
        data: &input,
    })
    .map_err(|e| format!("cannot serialize the event ({e}); event dropped"))?;
    let why = match send(args, &body) {
        Ok(()) => return Ok(Delivery::Published),
        Err(Miss::Spool(why)) => why,
        Err(Miss::Drop(why)) => return Err(format!("{why}; event dropped")),
    };
    let path = spool::path_from_env().map_err(|e| format!("{why}; {e}; event dropped"))?;
    spool::append(&path, &body, Instant::now() + SPOOL_BUDGET)
        .map_err(|e| format!("{why}; {e}; event dropped"))?;
    Ok(Delivery::Spooled { path, why })
}

/// Reads stdin: one JSON object of at most [`MAX_INPUT_BYTES`].
fn read_input() -> Result<Value, String> {
    let mut stdin = std::io::stdin().lock();
    let mut raw = Vec::new();
    (&mut stdin)
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    if raw.len() > MAX_INPUT_BYTES {
        // Read the rest, so that the host's write does not fail on a closed pipe.
        let _ = std::io::copy(&mut stdin, &mut std::io::sink());
        return Err(format!(
            "the input is larger than {MAX_INPUT_BYTES} bytes; event dropped"
        ));
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err("stdin is empty; expected a Claude Code hook input object".into());
    }
    match serde_json::from_slice::<Value>(&raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err("the input is not a JSON object; event dropped".into()),
        Err(e) => Err(format!("the input is not valid JSON ({e}); event dropped")),
    }
}

/// Why the daemon did not take the event: worth spooling (it may take it later) or not.
enum Miss {
    Spool(String),
    Drop(String),
}

fn send(args: &HookArgs, body: &[u8]) -> Result<(), Miss> {
    let settings = bus_config::ClientSettings::from_env()
        .map_err(|e| Miss::Spool(format!("bad client settings ({e})")))?;
    let addr: SocketAddr = match &args.addr {
        Some(raw) => bus_config::parse_addr(raw)
            .map_err(|expected| Miss::Spool(format!("--addr {raw:?}: expected {expected}")))?,
        None => settings.addr,
    };
    let timeout = match &args.timeout {
        None => DEFAULT_TIMEOUT,
        Some(raw) => bus_config::parse_duration(raw, Duration::from_secs(60))
            .map_err(|expected| Miss::Spool(format!("--timeout {raw:?}: expected {expected}")))?,
    };
    let client = Client::with_deadline(addr, settings.token, timeout);
    match client.publish_body(body) {
        Ok(_) => Ok(()),
        Err(e @ PublishError::Refused { status, .. }) if status < 500 => Err(Miss::Drop(
            e.to_string().lines().next().unwrap_or_default().to_owned(),
        )),
        Err(e) => Err(Miss::Spool(
            e.to_string().lines().next().unwrap_or_default().to_owned(),
        )),
    }
}

fn print_settings() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            say(&format!("cannot find this program's path: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let command = format!("{} hook", shell_quote(&exe.to_string_lossy()));
    let text = settings_json(&command) + "\n";
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say(&format!("cannot write to stdout: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Claude Code runs the command through a shell: quote a path with spaces and the like.
fn shell_quote(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The `{"hooks": {...}}` block of a Claude Code settings.json that runs `command` for every
/// event in [`EVENTS`], in that order, pretty-printed.
pub fn settings_json(command: &str) -> String {
    struct Hooks<'a>(&'a str);
    impl Serialize for Hooks<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map(EVENTS.iter().map(|(name, _, tools)| {
                let group = Group {
                    matcher: tools.then_some("*"),
                    hooks: [HookCommand {
                        kind: "command",
                        command: self.0,
                    }],
                };
                (*name, [group])
            }))
        }
    }
    #[derive(Serialize)]
    struct Group<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        matcher: Option<&'a str>,
        hooks: [HookCommand<'a>; 1],
    }
    #[derive(Serialize)]
    struct HookCommand<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        command: &'a str,
    }
    struct Settings<'a>(&'a str);
    impl Serialize for Settings<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("hooks", &Hooks(self.0))?;
            map.end()
        }
    }
    serde_json::to_string_pretty(&Settings(command)).expect("plain strings serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_subtypes() {
        assert_eq!(event_type("PreToolUse").unwrap(), "hook.pre_tool");
        assert_eq!(event_type("SubagentStop").unwrap(), "hook.subagent_stop");
        assert_eq!(
            event_type("PostToolUseFailure").unwrap(),
            "hook.post_tool_use_failure"
        );
        assert_eq!(event_type("HTTPRequest").unwrap(), "hook.http_request");
        assert_eq!(event_type("My Event*2").unwrap(), "hook.my_event_2");
        assert_eq!(event_type("already_snake").unwrap(), "hook.already_snake");
        assert_eq!(event_type("*?"), None);
    }

    #[test]
    fn settings_wire_every_event_in_order_with_matchers_for_tools_only() {
        let text = settings_json("/opt/eb/eventbus hook");
        let value: Value = serde_json::from_str(&text).unwrap();
        let hooks = value["hooks"].as_object().unwrap();
        assert_eq!(hooks.len(), EVENTS.len());
        let order: Vec<usize> = EVENTS
            .iter()
            .map(|(name, _, _)| text.find(&format!("\"{name}\"")).unwrap())
            .collect();
        assert!(order.is_sorted(), "{text}");
        assert_eq!(value["hooks"]["PreToolUse"][0]["matcher"], "*");
        assert!(value["hooks"]["Stop"][0].get("matcher").is_none());
        assert_eq!(
            value["hooks"]["Stop"][0]["hooks"][0],
            serde_json::json!({"type": "command", "command": "/opt/eb/eventbus hook"})
        );
    }

    #[test]
    fn odd_paths_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("/usr/bin/eventbus"), "/usr/bin/eventbus");
        assert_eq!(shell_quote("/My Apps/it's"), r"'/My Apps/it'\''s'");
    }
}
