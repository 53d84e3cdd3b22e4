//! `eventbus hook` against the real `eventbus` binary: Claude Code hook inputs published as
//! `hook.<subtype>`, silence on stdout, exit 0 whatever happens, and the spool that keeps
//! events while the daemon is down.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_eventbus");
/// Generous: the machine is small and shared.
const PATIENCE: Duration = Duration::from_secs(30);

/// The type each fixture must be published as (independent of the code's own table).
const FIXTURES: &[(&str, &str)] = &[
    ("PreToolUse", "hook.pre_tool"),
    ("PostToolUse", "hook.post_tool"),
    ("UserPromptSubmit", "hook.user_prompt"),
    ("Notification", "hook.notification"),
    ("Stop", "hook.stop"),
    ("SubagentStop", "hook.subagent_stop"),
    ("PreCompact", "hook.pre_compact"),
    ("SessionStart", "hook.session_start"),
    ("SessionEnd", "hook.session_end"),
    ("PostToolUseFailure", "hook.post_tool_use_failure"),
];

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hooks")
        .join(format!("{name}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "eventbus-hook-{tag}-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn spool(&self) -> PathBuf {
        self.0.join("state").join("spool.ndjson")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `Command` for the binary with no inherited `CLAUDE_MPM_*` variables.
fn command(envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CLAUDE_MPM_") {
            cmd.env_remove(key);
        }
    }
    cmd.envs(envs.iter().copied());
    cmd
}

/// A running daemon, killed when dropped.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(spool: &Path, envs: &[(&str, &str)]) -> Daemon {
        let spool = spool.to_str().unwrap();
        let mut all = vec![
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CLAUDE_MPM_EVENTBUS_LOGGING", "false"),
            ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "1000"),
            ("CLAUDE_MPM_EVENTBUS_SPOOL", spool),
            // Each test's daemon has a log of its own (never the user's default store file).
            ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ];
        all.extend_from_slice(envs);
        let mut child = command(&all)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn eventbus");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, lines): (_, Receiver<String>) = channel();
        let reader = BufReader::new(child.stderr.take().unwrap());
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in reader.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains("listening on http://") => {
                    break line
                        .split("listening on http://")
                        .nth(1)
                        .and_then(|rest| rest.split_whitespace().next())
                        .expect("an address")
                        .parse()
                        .expect("a socket address");
                }
                Ok(_) => {}
                Err(_) => panic!("the daemon did not start: {:?}", stderr.lock().unwrap()),
            }
        };
        Daemon {
            child,
            addr,
            stderr,
        }
    }

    fn get(&self, path: &str) -> Value {
        let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
        agent
            .get(format!("http://{}{path}", self.addr))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    }

    /// `(type, data)` of every event in the history, oldest first.
    fn recent(&self) -> Vec<(String, Value)> {
        let recent = self.get("/events/recent?limit=1000");
        recent
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
            .collect()
    }

    /// Polls `GET /stats` until `check` holds.
    fn stats_until(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.get("/stats");
            if check(&stats) {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {stats}\n{:?}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `eventbus hook ARGS` with `stdin` written from another thread.
fn hook(args: &[&str], envs: &[(&str, &str)], stdin: Vec<u8>) -> Output {
    let mut child = command(envs)
        .arg("hook")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An address nothing listens on: bind a port, note it, close it.
fn dead_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[test]
fn every_hook_event_is_published_with_its_input_as_data() {
    let dir = TempDir::new("fixtures");
    let daemon = Daemon::start(&dir.spool(), &[]);
    let addr = daemon.addr.to_string();
    let envs = [("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", addr.as_str())];
    let mut expected = Vec::new();
    for (name, event_type) in FIXTURES {
        let input = fixture(name);
        let out = hook(&["--verbose"], &envs, input.clone().into_bytes());
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(
            out.stdout.is_empty(),
            "{name}: stdout {:?}",
            text(&out.stdout)
        );
        assert!(
            out.stderr.is_empty(),
            "{name}: stderr {:?}",
            text(&out.stderr)
        );
        let data: Value = serde_json::from_str(&input).unwrap();
        expected.push(((*event_type).to_owned(), data));
    }
    assert_eq!(daemon.recent(), expected);
    assert!(!dir.spool().exists(), "nothing should have been spooled");
}

#[test]
fn with_the_daemon_down_200_hooks_spool_and_a_later_daemon_publishes_each_once() {
    let dir = TempDir::new("down");
    let spool = dir.spool();
    let spool_text = spool.to_str().unwrap();
    let dead = dead_addr();
    let envs = [
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", dead.as_str()),
        ("CLAUDE_MPM_EVENTBUS_SPOOL", spool_text),
    ];
    let base: Value = serde_json::from_str(&fixture("PreToolUse")).unwrap();
    let hooks: Vec<_> = (0..200)
        .map(|seq| {
            let mut input = base.clone();
            input["tool_input"]["seq"] = json!(seq);
            let envs = envs.map(|(k, v)| (k, v.to_owned()));
            std::thread::spawn(move || {
                let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let started = Instant::now();
                let out = hook(
                    &["--timeout", "250ms"],
                    &envs,
                    serde_json::to_vec(&input).unwrap(),
                );
                (out, started.elapsed())
            })
        })
        .collect();
    for handle in hooks {
        let (out, took) = handle.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
        // 250 ms for the daemon and 1 s for the spool lock at most, plus a loaded machine's
        // process start-up: a hung hook would blow through this.
        assert!(took < Duration::from_secs(10), "a hook took {took:?}");
    }
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert_eq!(spooled.lines().count(), 200, "one whole line per event");

    let daemon = Daemon::start(&spool, &[]);
    daemon.stats_until("200 events taken in", |s| s["spool"]["taken"] == 200);
    // Another round or two must not publish anything again.
    std::thread::sleep(Duration::from_millis(2500));
    let stats = daemon.get("/stats");
    assert_eq!(stats["events_published"], 200, "{stats}");
    assert_eq!(stats["spool"]["torn"], 0, "{stats}");
    let mut seqs: Vec<u64> = daemon
        .recent()
        .iter()
        .map(|(t, data)| {
            assert_eq!(t, "hook.pre_tool");
            data["tool_input"]["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    assert!(!spool.exists());

    // While the daemon runs, a hook that cannot reach it spools, and the next round takes
    // the event in.
    let out = hook(&[], &envs, fixture("Stop").into_bytes());
    assert_eq!(out.status.code(), Some(0));
    daemon.stats_until("the late event taken in", |s| s["spool"]["taken"] == 201);
    assert_eq!(daemon.recent().last().unwrap().0, "hook.stop");
}

#[test]
fn a_spool_with_a_torn_last_line_loses_only_that_line() {
    let dir = TempDir::new("torn");
    let spool = dir.spool();
    std::fs::create_dir_all(spool.parent().unwrap()).unwrap();
    let mut body = String::new();
    for n in 0..3 {
        body.push_str(&format!(
            "{{\"type\":\"hook.stop\",\"data\":{{\"n\":{n}}}}}\n"
        ));
    }
    body.push_str("{\"type\":\"hook.stop\",\"data\":{\"n\":3, \"sess");
    std::fs::write(&spool, body).unwrap();
    let daemon = Daemon::start(&spool, &[]);
    let stats = daemon.stats_until("the spool taken in", |s| s["spool"]["taken"] == 3);
    assert_eq!(stats["spool"]["torn"], 1, "{stats}");
    assert_eq!(
        daemon.recent(),
        (0..3)
            .map(|n| ("hook.stop".to_owned(), json!({"n": n})))
            .collect::<Vec<_>>()
    );
    assert!(!spool.exists());
    let log = daemon.stderr.lock().unwrap().join("\n");
    assert!(log.contains("line 4 skipped"), "{log}");
}

#[test]
fn bad_input_exits_0_publishes_nothing_and_says_why_only_when_asked() {
    let dir = TempDir::new("bad");
    let spool = dir.spool();
    let daemon = Daemon::start(&spool, &[]);
    let addr = daemon.addr.to_string();
    let spool_text = spool.to_str().unwrap();
    let envs = [
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", addr.as_str()),
        ("CLAUDE_MPM_EVENTBUS_SPOOL", spool_text),
    ];
    let huge = format!(
        "{{\"hook_event_name\":\"Stop\",\"blob\":\"{}\"}}",
        "x".repeat(20 << 20)
    );
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("not JSON", b"PreToolUse please".to_vec(), "not valid JSON"),
        ("empty", Vec::new(), "stdin is empty"),
        ("20 MB", huge.into_bytes(), "larger than"),
        ("an array", b"[1, 2]".to_vec(), "not a JSON object"),
        (
            "no name",
            b"{\"session_id\": \"s\"}".to_vec(),
            "hook_event_name",
        ),
        (
            "odd name",
            b"{\"hook_event_name\": \"*\"}".to_vec(),
            "names no event",
        ),
    ];
    for (what, input, reason) in &cases {
        let quiet = hook(&[], &envs, input.clone());
        assert_eq!(quiet.status.code(), Some(0), "{what}");
        assert!(quiet.stdout.is_empty(), "{what}: {:?}", text(&quiet.stdout));
        assert!(quiet.stderr.is_empty(), "{what}: {:?}", text(&quiet.stderr));
        let loud = hook(&["--verbose"], &envs, input.clone());
        assert_eq!(loud.status.code(), Some(0), "{what}");
        assert!(loud.stdout.is_empty(), "{what}");
        let err = text(&loud.stderr);
        assert!(err.contains(reason), "{what}: {err:?}");
        assert_eq!(err.lines().count(), 1, "{what}: {err:?}");
    }
    // CLAUDE_MPM_EVENTBUS_DEBUG turns the reason on too, with bus-config's boolean rules.
    let debug = [envs[0], envs[1], ("CLAUDE_MPM_EVENTBUS_DEBUG", "Yes")];
    let out = hook(&[], &debug, b"nope".to_vec());
    assert!(text(&out.stderr).contains("not valid JSON"), "{out:?}");
    // A flag it does not know must not block the host either.
    let out = hook(&["--no-such-flag"], &envs, fixture("Stop").into_bytes());
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    let out = hook(&["--no-such-flag", "-v"], &envs, Vec::new());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("--no-such-flag"), "{out:?}");

    assert_eq!(daemon.get("/stats")["events_published"], 0);
    assert!(!spool.exists(), "bad input is not spooled");
}

#[test]
fn a_daemon_that_refuses_the_event_is_not_bypassed_through_the_spool() {
    let dir = TempDir::new("refused");
    let spool = dir.spool();
    let daemon = Daemon::start(&spool, &[("CLAUDE_MPM_EVENTBUS_TOKEN", "s3cret")]);
    let addr = daemon.addr.to_string();
    let spool_text = spool.to_str().unwrap();
    let mut envs = vec![
        ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", addr.as_str()),
        ("CLAUDE_MPM_EVENTBUS_SPOOL", spool_text),
    ];
    let out = hook(&["-v"], &envs, fixture("Stop").into_bytes());
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("401"), "{out:?}");
    assert!(!spool.exists());
    envs.push(("CLAUDE_MPM_EVENTBUS_TOKEN", "s3cret"));
    let out = hook(&["-v"], &envs, fixture("Stop").into_bytes());
    assert!(out.stderr.is_empty(), "{out:?}");
    let agent: ureq::Agent = ureq::Agent::config_builder().proxy(None).build().into();
    let recent: Value = agent
        .get(format!("http://{addr}/events/recent"))
        .header("authorization", "Bearer s3cret")
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(recent.as_array().unwrap().len(), 1);
    assert_eq!(recent[0]["type"], "hook.stop");
}

#[test]
fn settings_wire_every_hook_event_to_this_binary() {
    let out = hook(&["--settings"], &[], Vec::new());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let settings: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hooks = settings["hooks"].as_object().unwrap();
    let names: Vec<&str> = FIXTURES[..9].iter().map(|(n, _)| *n).collect();
    let mut keys: Vec<&str> = hooks.keys().map(String::as_str).collect();
    let mut want = names.clone();
    keys.sort_unstable();
    want.sort_unstable();
    assert_eq!(keys, want);
    let exe = std::fs::canonicalize(BIN).unwrap();
    let command = format!("{} hook", exe.display());
    for name in names {
        let group = &hooks[name][0];
        let tools = name.ends_with("ToolUse");
        assert_eq!(group.get("matcher").is_some(), tools, "{name}");
        assert_eq!(
            group["hooks"],
            json!([{"type": "command", "command": command}]),
            "{name}"
        );
    }
}

#[test]
fn publish_sends_10000_ndjson_lines_in_one_request() {
    let dir = TempDir::new("ndjson");
    let daemon = Daemon::start(&dir.spool(), &[]);
    let addr = daemon.addr.to_string();
    let body: String = (0..10_000)
        .map(|n| format!("{{\"type\":\"load.n\",\"data\":{n}}}\n"))
        .collect();
    let mut child = command(&[("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", addr.as_str())])
        .args(["publish", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // One reply with every id: the batch went as one request.
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["accepted"], 10_000);
    assert_eq!(reply["ids"].as_array().unwrap().len(), 10_000);
}
