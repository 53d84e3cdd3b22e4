//! Hardening against a hostile local client, the daemon as a real process: connections that
//! never finish (idle, half-sent headers and bodies) are closed, the connection cap keeps
//! `/healthz` answering, web pages cannot post or read (Origin, Host), `eventbus publish`
//! exits non-zero when nothing was published, and the smaller holes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;

/// Reads until EOF or `limit`; returns how long it took and what came, or `None` when the
/// connection was still open at `limit`.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Duration, String)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(start.elapsed())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return Some((start.elapsed(), text(&got))),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            // A reset is a close too.
            Err(_) => return Some((start.elapsed(), text(&got))),
        }
    }
}

/// A raw HTTP/1.1 exchange on a fresh connection: the status and the body text.
fn raw_request(daemon: &Daemon, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let (_, answer) = read_until_closed(&mut stream, Duration::from_secs(20)).expect("an answer");
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

fn healthz_within(daemon: &Daemon, limit: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&daemon.addr, limit) else {
        return false;
    };
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        daemon.addr
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    matches!(read_until_closed(&mut stream, limit), Some((_, answer)) if answer.starts_with("HTTP/1.1 200"))
}

async fn published(daemon: &Daemon) -> u64 {
    get_json(&daemon.url("/stats")).await["events_published"]
        .as_u64()
        .unwrap()
}

#[test]
fn idle_sockets_beyond_the_cap_do_not_lock_out_healthz_and_are_closed() {
    // 256 files in all: 300 idle sockets would use up every descriptor without the cap.
    let mut daemon = Daemon::start_with_file_limit(
        &[
            ("CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS", "100"),
            ("CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT", "2s"),
            ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ],
        Some((256, 256)),
    );
    let mut idle: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(daemon.addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        healthz_within(&daemon, Duration::from_secs(5)),
        "/healthz must answer with 300 idle sockets open; stderr:\n{}",
        daemon.stderr_text()
    );
    daemon.wait_for_line("connection limit reached");
    // Every idle socket is closed: evicted for newer ones, or after the idle timeout.
    for (i, stream) in idle.iter_mut().enumerate() {
        assert!(
            read_until_closed(stream, Duration::from_secs(20)).is_some(),
            "idle socket {i} still open"
        );
    }
    assert!(healthz_within(&daemon, Duration::from_secs(5)));
    daemon.sigterm();
    let (status, stderr) = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn the_soft_file_limit_is_raised_to_the_hard_one() {
    let daemon = Daemon::start_with_file_limit(
        &[("CLAUDE_MPM_EVENTBUS_STORE", "memory")],
        Some((128, 2048)),
    );
    let pid = daemon.child.as_ref().unwrap().id();
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers, ["2048", "2048"], "{line}");
}

