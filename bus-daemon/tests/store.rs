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
