//! The durable event log behind the daemon, as a process: nothing that got a 2xx is lost
//! to a SIGKILL, ids survive restarts, `GET /events` pages and refuses bad cursors, and bad
//! store files stop the daemon with exit 2 and are left untouched.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::*;

fn store_in(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    dir.join("events.db")
}

/// Every stored event, paged through `GET /events` from the start.
async fn all_events(daemon: &Daemon) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            None => daemon.url("/events?limit=1000"),
            Some(a) => daemon.url(&format!("/events?limit=1000&after={a}")),
        };
        let page = get_json(&url).await;
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => return events,
        }
    }
}

fn id_of(event: &Value) -> u64 {
    event["id"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_ingest_loses_nothing_that_got_a_2xx() {
    let dir = fresh_state_dir();
    let store = store_in(&dir);
    let store_text = store.display().to_string();
    let envs = [("CLAUDE_MPM_EVENTBUS_STORE", store_text.as_str())];
    let mut daemon = Daemon::start(&envs);

    // 16 clients post single events as fast as they can; each 2xx is recorded.
    let acked: Arc<Mutex<BTreeMap<u64, (u64, u64)>>> = Arc::default();
    let url = daemon.url("/events");
    let mut clients = Vec::new();
    for c in 0..16u64 {
        let (acked, url) = (acked.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let http = client();
            for n in 0.. {
                let body = json!({"type": "hook.pre_tool", "data": {"client": c, "n": n}});
                let Ok(response) = http.post(&url).json(&body).send().await else {
                    return;
                };
                if !response.status().is_success() {
                    return;
                }
                let Ok(reply) = response.json::<Value>().await else {
                    return;
                };
                let id = reply["ids"][0].as_str().unwrap().parse().unwrap();
                acked.lock().unwrap().insert(id, (c, n));
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().unwrap().len() < 300 && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    daemon.sigkill();
    for client in clients {
        client.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} events acknowledged",
        acked.len()
    );

    let daemon = Daemon::start(&envs);
    let events = all_events(&daemon).await;
    let ids: Vec<u64> = events.iter().map(id_of).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids unique and increasing"
    );
    let by_id: BTreeMap<u64, &Value> = ids.iter().copied().zip(events.iter()).collect();
    for (id, (c, n)) in &acked {
        let stored = by_id
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged event {id} lost"));
        assert_eq!(stored["data"], json!({"client": c, "n": n}), "event {id}");
    }
    let unique: HashSet<(u64, u64)> = events
        .iter()
        .map(|e| {
            (
                e["data"]["client"].as_u64().unwrap(),
                e["data"]["n"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(unique.len(), events.len(), "no event stored twice");

    // New ids continue above the old ones.
    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"after.restart"}"#,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let new_id: u64 = reply["ids"][0].as_str().unwrap().parse().unwrap();
    assert!(
        new_id > *ids.last().unwrap(),
        "{new_id} after {:?}",
        ids.last()
    );
    drop(daemon);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_events_pages_in_order_and_refuses_bad_cursors() {
    let daemon = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_RETENTION_EVENTS", "20")]);
    let body: String = (0..25)
        .map(|n| {
            format!(
                "{{\"type\":\"{}\",\"data\":{n}}}\n",
                if n % 2 == 0 { "hook.even" } else { "hook.odd" }
            )
        })
        .collect();
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{reply}");
    let ids: Vec<String> = serde_json::from_value(reply["ids"].clone()).unwrap();
    assert_eq!(ids.len(), 25);

    // Retention keeps the newest 20: the first five are trimmed (in the background).
    eventually("retention trims to 20 events", async || {
        get_json(&daemon.url("/events?limit=100")).await["events"]
            .as_array()
            .unwrap()
            .len()
            == 20
    })
    .await;
    let page = get_json(&daemon.url("/events?limit=8")).await;
    let first: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        first,
        ids[5..13].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(page["events"][0]["data"], json!(5));
    assert_eq!(page["events"][0]["type"], "hook.odd");
    assert!(
        page["events"][0]["timestamp"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    let next = page["next"].as_str().unwrap();
    let page = get_json(&daemon.url(&format!("/events?limit=100&after={next}"))).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 12);
    assert_eq!(page["next"], Value::Null);

    let odd = get_json(&daemon.url("/events?pattern=hook.odd&limit=100")).await;
    assert!(
        odd["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "hook.odd")
    );
    assert_eq!(odd["events"].as_array().unwrap().len(), 10);

    for (query, status, needle) in [
        ("after=abc", 400, "not an event id"),
        ("after=9999", 400, "no such event yet"),
        (
            &format!("after={}", ids[0]) as &str,
            410,
            "4 events after it were trimmed",
        ),
        ("limit=0", 400, "limit"),
        ("since=yesterday-ish", 400, "since"),
    ] {
        let (got, text) = get_text(&daemon.url(&format!("/events?{query}"))).await;
        assert_eq!(got, status, "{query}: {text}");
        assert!(text.contains(needle), "{query}: {text}");
    }
    let recent = get_json(&daemon.url("/events?since=1h&limit=100")).await;
    assert_eq!(recent["events"].as_array().unwrap().len(), 20);
}

#[test]
fn a_file_that_is_not_a_store_stops_the_daemon_and_is_left_untouched() {
    let dir = fresh_state_dir();
    let store = store_in(&dir);
    let junk = b"this is not a database, it is a shopping list\n".repeat(200);
    std::fs::write(&store, &junk).unwrap();
    let out = run(
        &[],
        &[
            ("CLAUDE_MPM_EVENTBUS_STORE", store.to_str().unwrap()),
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
        ],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&store.display().to_string()), "{stderr}");
    assert!(stderr.contains("left untouched"), "{stderr}");
    assert_eq!(
        std::fs::read(&store).unwrap(),
        junk,
        "the file is unchanged"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn two_daemons_on_one_store_the_second_is_refused_clearly() {
    let dir = fresh_state_dir();
    let store = store_in(&dir);
    let store_text = store.display().to_string();
    let first = Daemon::start(&[("CLAUDE_MPM_EVENTBUS_STORE", store_text.as_str())]);
    let out = run(
        &[],
        &[
            ("CLAUDE_MPM_EVENTBUS_STORE", store_text.as_str()),
            ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
        ],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("another eventbus daemon uses this store"),
        "{stderr}"
    );
    drop(first);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_streams_stored_then_live_and_resumes_across_a_restart() {
    let dir = fresh_state_dir();
    let store = store_in(&dir);
    let store_text = store.display().to_string();
    let envs = [("CLAUDE_MPM_EVENTBUS_STORE", store_text.as_str())];
    let mut daemon = Daemon::start(&envs);
    let post_n = async |daemon: &Daemon, from: u64, to: u64| -> Vec<String> {
        let body: String = (from..to)
            .map(|n| {
                format!(
                    "{{\"type\":\"hook.n\",\"data\":{n}}}\n{{\"type\":\"other.n\",\"data\":{n}}}\n"
                )
            })
            .collect();
        let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
        assert_eq!(status, 200, "{reply}");
        serde_json::from_value(reply["ids"].clone()).unwrap()
    };
    let first = post_n(&daemon, 0, 3).await;

    // Stored first (after the first event), then live, filtered by pattern.
    let mut sse = SseReader::open(
        &daemon.url(&format!("/events/stream?pattern=hook.*&after={}", first[0])),
        None,
    )
    .await;
    let stored = sse.take(2).await;
    assert_eq!(
        stored
            .iter()
            .map(|e| e.2["data"].clone())
            .collect::<Vec<_>>(),
        [json!(1), json!(2)]
    );
    assert_eq!(stored[0].0, first[2], "the SSE id is the log id");
    assert_eq!(stored[0].1, "hook.n");
    assert_eq!(stored[0].2["id"], first[2].as_str());
    post_n(&daemon, 3, 6).await;
    let live = sse.take(3).await;
    assert_eq!(
        live.iter().map(|e| e.2["data"].clone()).collect::<Vec<_>>(),
        [json!(3), json!(4), json!(5)]
    );
    let last_seen = live[2].0.clone();
    drop(sse);

    // The daemon dies; events are posted after it comes back; the client resumes with
    // Last-Event-ID and gets exactly what it had not seen, in order.
    daemon.sigkill();
    let daemon = Daemon::start(&envs);
    post_n(&daemon, 6, 8).await;
    let mut sse = SseReader::open(
        &daemon.url("/events/stream?pattern=hook.*"),
        Some(&last_seen),
    )
    .await;
    let resumed = sse.take(2).await;
    assert_eq!(
        resumed
            .iter()
            .map(|e| e.2["data"].clone())
            .collect::<Vec<_>>(),
        [json!(6), json!(7)]
    );
    drop(sse);

    // Without a position: only new events.
    let mut sse = SseReader::open(&daemon.url("/events/stream"), None).await;
    post_n(&daemon, 8, 9).await;
    let new = sse.take(2).await;
    assert_eq!(
        new.iter().map(|e| e.2["data"].clone()).collect::<Vec<_>>(),
        [json!(8), json!(8)]
    );
    let (status, text) = get_text(&daemon.url("/events/stream?after=nope")).await;
    assert_eq!(status, 400, "{text}");

    // An open stream does not hold up a graceful stop (the HTTP grace period is 5 s).
    let mut daemon = daemon;
    let started = Instant::now();
    daemon.sigterm();
    let (exit, stderr) = daemon.wait_exit(Duration::from_secs(30));
    assert!(exit.success(), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    drop(sse);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbus_tail_prints_the_log_and_follows_and_replay_republishes_marked() {
    let daemon = Daemon::start(&[]);
    let addr = daemon.addr.to_string();
    let body: String = (0..30)
        .map(|n| {
            format!(
                "{{\"type\":\"hook.{}\",\"data\":{n}}}\n",
                if n % 2 == 0 { "even" } else { "odd" }
            )
        })
        .collect();
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{reply}");
    let ids: Vec<String> = serde_json::from_value(reply["ids"].clone()).unwrap();

    let lines = |out: &std::process::Output| -> Vec<Value> {
        text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let out = run(&["tail", "--addr", &addr], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = lines(&out);
    assert_eq!(all.len(), 30);
    assert_eq!(
        all.iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        ids
    );
    let out = run(
        &[
            "tail",
            "--addr",
            &addr,
            "--pattern",
            "hook.odd",
            "--after",
            &ids[9],
        ],
        &[],
        None,
    );
    let odd = lines(&out);
    assert_eq!(
        odd.iter()
            .map(|e| e["data"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [11, 13, 15, 17, 19, 21, 23, 25, 27, 29]
    );
    let out = run(&["tail", "--addr", &addr, "--after", "nope"], &[], None);
    assert_eq!(out.status.code(), Some(2), "a bad id is bad input");
    assert!(
        text(&out.stderr).contains("not an event id"),
        "{}",
        text(&out.stderr)
    );

    // -f: the backlog after --after, then live.
    let (mut follow, rx) = tail_follow(&addr, &ids[27]);
    let mut seen = Vec::new();
    let next = |rx: &std::sync::mpsc::Receiver<String>| -> Value {
        serde_json::from_str(
            &rx.recv_timeout(Duration::from_secs(20))
                .expect("a line from tail -f"),
        )
        .unwrap()
    };
    seen.push(next(&rx));
    seen.push(next(&rx));
    post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"hook.live","data":"x"}"#,
    )
    .await;
    seen.push(next(&rx));
    let _ = follow.kill();
    let _ = follow.wait();
    assert_eq!(
        seen.iter().map(|e| e["data"].clone()).collect::<Vec<_>>(),
        [json!(28), json!(29), json!("x")]
    );

    // replay: a dry run counts, a real one republishes to the live consumers, marked.
    let published = |stats: &Value| stats["events_published"].as_u64().unwrap();
    let before = published(&get_json(&daemon.url("/stats")).await);
    let out = run(
        &[
            "replay",
            "--addr",
            &addr,
            "--after",
            &ids[19],
            "--pattern",
            "hook.even",
            "--dry-run",
        ],
        &[],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(lines(&out), [json!({"replayed": 5, "dry_run": true})]);
    assert_eq!(published(&get_json(&daemon.url("/stats")).await), before);
    // A live consumer got them: the metrics consumer counted five more hook.even events
    // (the relay's payload marks each as a replay: relay-socketio's wire tests).
    let even_counted = |text: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with("eventbus_events_total{") && l.contains("\"hook.even\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let even_before = even_counted(&get_text(&daemon.url("/metrics")).await.1);
    assert!(even_before > 0, "the metrics consumer counts hook.even");
    let out = run(
        &[
            "replay",
            "--addr",
            &addr,
            "--after",
            &ids[19],
            "--pattern",
            "hook.even",
        ],
        &[],
        None,
    );
    assert_eq!(lines(&out), [json!({"replayed": 5, "dry_run": false})]);
    assert_eq!(
        published(&get_json(&daemon.url("/stats")).await),
        before + 5
    );
    eventually("the metrics consumer counts the replays", async || {
        even_counted(&get_text(&daemon.url("/metrics")).await.1) == even_before + 5
    })
    .await;
    let out = run(&["replay", "--addr", &addr], &[], None);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        get_json(&daemon.url("/events?limit=1000")).await["events"]
            .as_array()
            .unwrap()
            .len(),
        31,
        "replays are not stored again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_events_come_from_the_log_and_survive_a_restart() {
    let dir = fresh_state_dir();
    let store = store_in(&dir);
    let store_text = store.display().to_string();
    // A history of 1 (the bus's in-memory ring) does not limit what the log shows.
    let envs = [
        ("CLAUDE_MPM_EVENTBUS_STORE", store_text.as_str()),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "1"),
    ];
    let mut daemon = Daemon::start(&envs);
    let body: String = (0..5)
        .map(|n| format!("{{\"type\":\"r.{n}\",\"data\":{{\"n\":{n}}}}}\n"))
        .collect();
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{reply}");
    let ids = reply["ids"].clone();
    daemon.sigkill();

    let daemon = Daemon::start(&envs);
    let recent = get_json(&daemon.url("/events/recent?limit=3")).await;
    let got: Vec<(Value, Value, Value)> = recent
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].clone(), e["type"].clone(), e["data"]["n"].clone()))
        .collect();
    assert_eq!(
        got,
        [
            (ids[2].clone(), json!("r.2"), json!(2)),
            (ids[3].clone(), json!("r.3"), json!(3)),
            (ids[4].clone(), json!("r.4"), json!(4)),
        ],
        "the same id text as the POST reply, oldest first"
    );
    assert_eq!(
        get_json(&daemon.url("/events/recent"))
            .await
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let (status, text) = get_text(&daemon.url("/events/recent?limit=10001")).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("limit=\\\"10001\\\"") && text.contains("GET /events"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventbus_tail_pages_through_a_long_log_in_order_once_and_follows_on_from_its_end() {
    let daemon = Daemon::start(&[]);
    let addr = daemon.addr.to_string();
    // Three pages of tail's 10,000 and a bit.
    let mut ids: Vec<String> = Vec::new();
    for chunk in 0..5 {
        let body: String = (0..5_001)
            .map(|n| format!("{{\"type\":\"t\",\"data\":{}}}\n", chunk * 5_001 + n))
            .collect();
        let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
        assert_eq!(status, 200, "{reply}");
        ids.extend(serde_json::from_value::<Vec<String>>(reply["ids"].clone()).unwrap());
    }
    let out = run(&["tail", "--addr", &addr], &[], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            let event: Value = serde_json::from_str(l).unwrap();
            event["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(printed.len(), ids.len());
    assert!(printed == ids, "every event once, in log order");

    // -f after a multi-page backlog: the live part starts right after the backlog's end.
    let (mut follow, rx) = tail_follow(&addr, &ids[100]);
    let backlog = ids.len() - 101;
    for _ in 0..backlog {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("the backlog from tail -f");
    }
    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"t.live","data":1}"#,
    )
    .await;
    assert!((200..300).contains(&status), "{reply}");
    let live: Value =
        serde_json::from_str(&rx.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!(live["type"], "t.live", "no event twice at the seam: {live}");
    follow.kill().unwrap();
    let _ = follow.wait();
}

/// `eventbus tail -f --after AFTER`, and the lines it prints as they come.
fn tail_follow(
    addr: &str,
    after: &str,
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut follow = command(&[])
        .args(["tail", "-f", "--addr", addr, "--after", after])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (follow, rx)
}
