//! The `eventbus` binary as a real process on an ephemeral port: HTTP API, `eventbus
//! publish`, bad inputs, tokens, SIGTERM draining, port in use, bad configuration.

mod common;

use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_over_http_and_serves_stats_recent_and_metrics() {
    let daemon = Daemon::start(&[]);
    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"hook.pre_tool","data":{"tool_name":"Read"}}"#,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply,
        json!({"accepted": 1, "filtered": 0, "refused": 0, "ids": ["1"]})
    );

    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        r#"[{"type":"a.one"},{"type":"a.two","data":[1,2]}]"#,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ids"], json!(["2", "3"]));

    let ndjson =
        "{\"type\":\"n.1\",\"data\":1}\n\n{\"type\":\"n.2\",\"data\":2}\r\n{\"type\":\"n.3\"}\n";
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", ndjson).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 3);
    assert_eq!(reply["ids"], json!(["4", "5", "6"]));

    let stats = get_json(&daemon.url("/stats")).await;
    assert_eq!(stats["events_published"], 6);
    assert_eq!(stats["enabled"], true);
    assert_eq!(stats["history_size"], 6);

    let recent = get_json(&daemon.url("/events/recent?limit=2")).await;
    let types: Vec<&str> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["n.2", "n.3"]);
    assert_eq!(recent[0]["data"], 2);
    assert_eq!(
        get_json(&daemon.url("/events/recent"))
            .await
            .as_array()
            .unwrap()
            .len(),
        6
    );

    let (status, body) = get_text(&daemon.url("/events/recent?limit=lots")).await;
    assert_eq!(status, 400);
    assert!(body.contains("limit=\\\"lots\\\""), "{body}");

    let health = get_json(&daemon.url("/healthz")).await;
    assert_eq!(health["status"], "ok");

    if cfg!(feature = "metrics") {
        eventually("the metrics consumer to count every event", async || {
            let (status, text) = get_text(&daemon.url("/metrics")).await;
            status == 200
                && text.contains("eventbus_events_published_total 6\n")
                && text.contains("eventbus_events_total{event_type=\"hook.pre_tool\"} 1\n")
        })
        .await;
    } else {
        let (status, _) = get_text(&daemon.url("/metrics")).await;
        assert_eq!(status, 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_off_is_a_404_that_says_so() {
    let daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_METRICS", "false")]);
    let (status, body) = get_text(&daemon.url("/metrics")).await;
    assert_eq!(status, 404);
    assert!(body.contains("CLAUDE_MPM_EVENTBUS_METRICS"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_400_or_413_and_publish_nothing() {
    let daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES", "4096")]);
    let url = daemon.url("/events");
    let cases: &[(&str, &str, &str)] = &[
        ("application/json", "{\"type\": \"a\",", "line 1, column"),
        ("application/json", "{\"data\": {}}", "missing field `type`"),
        (
            "application/json",
            "{\"type\": \"\"}",
            "\\\"type\\\" is empty",
        ),
        ("application/json", "{\"type\": \"hook.*\"}", "wildcard"),
        (
            "application/json",
            "[{\"type\":\"ok\"},{\"type\":7}]",
            "event [1]",
        ),
        (
            "application/json",
            "\"just a string\"",
            "expected an event object",
        ),
        ("application/json", "", "body is empty"),
        (
            "application/x-ndjson",
            "{\"type\":\"ok.1\"}\n{\"type\":\"ok.2\"}\n{\"type\": oops}\n",
            "line 3, column",
        ),
        (
            "application/x-ndjson",
            "{\"type\":\"ok\"}\n{\"data\":1}",
            "line 2",
        ),
    ];
    for (content_type, body, needle) in cases {
        let (status, reply) = post(&url, content_type, *body).await;
        assert_eq!(status, 400, "{body:?} -> {reply}");
        let message = reply["error"].to_string();
        assert!(message.contains(needle), "{body:?} -> {message}");
    }
    let huge = format!("{{\"type\":\"big\",\"data\":\"{}\"}}", "x".repeat(8192));
    let (status, reply) = post(&url, "application/json", huge).await;
    assert_eq!(status, 413, "{reply}");
    assert!(
        reply["error"]
            .to_string()
            .contains("CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES"),
        "{reply}"
    );

    let stats = get_json(&daemon.url("/stats")).await;
    assert_eq!(stats["events_published"], 0, "no half-applied batch");

    let (status, reply) = post(
        &daemon.url("/events?ids=maybe"),
        "application/json",
        "{\"type\":\"a\"}",
    )
    .await;
    assert_eq!(status, 400, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_guards_every_route_but_healthz_and_metrics() {
    let token = "s3cret-token";
    let daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_TOKEN", token)]);
    let url = daemon.url("/events");
    let body = r#"{"type":"hook.x"}"#;
    let send = |auth: Option<&'static str>| {
        let mut request = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let refusal = async |auth| {
        let response = send(auth).await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let reply: Value = response.json().await.unwrap();
        reply["error"].as_str().unwrap().to_owned()
    };
    assert!(refusal(None).await.contains("this daemon needs a token"));
    assert_eq!(refusal(Some("Bearer wrong")).await, "wrong token");
    assert_eq!(refusal(Some("bearer wrong")).await, "wrong token");
    let basic = refusal(Some("Basic czNjcmV0")).await;
    assert!(
        basic.contains("uses the Basic scheme, not Bearer"),
        "{basic}"
    );
    assert!(basic.contains("Authorization: Bearer <"), "{basic}");
    let bare = refusal(Some("Bearer")).await;
    assert!(bare.contains("no token after Bearer"), "{bare}");
    let glued = refusal(Some("Bearers3cret-token")).await;
    assert!(glued.contains("does not start with `Bearer `"), "{glued}");
    assert!(
        !glued.contains("s3cret"),
        "the token is never echoed: {glued}"
    );
    // RFC 7235: the scheme is case-insensitive; extra spaces around the token are tolerated.
    for auth in [
        "Bearer s3cret-token",
        "bearer s3cret-token",
        "BEARER  s3cret-token ",
    ] {
        assert_eq!(send(Some(auth)).await.unwrap().status(), 200, "{auth}");
    }
    let patch = client()
        .patch(daemon.url("/config"))
        .body("{\"enabled\": false}")
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 401);

    // Reads show payloads and the setup, so they need the token too; probes and scrapers not.
    for path in ["/stats", "/events/recent", "/config", "/no-such-route"] {
        let (status, _) = get_text(&daemon.url(path)).await;
        assert_eq!(status, 401, "{path}");
    }
    for path in ["/healthz", "/metrics"] {
        let (status, _) = get_text(&daemon.url(path)).await;
        assert_eq!(status, 200, "{path}");
    }
    let authed_get = |path: &str| {
        client()
            .get(daemon.url(path))
            .header("authorization", "Bearer s3cret-token")
            .send()
    };
    let stats: Value = authed_get("/stats").await.unwrap().json().await.unwrap();
    assert_eq!(stats["events_published"], 3);
    let recent: Value = authed_get("/events/recent")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recent.as_array().unwrap().len(), 3);

    let addr = daemon.addr.to_string();
    let out = run(
        &["publish", "--addr", &addr, "hook.cli", "{\"n\":1}"],
        &[("CLAUDE_MPM_EVENTBUS_TOKEN", token)],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &["publish", "--addr", &addr, "hook.cli"],
        &[("CLAUDE_MPM_EVENTBUS_TOKEN", "nope")],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("refused the request (401): wrong token"),
        "{}",
        text(&out.stderr)
    );
    let stats: Value = authed_get("/stats").await.unwrap().json().await.unwrap();
    assert_eq!(stats["events_published"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbus_publish_sends_one_event_or_ndjson_from_stdin() {
    let daemon = Daemon::start(&[]);
    let addr = daemon.addr.to_string();
    let envs = [("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", addr.as_str())];
    let out = run(
        &["publish", "hook.pre_tool", "{\"tool_name\":\"Read\"}"],
        &envs,
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["ids"], json!(["1"]));

    let out = run(
        &["publish", "-"],
        &envs,
        Some("{\"type\":\"s.1\",\"data\":{\"k\":1}}\n{\"type\":\"s.2\"}\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["accepted"], 2);

    let recent = get_json(&daemon.url("/events/recent")).await;
    let got: Vec<(String, Value)> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["data"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("hook.pre_tool".to_owned(), json!({"tool_name": "Read"})),
            ("s.1".to_owned(), json!({"k": 1})),
            ("s.2".to_owned(), Value::Null),
        ]
    );

    let out = run(
        &["publish", "-"],
        &envs,
        Some("{\"type\":\"ok\"}\nnot json\n"),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("line 2, column"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["publish", "hook.x", "{not json"], &envs, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not valid JSON"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(get_json(&daemon.url("/stats")).await["events_published"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbus_publish_ignores_proxy_variables() {
    let daemon = Daemon::start(&[]);
    let addr = daemon.addr.to_string();
    // A proxy that refuses every connection: a request sent through it cannot succeed.
    let proxy = "http://127.0.0.1:1";
    let mut cmd = command(&[("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", addr.as_str())]);
    for var in ["http_proxy", "HTTP_PROXY", "ALL_PROXY", "all_proxy"] {
        cmd.env(var, proxy);
    }
    for var in ["NO_PROXY", "no_proxy", "REQUEST_METHOD"] {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["publish", "hook.via_proxy_env", "{\"n\":1}"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reply["accepted"], 1);
    let recent = get_json(&daemon.url("/events/recent")).await;
    assert_eq!(recent[0]["type"], "hook.via_proxy_env");
}

#[test]
fn eventbus_publish_without_a_daemon_fails_clearly() {
    // A port nothing listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["publish", "--addr", &addr, "hook.x"], &[], None);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "cannot reach the eventbus daemon at http://{addr}"
        )),
        "{err}"
    );
    assert!(err.contains("Is it running?"), "{err}");
    let out = run(&["publish", "--addr", "nowhere", "hook.x"], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--addr \"nowhere\""),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_config_changes_the_running_bus() {
    let daemon = Daemon::start(&[]);
    let patch = |body: &'static str| client().patch(daemon.url("/config")).body(body).send();
    let response = patch(r#"{"filters": ["keep.*"], "history_size": 2, "debug": true}"#)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let now: Value = response.json().await.unwrap();
    assert_eq!(
        now,
        json!({"enabled": true, "debug": true, "history_size": 2, "filters": ["keep.*"],
               "relay_rate_limit": null, "log_rate_limit": null})
    );

    let ndjson = "{\"type\":\"keep.1\"}\n{\"type\":\"drop.1\"}\n{\"type\":\"keep.2\"}\n{\"type\":\"keep.3\"}\n";
    let (_, reply) = post(&daemon.url("/events"), "application/x-ndjson", ndjson).await;
    assert_eq!(
        (reply["accepted"].as_u64(), reply["filtered"].as_u64()),
        (Some(3), Some(1))
    );
    // The filtered event never reached the log; the history holds the newest two.
    let recent = get_json(&daemon.url("/events/recent?limit=10")).await;
    let types: Vec<&str> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["keep.1", "keep.2", "keep.3"]);
    assert_eq!(get_json(&daemon.url("/stats")).await["history_size"], 2);

    let response = patch(r#"{"filters": ["ok", " bad"]}"#).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("filters[1]"));
    let response = patch(r#"{"enable": false}"#).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("unknown field `enable`")
    );
    assert_eq!(
        get_json(&daemon.url("/config")).await["filters"],
        json!(["keep.*"]),
        "unchanged"
    );

    assert_eq!(patch(r#"{"enabled": false}"#).await.unwrap().status(), 200);
    let (_, reply) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"keep.9"}"#,
    )
    .await;
    assert_eq!(
        reply,
        json!({"accepted": 0, "filtered": 0, "refused": 1, "ids": []})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_slow_consumer_and_loses_nothing() {
    let mut daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER", "10ms")]);
    let body: String = (0..150)
        .map(|i| format!("{{\"type\":\"slow.{i}\"}}\n"))
        .collect();
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!((status, reply["accepted"].as_u64()), (200, Some(150)));
    let stats = get_json(&daemon.url("/stats")).await;
    let slow = stats["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "test-slow-consumer")
        .unwrap()
        .clone();
    assert!(
        slow["delivered"].as_u64().unwrap() < 150,
        "still a backlog at SIGTERM: {slow}"
    );
    daemon.sigterm();
    let (status, stderr) = daemon.wait_exit(Duration::from_secs(45));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("every consumer drained its queue"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "consumer test-slow-consumer: delivered 150, failed 0, dropped from its bus queue 0"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_reports_what_the_timeout_left_undelivered() {
    let mut daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_TEST_SLOW_CONSUMER", "1s"),
        ("CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT", "200ms"),
    ]);
    let body: String = (0..20)
        .map(|i| format!("{{\"type\":\"slow.{i}\"}}\n"))
        .collect();
    let (status, _) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200);
    daemon.sigterm();
    let (status, stderr) = daemon.wait_exit(Duration::from_secs(45));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("events could not be delivered in time"))
        .unwrap_or_else(|| panic!("no undelivered report in:\n{stderr}"));
    assert!(line.contains("test-slow-consumer ("), "{line}");
    let undelivered: u64 = line
        .split("shut down: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((18..=20).contains(&undelivered), "{line}");
}

#[test]
fn a_port_in_use_is_a_clear_error_with_exit_code_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(
        &[],
        &[
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", &addr),
            ("CLAUDE_MPM_EVENTBUS_LOGGING", "false"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("another eventbus"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_non_loopback_address_needs_a_token() {
    let out = run(
        &["serve"],
        &[("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "0.0.0.0:0")],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{err}"
    );
    assert!(err.contains("set CLAUDE_MPM_EVENTBUS_TOKEN"), "{err}");
    assert!(err.contains("127.0.0.1"), "{err}");
}

#[test]
fn bad_configuration_exits_2_listing_every_bad_variable() {
    let bad = [
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "perhaps"),
        ("CLAUDE_MPM_SOCKETIO_PORT", "99999"),
        ("CLAUDE_MPM_EVENTBUS_TOKEN", "has space"),
    ];
    for args in [&[][..], &["serve"][..], &["config"][..]] {
        let out = run(args, &bad, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains("invalid configuration (3 bad variables)"),
            "{err}"
        );
        assert!(
            err.contains("CLAUDE_MPM_EVENTBUS_ENABLED=\"perhaps\": expected"),
            "{err}"
        );
        assert!(
            err.contains(
                "CLAUDE_MPM_SOCKETIO_PORT=\"99999\": expected a whole number from 1 to 65535"
            ),
            "{err}"
        );
        assert!(err.contains("CLAUDE_MPM_EVENTBUS_TOKEN=****"), "{err}");
        assert!(!err.contains("has space"), "{err}");
    }
}

#[test]
fn eventbus_config_prints_the_effective_configuration_with_the_token_masked() {
    let out = run(
        &["config"],
        &[
            ("CLAUDE_MPM_EVENTBUS_TOKEN", "topsecret"),
            ("CLAUDE_MPM_EVENTBUS_FILTERS", "a.*, b"),
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("CLAUDE_MPM_EVENTBUS_TOKEN=**** (9 characters)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CLAUDE_MPM_EVENTBUS_FILTERS=a.*,b\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("CLAUDE_MPM_EVENTBUS_HTTP_ADDR=127.0.0.1:8770  # default\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("topsecret"));
    let out = run(
        &["config", "--json"],
        &[("CLAUDE_MPM_EVENTBUS_TOKEN", "topsecret")],
        None,
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["http"]["token"], "**** (9 characters)");
    assert_eq!(json["relay"]["retry_delay"], "500ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_is_wired_and_reports_what_it_could_not_deliver() {
    if !cfg!(feature = "relay") {
        let out = run(&[], &[("CLAUDE_MPM_RELAY_ENABLED", "true")], None);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains("without the `relay` feature"));
        return;
    }
    // No dashboard listens there: the relay keeps the events in its buffer.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut daemon = Daemon::start(&[
        ("CLAUDE_MPM_RELAY_ENABLED", "true"),
        ("CLAUDE_MPM_SOCKETIO_URL", &url),
        ("CLAUDE_MPM_RELAY_PATTERNS", "hook.*"),
        ("CLAUDE_MPM_RELAY_RETRY_DELAY", "50ms"),
        ("CLAUDE_MPM_EVENTBUS_SHUTDOWN_TIMEOUT", "500ms"),
    ]);
    assert!(
        daemon
            .stderr_text()
            .contains(&format!("socketio-relay ({url})")),
        "{}",
        daemon.stderr_text()
    );
    let body = "{\"type\":\"hook.a\"}\n{\"type\":\"other\"}\n{\"type\":\"hook.b\"}\n";
    let (status, _) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200);
    // The relay's own figures appear in /stats next to its subscriber row.
    let start = std::time::Instant::now();
    let stats = loop {
        let stats = get_json(&daemon.url("/stats")).await;
        if stats["relay"]["buffered"] == 2 || start.elapsed() > Duration::from_secs(20) {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(stats["relay"]["buffered"], 2, "{stats}");
    assert_eq!(stats["relay"]["connected"], false, "{stats}");
    daemon.sigterm();
    let (status, stderr) = daemon.wait_exit(Duration::from_secs(45));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr
            .contains("2 events could not be delivered in time: socketio-relay (0 queued, 2 held)"),
        "{stderr}"
    );
}
