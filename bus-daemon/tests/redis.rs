//! Daemons on one Redis stream (`CLAUDE_MPM_EVENTBUS_REDIS_URL`), as processes, with a real
//! redis-server started here: every event posted to either reaches both daemons' `GET
//! /events` and SSE streams, in one order, with the stream ids; Redis gone means 503.

mod common;

use bus_redis::RedisServer;
use serde_json::{Value, json};

use common::*;

async fn post_n(daemon: &Daemon, from: u64, to: u64) -> Vec<String> {
    let body: String = (from..to)
        .map(|n| format!("{{\"type\":\"hook.n\",\"data\":{n}}}\n"))
        .collect();
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{reply}");
    serde_json::from_value(reply["ids"].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_stream_deliver_every_event_in_one_order() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let envs = [
        ("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.as_str()),
        ("CLAUDE_MPM_EVENTBUS_REDIS_STREAM", "test:events"),
    ];
    let a = Daemon::start(&envs);
    let b = Daemon::start(&envs);
    let mut sse_a = SseReader::open(&a.url("/events/stream?after=0-0"), None).await;
    let mut sse_b = SseReader::open(&b.url("/events/stream?after=0-0"), None).await;

    let mut ids = post_n(&a, 0, 3).await;
    ids.extend(post_n(&b, 3, 5).await);
    ids.extend(post_n(&a, 5, 6).await);
    let expected_ids: Vec<String> = (1..=6).map(|n| format!("0-{n}")).collect();
    assert_eq!(ids, expected_ids, "the stream ids, dense, in posting order");
    let expected_data: Vec<Value> = (0..6).map(|n| json!(n)).collect();

    for (name, sse) in [("a", &mut sse_a), ("b", &mut sse_b)] {
        let got = sse.take(6).await;
        let got_ids: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(got_ids, expected_ids, "daemon {name}'s SSE ids");
        let data: Vec<Value> = got.iter().map(|e| e.2["data"].clone()).collect();
        assert_eq!(data, expected_data, "daemon {name}'s SSE events");
    }
    for (name, daemon) in [("a", &a), ("b", &b)] {
        let page = get_json(&daemon.url("/events")).await;
        let events = page["events"].as_array().unwrap();
        let got_ids: Vec<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        assert_eq!(got_ids, expected_ids, "daemon {name}'s GET /events: {page}");
        let data: Vec<Value> = events.iter().map(|e| e["data"].clone()).collect();
        assert_eq!(data, expected_data, "daemon {name}");
        let after = get_json(&daemon.url("/events?after=0-4")).await;
        assert_eq!(after["events"][0]["id"], "0-5", "{after}");
        let stats = get_json(&daemon.url("/stats")).await;
        assert_eq!(stats["store"]["backend"], "redis", "{stats}");
    }

    // Redis gone: no 2xx for events it does not have, and the cause is named.
    redis.kill();
    let (status, reply) = post(
        &a.url("/events"),
        "application/x-ndjson",
        "{\"type\":\"hook.n\",\"data\":99}\n",
    )
    .await;
    assert_eq!(status, 503, "{reply}");
    let text = reply.to_string();
    assert!(
        text.contains(&format!("Redis at 127.0.0.1:{}", redis.port())),
        "{text}"
    );
}

#[test]
fn the_config_masks_the_password_and_a_dead_redis_stops_the_start_clearly() {
    let dead = RedisServer::start();
    let port = dead.port();
    drop(dead);
    let url = format!("redis://:hunter2@127.0.0.1:{port}/0");
    let envs = [("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.as_str())];
    let shown = run(&["config"], &envs, None);
    let stdout = text(&shown.stdout);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    assert!(
        stdout.contains(&format!("redis://:****@127.0.0.1:{port}/0")),
        "{stdout}"
    );
    assert!(!stdout.contains("hunter2"), "{stdout}");

    let serve = run(
        &["serve"],
        &[
            ("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.as_str()),
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
        ],
        None,
    );
    let stderr = text(&serve.stderr);
    assert_eq!(serve.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot open the event log on Redis"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // A consumer group is a Redis stream's: without Redis the start stops, naming both.
    let serve = run(
        &["serve"],
        &[
            ("CLAUDE_MPM_RELAY_GROUP", "dashboards"),
            ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
        ],
        None,
    );
    let stderr = text(&serve.stderr);
    assert_eq!(serve.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("CLAUDE_MPM_RELAY_GROUP")
            && stderr.contains("CLAUDE_MPM_EVENTBUS_REDIS_URL"),
        "{stderr}"
    );
}

/// The ids (as numbers) and payloads the logging consumer logged, in the order it logged them.
fn logged(daemon: &Daemon) -> Vec<(u64, Value)> {
    daemon
        .stderr
        .lock()
        .unwrap()
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "eventbus::events")
        .map(|l| {
            let data = l["fields"]["data"].as_str().unwrap_or("null");
            (
                l["fields"]["event_id"].as_u64().unwrap(),
                serde_json::from_str(data).unwrap(),
            )
        })
        .collect()
}

async fn logged_n(daemon: &Daemon, n: usize) -> Vec<(u64, Value)> {
    eventually(&format!("{n} events logged"), async || {
        logged(daemon).len() >= n
    })
    .await;
    logged(daemon)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_daemon_s_bus_consumers_get_every_event_in_stream_order_once_and_resume() {
    let redis = RedisServer::start();
    let url = redis.url();
    let envs = |member: &'static str| {
        vec![
            ("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.clone()),
            ("CLAUDE_MPM_EVENTBUS_REDIS_STREAM", "test:fanout".to_owned()),
            ("CLAUDE_MPM_EVENTBUS_REDIS_MEMBER", member.to_owned()),
            ("CLAUDE_MPM_EVENTBUS_LOGGING", "true".to_owned()),
            ("CLAUDE_MPM_EVENTBUS_LOG_FORMAT", "json".to_owned()),
        ]
    };
    let start = |member: &'static str| {
        let owned = envs(member);
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Daemon::start(&pairs)
    };
    let a = start("a");
    let mut b = start("b");

    // Posted to both, concurrently: each daemon's logging consumer (a bus consumer) logs all
    // of them, in the stream's order, once.
    let (ids_a, ids_b) = tokio::join!(post_n(&a, 0, 40), post_n(&b, 100, 140));
    assert_eq!(ids_a.len() + ids_b.len(), 80);
    let page = get_json(&a.url("/events?limit=1000")).await;
    let order: Vec<(u64, Value)> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let id = e["id"].as_str().unwrap();
            (id[2..].parse().unwrap(), e["data"].clone())
        })
        .collect();
    assert_eq!(order.len(), 80, "{page}");
    assert_eq!(
        logged_n(&a, 80).await,
        order,
        "daemon a's bus: the stream's order"
    );
    assert_eq!(
        logged_n(&b, 80).await,
        order,
        "daemon b's bus: the stream's order"
    );
    let stats = get_json(&b.url("/stats")).await;
    assert_eq!(stats["feed"]["name"], "bus@b", "{stats}");
    assert_eq!(stats["feed"]["dispatched"], 80, "{stats}");
    assert_eq!(stats["feed"]["position"], "0-80", "{stats}");
    assert_eq!(stats["feed"]["lag"], 0, "{stats}");
    let metrics = get_text(&b.url("/metrics")).await.1;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("eventbus_events_total{event_type=\"hook.n\"} 80")),
        "daemon b counts the events posted to a too:\n{metrics}"
    );

    // b stops cleanly; what is posted meanwhile reaches its bus after the restart, once.
    b.sigterm();
    let (status, stderr) = b.wait_exit(std::time::Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    post_n(&a, 200, 210).await;
    let b = start("b");
    let got = logged_n(&b, 10).await;
    let data: Vec<Value> = got.iter().map(|e| e.1.clone()).collect();
    assert_eq!(data, (200..210).map(|n| json!(n)).collect::<Vec<_>>());
    assert_eq!(got[0].0, 81, "resumed right after its cursor");
    post_n(&b, 300, 301).await;
    let got = logged_n(&b, 11).await;
    assert_eq!(got.len(), 11, "none twice: {got:?}");
    assert_eq!(logged_n(&a, 91).await.len(), 91);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_stats_and_metrics_show_the_connection_and_a_restart_is_a_reconnect() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let envs = [
        ("CLAUDE_MPM_EVENTBUS_REDIS_URL", url.as_str()),
        ("CLAUDE_MPM_EVENTBUS_REDIS_MEMBER", "h"),
    ];
    let daemon = Daemon::start(&envs);
    post_n(&daemon, 0, 3).await;
    let health = get_json(&daemon.url("/healthz")).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["store"]["state"], "connected", "{health}");
    assert_eq!(health["store"]["reconnects"], 0, "{health}");
    let metrics = get_text(&daemon.url("/metrics")).await.1;
    for line in [
        "eventbus_store_connected{backend=\"redis\"} 1",
        "eventbus_store_reconnects_total{backend=\"redis\"} 0",
        "eventbus_log_lag{reader=\"feed\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }

    // An SSE client open across the outage goes on where it was.
    let mut sse = SseReader::open(&daemon.url("/events/stream?after=0-3"), None).await;

    // Redis down: degraded, with the cause; back (same data, AOF): one reconnect, and the
    // daemon takes events again after the ones it had.
    redis.kill();
    eventually("the daemon to see Redis gone", async || {
        get_json(&daemon.url("/healthz")).await["status"] == "degraded"
    })
    .await;
    let health = get_json(&daemon.url("/healthz")).await;
    assert_eq!(health["store"]["state"], "reconnecting", "{health}");
    let cause = health["store"]["last_error"].as_str().unwrap_or_default();
    assert!(
        cause.contains(&format!("Redis at 127.0.0.1:{}", redis.port())),
        "{health}"
    );
    let stats = get_json(&daemon.url("/stats")).await;
    assert_eq!(stats["store"]["health"]["state"], "reconnecting", "{stats}");
    let down = get_text(&daemon.url("/metrics")).await.1;
    assert!(
        down.contains("eventbus_store_connected{backend=\"redis\"} 0"),
        "{down}"
    );

    redis.restart();
    eventually("the daemon to reconnect", async || {
        get_json(&daemon.url("/healthz")).await["status"] == "ok"
    })
    .await;
    let health = get_json(&daemon.url("/healthz")).await;
    assert!(
        health["store"]["reconnects"].as_u64().unwrap() >= 1,
        "{health}"
    );
    // The first call on a connection broken by the restart may fail (503, never a 2xx) while
    // the connection manager reconnects; the next ones go through.
    let mut reply = Value::Null;
    eventually("a POST to go through again", async || {
        let (status, body) = post(
            &daemon.url("/events"),
            "application/x-ndjson",
            "{\"type\":\"hook.n\",\"data\":3}\n",
        )
        .await;
        assert!(status == 200 || status == 503, "{status} {body}");
        reply = body;
        status == 200
    })
    .await;
    assert_eq!(reply["ids"], json!(["0-4"]), "the stream came back whole");
    let after = sse.take(1).await;
    assert_eq!(
        after[0].0, "0-4",
        "the SSE stream waited for Redis and went on"
    );
    let metrics = get_text(&daemon.url("/metrics")).await.1;
    assert!(
        metrics.lines().any(|l| l
            .starts_with("eventbus_store_reconnects_total{backend=\"redis\"} ")
            && !l.ends_with(" 0")),
        "{metrics}"
    );
}