#[test]
fn idle_half_sent_header_and_half_sent_body_connections_are_closed() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT", "1s"),
        ("CLAUDE_MPM_EVENTBUS_HEADER_TIMEOUT", "1s"),
        ("CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT", "1s"),
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
    ]);
    let limit = Duration::from_secs(15);

    let mut silent = TcpStream::connect(daemon.addr).unwrap();
    assert!(
        read_until_closed(&mut silent, limit).is_some(),
        "a silent connection stays open"
    );

    // Sending a byte now and then does not keep a header alive past the header timeout.
    let mut header = TcpStream::connect(daemon.addr).unwrap();
    header
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x")
        .unwrap();
    let start = Instant::now();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        let _ = header.write_all(b"x");
    }
    assert!(
        read_until_closed(&mut header, limit).is_some(),
        "a half-sent header stays open"
    );
    assert!(start.elapsed() < Duration::from_secs(10));

    let mut body = TcpStream::connect(daemon.addr).unwrap();
    body.write_all(
        format!(
            "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\":",
            daemon.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let (_, answer) = read_until_closed(&mut body, limit).expect("a half-sent body stays open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT"),
        "{answer}"
    );

    // Keep-alive: one exchange, then the idle timeout closes the connection.
    let mut kept = TcpStream::connect(daemon.addr).unwrap();
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", daemon.addr).as_bytes())
        .unwrap();
    let (_, answer) =
        read_until_closed(&mut kept, limit).expect("a kept-alive connection stays open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_outlives_the_idle_timeout_and_ends_at_shutdown() {
    let mut daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT", "1s"),
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
    ]);
    let mut stream = TcpStream::connect(daemon.addr).unwrap();
    stream
        .write_all(
            format!(
                "GET /events/stream HTTP/1.1\r\nHost: {}\r\n\r\n",
                daemon.addr
            )
            .as_bytes(),
        )
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, _) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"late.one"}"#,
    )
    .await;
    assert_eq!(status, 200);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    while !text(&seen).contains("late.one") {
        let n = stream.read(&mut buf).expect("the stream is still open");
        assert!(n > 0, "the stream was closed: {}", text(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
    daemon.sigterm();
    assert!(
        read_until_closed(&mut stream, Duration::from_secs(10)).is_some(),
        "the stream ends at shutdown"
    );
    let (status, stderr) = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pages_cannot_post_or_read_without_being_allowed() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        (
            "CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS",
            "http://localhost:3000",
        ),
        ("CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS", "eventbus.test"),
    ]);
    let host = daemon.addr.to_string();
    let event = r#"{"type":"hook.pre_tool","data":{"x":1}}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/json",
    ] {
        for origin in ["http://evil.example", "null", "http://localhost:3001"] {
            let request = format!(
                "POST /events HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{event}",
                event.len()
            );
            let (status, body) = raw_request(&daemon, &request);
            assert_eq!(status, 403, "{origin} {content_type}: {body}");
            assert!(
                body.contains("CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS"),
                "{body}"
            );
        }
    }
    assert_eq!(
        published(&daemon).await,
        0,
        "nothing from a web page is published"
    );

    // DNS rebinding: a page at a name of its own that resolves to 127.0.0.1.
    let (status, body) = raw_request(
        &daemon,
        &format!(
            "GET /events/recent HTTP/1.1\r\nHost: rebind.evil.example:{}\r\nConnection: close\r\n\r\n",
            daemon.addr.port()
        ),
    );
    assert_eq!(status, 421, "{body}");
    assert!(body.contains("CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS"), "{body}");

    // Allowed: the listed origin, the listed host, loopback names, and clients without
    // Origin, `curl -d` (a form content type) included.
    for (origin, host_header) in [
        (Some("http://localhost:3000"), host.clone()),
        (
            Some(&*format!("http://localhost:{}", daemon.addr.port())),
            format!("localhost:{}", daemon.addr.port()),
        ),
        (None, format!("eventbus.test:{}", daemon.addr.port())),
        (None, format!("[::1]:{}", daemon.addr.port())),
    ] {
        let origin_line = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let request = format!(
            "POST /events HTTP/1.1\r\nHost: {host_header}\r\n{origin_line}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{event}",
            event.len()
        );
        let (status, body) = raw_request(&daemon, &request);
        assert_eq!(status, 200, "{origin:?} {host_header}: {body}");
    }
    assert_eq!(published(&daemon).await, 4);
    let (status, _) = post(
        &daemon.url("/events"),
        "application/x-www-form-urlencoded",
        event,
    )
    .await;
    assert_eq!(status, 200, "curl -d");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_exits_non_zero_unless_every_event_was_accepted() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_FILTERS", "keep.*"),
    ]);
    let addr = daemon.addr.to_string();
    let publish = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["publish", "--addr", &addr];
        all.extend_from_slice(args);
        run(&all, &[], stdin)
    };
    let out = publish(&["keep.a", "{}"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = publish(&["drop.a", "{}"], None);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("1 of 1 events filtered"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("\"filtered\":1"));

    let out = publish(
        &["-"],
        Some("{\"type\":\"keep.b\"}\n{\"type\":\"drop.b\"}\n"),
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));

    let (status, _) = post_patch(&daemon.url("/config"), r#"{"enabled": false}"#).await;
    assert_eq!(status, 200);
    let out = publish(&["keep.c", "{}"], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("disabled"),
        "{}",
        text(&out.stderr)
    );
}

async fn post_patch(url: &str, body: &'static str) -> (u16, Value) {
    let response = client()
        .patch(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_integers_ndjson_as_json_and_array_patches_are_refused_clearly() {
    let daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_STORE", "memory")]);
    let url = daemon.url("/events");
    let (status, reply) = post(
        &url,
        "application/json",
        r#"{"type":"a.big","data":{"n":[1,123456789012345678901234567890]}}"#,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().contains("/data/n/1"),
        "{reply}"
    );
    let (status, reply) = post(
        &url,
        "application/json",
        r#"[{"type":"a.ok","data":1e30},{"type":"a.big","data":{"n":-123456789012345678901234567890}}]"#,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(
        error.starts_with("event [1]:") && error.contains("/data/n"),
        "{reply}"
    );
    let (status, reply) = post(
        &url,
        "application/x-ndjson",
        "{\"type\":\"a.ok\"}\n{\"type\":\"a.big\",\"data\":99999999999999999999999}\n",
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["error"].as_str().unwrap().starts_with("line 2:"),
        "{reply}"
    );
    // Numbers that fit are kept exactly.
    let (status, _) = post(
        &url,
        "application/json",
        r#"{"type":"a.fits","data":18446744073709551615}"#,
    )
    .await;
    assert_eq!(status, 200);
    let recent = get_json(&daemon.url("/events/recent")).await;
    assert_eq!(
        recent[0]["data"],
        json!(18446744073709551615u64),
        "{recent}"
    );
    assert_eq!(published(&daemon).await, 1);

    let (status, reply) = post(
        &url,
        "application/json",
        "{\"type\":\"a\"}\n{\"type\":\"b\"}\n",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("application/x-ndjson"),
        "{reply}"
    );

    let before = get_json(&daemon.url("/config")).await;
    for body in ["[null,null,5]", "5", "\"x\""] {
        let (status, reply) = post_patch(&daemon.url("/config"), body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert!(
            reply["error"]
                .as_str()
                .unwrap()
                .contains("not a JSON object"),
            "{reply}"
        );
    }
    assert_eq!(get_json(&daemon.url("/config")).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_token_is_never_echoed() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_TOKEN", "s3cret-token"),
    ]);
    for sent in [
        "s3cret-token",
        "s3cret-wrong",
        "s3cret-wrong extra",
        "Bearer s3cret-wrong",
    ] {
        let response = client()
            .get(daemon.url("/stats"))
            .header("authorization", sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
        let body = response.text().await.unwrap();
        assert!(!body.contains("s3cret"), "{sent}: {body}");
    }
}

#[test]
fn filters_that_lost_their_patterns_or_are_too_many_are_refused() {
    let out = run(&["config"], &[("CLAUDE_MPM_EVENTBUS_FILTERS", ",,")], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CLAUDE_MPM_EVENTBUS_FILTERS"), "{stderr}");
    assert!(stderr.contains("no pattern between the commas"), "{stderr}");

    let many: Vec<String> = (0..1001).map(|i| format!("t{i}.*")).collect();
    let out = run(
        &["config"],
        &[("CLAUDE_MPM_EVENTBUS_FILTERS", &many.join(","))],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CLAUDE_MPM_EVENTBUS_FILTERS"), "{stderr}");
    assert!(stderr.contains("at most 1000"), "{stderr}");
    let out = run(
        &["config"],
        &[("CLAUDE_MPM_EVENTBUS_FILTERS", &many[..1000].join(","))],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_summary_shows_the_relays_own_figures() {
    // Nothing listens on the dashboard port: the durable relay holds 2 in its buffer and
    // leaves the other 3 in the log; it drops nothing, and the summary says what /stats says.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let mut daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_RELAY_ENABLED", "true"),
        ("CLAUDE_MPM_SOCKETIO_URL", &url),
        ("CLAUDE_MPM_RELAY_BUFFER_SIZE", "2"),
        ("CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT", "2s"),
    ]);
    let body = (0..5)
        .map(|i| format!("{{\"type\":\"hook.e{i}\"}}\n"))
        .collect::<String>();
    let (status, _) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200);
    eventually("the relay to hold 2", async || {
        get_json(&daemon.url("/stats")).await["relay"]["buffered"] == json!(2)
    })
    .await;
    let relay = get_json(&daemon.url("/stats")).await["relay"].clone();
    assert_eq!(relay["dropped"], json!(0), "{relay}");
    daemon.sigterm();
    let (status, stderr) = daemon.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("eventbus: relay:"))
        .unwrap_or_else(|| panic!("no relay line: {stderr}"));
    assert!(line.contains("dropped 0"), "{stderr}");
    assert!(
        stderr.contains("5 events could not be delivered in time"),
        "{stderr}"
    );
}
