//! Priorities and rate limits through the daemon: `"priority"` on ingested events, the rate
//! limits in `GET /config` and `PATCH /config`, a bad form refused at startup with exit 2.

mod common;

use common::{Daemon, client, get_json, post, run, text};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_config_changes_the_logging_limit_and_names_bad_fields() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_LOGGING", "true"),
        ("CLAUDE_MPM_EVENTBUS_LOG_RATE_LIMIT", "5/s"),
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
    ]);
    let config = get_json(&daemon.url("/config")).await;
    assert_eq!(config["log_rate_limit"], "5/s burst 5 drop");
    assert_eq!(config["relay_rate_limit"], Value::Null);
    let flood: String = (0..50)
        .map(|i| format!("{{\"type\":\"a.flood\",\"data\":{i}}}\n"))
        .collect();
    let (status, _) = post(&daemon.url("/events"), "application/x-ndjson", flood).await;
    assert_eq!(status, 200);
    common::eventually("the logging consumer to skip the flood", async || {
        let stats = get_json(&daemon.url("/stats")).await;
        // 5 at once, then 5 a second: the other 45 are skipped within the second.
        stats["logging"]["skipped_by_rate_limit"]
            .as_u64()
            .unwrap_or(0)
            >= 40
            && stats["logging"]["rate_limit"] == "5/s burst 5 drop"
    })
    .await;
    let patch = |body: &'static str| client().patch(daemon.url("/config")).body(body).send();
    let now: Value = patch(r#"{"log_rate_limit": "50/min"}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["log_rate_limit"], "50/min burst 1 drop");
    for (body, needle) in [
        (r#"{"log_rate_limit": "fast"}"#, "log_rate_limit:"),
        (r#"{"log_rate_limit": "5/s delay"}"#, "never waits"),
        (
            r#"{"relay_rate_limit": "5/s"}"#,
            "relay consumer is not running",
        ),
        (r#"{"relay_rate_limit": 5}"#, "invalid type"),
    ] {
        let response = patch(body).await.unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let message = response.text().await.unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    let now: Value = patch(r#"{"log_rate_limit": "0"}"#)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["log_rate_limit"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingested_events_take_a_priority_and_a_bad_one_is_refused() {
    let daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_STORE", "memory")]);
    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        json!([{"type": "hook.error", "data": {}, "priority": "high"}, {"type": "a.b", "priority": "low"}])
            .to_string(),
    )
    .await;
    assert!((200..300).contains(&status), "{status} {reply}");
    assert_eq!(reply["accepted"], 2);
    // The log keeps each publisher's priority: reads show it (and only where one was given).
    let (status, _) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type": "a.c"}"#,
    )
    .await;
    assert!((200..300).contains(&status));
    for path in ["/events", "/events/recent"] {
        let page = get_json(&daemon.url(path)).await;
        // `GET /events` answers a page, `GET /events/recent` a bare list.
        let events = page.get("events").unwrap_or(&page);
        let priorities: Vec<&Value> = events
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {page}"))
            .iter()
            .map(|e| &e["priority"])
            .collect();
        assert_eq!(
            priorities,
            [&json!("high"), &json!("low"), &Value::Null],
            "{path}"
        );
    }
    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type": "a.b", "priority": "urgent"}"#,
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(reply.to_string().contains("urgent"), "{reply}");
}

#[test]
fn a_bad_rate_limit_stops_startup_with_exit_2_naming_the_variable_and_the_forms() {
    let out = run(
        &["serve"],
        &[
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
            ("CLAUDE_MPM_RELAY_RATE_LIMIT", "200 per second"),
            ("CLAUDE_MPM_EVENTBUS_PRIORITIES", "hook.error*=urgent"),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("CLAUDE_MPM_RELAY_RATE_LIMIT"), "{stderr}");
    assert!(stderr.contains("`500/s burst 1000`"), "{stderr}");
    assert!(
        stderr.contains("CLAUDE_MPM_EVENTBUS_PRIORITIES"),
        "{stderr}"
    );
}
