//! Schema validation and content conditions, with the daemon as a process: 422s naming every
//! invalid event, nothing of such a body stored, counts in /stats, `eventbus publish` exit 1,
//! bad schema files and conditions stopping startup with exit 2, reloads by PATCH /config and
//! SIGHUP, and `?where=` / `--where` / `CLAUDE_MPM_EVENTBUS_FILTER_WHERE`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use common::*;

const TOOL_SCHEMA: &str = r#"{
  "type": "object",
  "required": ["tool_name"],
  "properties": {"tool_name": {"type": "string"}, "session_id": {"type": "string"}}
}"#;

/// A temp dir with `schemas.json` (`hook.pre_tool` -> `tool.json` by `$ref`) and `tool.json`.
fn schema_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tool.json"), TOOL_SCHEMA).unwrap();
    let file = dir.path().join("schemas.json");
    std::fs::write(&file, r#"{"hook.pre_tool": {"$ref": "tool.json"}}"#).unwrap();
    (dir, file)
}

fn start(file: &Path, more: &[(&str, &str)]) -> Daemon {
    let file = file.to_str().unwrap().to_owned();
    let mut envs: Vec<(&str, &str)> = vec![
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_SCHEMAS", &file),
    ];
    envs.extend_from_slice(more);
    Daemon::start(&envs)
}

async fn stored(daemon: &Daemon, query: &str) -> Vec<Value> {
    let page = get_json(&daemon.url(&format!("/events?{query}"))).await;
    page["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn invalid_events_are_refused_with_422_naming_each_and_nothing_is_stored() {
    let (_dir, file) = schema_dir();
    let daemon = start(&file, &[]);
    let ndjson = concat!(
        "{\"type\":\"hook.pre_tool\",\"data\":{\"tool_name\":\"Read\"}}\n",
        "\n",
        "{\"type\":\"hook.pre_tool\",\"data\":{\"tool_name\":42}}\n",
        "{\"type\":\"other\",\"data\":5}\n",
        "{\"type\":\"hook.pre_tool\",\"data\":{\"session_id\":1}}\n",
    );
    let (status, body) = post(
        &daemon.url("/events"),
        "application/x-ndjson",
        ndjson.to_owned(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("2 invalid events"), "{error}");
    assert!(
        error.contains(r#"line 3 (hook.pre_tool): /tool_name: 42 is not of type "string""#),
        "{error}"
    );
    assert!(error.contains("line 5 (hook.pre_tool): "), "{error}");
    assert!(error.contains("/session_id: 1 is not of type"), "{error}");
    let invalid = body["invalid"].as_array().unwrap();
    assert_eq!(invalid.len(), 2);
    assert_eq!(invalid[0]["line"], 3);
    assert_eq!(invalid[0]["violations"][0]["pointer"], "/tool_name");
    assert_eq!(invalid[1]["line"], 5);
    assert_eq!(
        invalid[1]["violations"].as_array().unwrap().len(),
        2,
        "{body}"
    );

    let array = json!([
        {"type": "hook.pre_tool", "data": {"tool_name": "Edit"}},
        {"type": "hook.pre_tool", "data": {"tool_name": []}},
    ]);
    let (status, body) = post(
        &daemon.url("/events"),
        "application/json",
        array.to_string(),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["invalid"][0]["index"], 1);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("event [1] (hook.pre_tool)"),
        "{body}"
    );

    assert!(
        stored(&daemon, "").await.is_empty(),
        "nothing of either body stored"
    );
    let stats = get_json(&daemon.url("/stats")).await;
    assert_eq!(stats["events_published"], 0);
    assert_eq!(stats["events_invalid"], 3);
    assert_eq!(stats["events_invalid_by_type"]["hook.pre_tool"], 3);
    assert_eq!(
        stats["rules"]["schemas"]["patterns"],
        json!(["hook.pre_tool"])
    );

    let (status, body) = post(
        &daemon.url("/events"),
        "application/x-ndjson",
        ndjson.lines().next().unwrap().to_owned(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored(&daemon, "").await.len(), 1);
}

#[tokio::test]
async fn warn_mode_accepts_and_counts() {
    let (_dir, file) = schema_dir();
    let daemon = start(&file, &[("CLAUDE_MPM_EVENTBUS_SCHEMA_MODE", "warn")]);
    let (status, body) = post(
        &daemon.url("/events"),
        "application/json",
        r#"{"type":"hook.pre_tool","data":{"tool_name":42}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 1);
    let stats = get_json(&daemon.url("/stats")).await;
    assert_eq!(stats["events_invalid"], 1);
    assert_eq!(stats["rules"]["schemas"]["mode"], "warn");
}

#[tokio::test]
async fn eventbus_publish_prints_the_rules_and_exits_1() {
    let (_dir, file) = schema_dir();
    let daemon = start(&file, &[]);
    let addr = daemon.addr.to_string();
    let out = run(
        &[
            "publish",
            "--addr",
            &addr,
            "hook.pre_tool",
            r#"{"tool_name": 42}"#,
        ],
        &[],
        None,
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(r#"/tool_name: 42 is not of type "string""#),
        "{stderr}"
    );
    let out = run(
        &[
            "publish",
            "--addr",
            &addr,
            "hook.pre_tool",
            r#"{"tool_name": "Read"}"#,
        ],
        &[],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn bad_schema_files_and_conditions_stop_startup_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let cases = [
        (write("a.json", "{oops"), "not JSON".to_owned()),
        (
            write("b.json", r#"{"hook.*": {"type": 12}}"#),
            "pattern \"hook.*\": not a valid JSON Schema".to_owned(),
        ),
        (
            write("c.json", r#"{"hook.*": {"$ref": "missing.json"}}"#),
            "missing.json".to_owned(),
        ),
        (
            write(
                "d.json",
                r#"{"hook.*": {"$ref": "http://example.com/x.json"}}"#,
            ),
            "remote $ref http://example.com/x.json refused".to_owned(),
        ),
        (write("e.json", r#"{"": {}}"#), "pattern \"\"".to_owned()),
    ];
    for (file, needle) in &cases {
        let out = run(
            &[],
            &[
                ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
                ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
                ("CLAUDE_MPM_EVENTBUS_SCHEMAS", file),
            ],
            None,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(stderr.contains("CLAUDE_MPM_EVENTBUS_SCHEMAS"), "{stderr}");
        assert!(stderr.contains(file.as_str()), "{file}: {stderr}");
        assert!(stderr.contains(needle.as_str()), "{file}: {stderr}");
    }
    for var in ["CLAUDE_MPM_RELAY_WHERE", "CLAUDE_MPM_EVENTBUS_FILTER_WHERE"] {
        let out = run(
            &[],
            &[
                ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
                ("CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "127.0.0.1:0"),
                (var, "data.tool_name == "),
            ],
            None,
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{var}: {stderr}");
        assert!(stderr.contains(var), "{stderr}");
        assert!(stderr.contains("column 19"), "{stderr}");
        assert!(stderr.contains("expecting"), "{stderr}");
    }
}

async fn patch(daemon: &Daemon, body: &'static str) -> (u16, Value) {
    let response = client()
        .patch(daemon.url("/config"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn publish_status(daemon: &Daemon, data: Value) -> u16 {
    let body = json!({"type": "hook.pre_tool", "data": data}).to_string();
    post(&daemon.url("/events"), "application/json", body)
        .await
        .0
}

#[tokio::test]
async fn patch_config_and_sighup_reload_the_file_and_a_bad_reload_keeps_the_old_schemas() {
    let (dir, file) = schema_dir();
    let daemon = start(&file, &[]);
    assert_eq!(publish_status(&daemon, json!({"tool_name": 1})).await, 422);

    // The schema now wants an integer.
    std::fs::write(
        dir.path().join("tool.json"),
        r#"{"properties": {"tool_name": {"type": "integer"}}}"#,
    )
    .unwrap();
    let (status, body) = patch(&daemon, r#"{"reload_schemas": true}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["schema_patterns"], json!(["hook.pre_tool"]));
    assert_eq!(publish_status(&daemon, json!({"tool_name": 1})).await, 200);
    assert_eq!(
        publish_status(&daemon, json!({"tool_name": "x"})).await,
        422
    );

    std::fs::write(&file, "{not json").unwrap();
    let (status, body) = patch(&daemon, r#"{"reload_schemas": true, "history_size": 7}"#).await;
    assert_eq!(status, 400, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("schemas in force stay unchanged"), "{error}");
    assert!(error.contains("schemas.json"), "{error}");
    assert_eq!(
        publish_status(&daemon, json!({"tool_name": "x"})).await,
        422,
        "old schemas"
    );
    let config = get_json(&daemon.url("/config")).await;
    assert_ne!(
        config["history_size"], 7,
        "nothing of a failed PATCH applied"
    );

    // SIGHUP: a good file again, this time wanting a boolean.
    std::fs::write(
        &file,
        r#"{"hook.pre_tool": {"properties": {"tool_name": {"type": "boolean"}}}}"#,
    )
    .unwrap();
    let pid = daemon.child.as_ref().unwrap().id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    eventually("the SIGHUP reload", async || {
        publish_status(&daemon, json!({"tool_name": true})).await == 200
    })
    .await;
    assert_eq!(publish_status(&daemon, json!({"tool_name": 1})).await, 422);
}

#[tokio::test]
async fn where_selects_by_content_on_reads_streams_tail_and_the_allow_list() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_FILTER_WHERE", r#"!has(data.drop)"#),
    ]);
    let body = [
        r#"{"type":"hook.pre_tool","data":{"tool_name":"Edit"}}"#,
        r#"{"type":"hook.pre_tool","data":{"tool_name":"Read"}}"#,
        r#"{"type":"hook.pre_tool","data":{"drop":true}}"#,
        r#"{"type":"hook.post_tool","data":{"tool_name":"Write"}}"#,
        r#"{"type":"session.start","data":{"n":5}}"#,
        // `has(data.drop)` cannot be evaluated on a number: no match, counted.
        r#"{"type":"odd","data":5}"#,
    ]
    .join("\n");
    let (status, reply) = post(&daemon.url("/events"), "application/x-ndjson", body).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["accepted"], 4, "{reply}");
    assert_eq!(reply["filtered"], 2, "{reply}");
    let stats = get_json(&daemon.url("/stats")).await;
    assert_eq!(stats["events_filtered"], 2);
    assert_eq!(stats["rules"]["filter_where"]["errors"], 1, "{stats}");

    let cond = "data.tool_name in [\"Edit\", \"Write\"]";
    let encoded: String = cond
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let events = stored(&daemon, &format!("where={encoded}")).await;
    let tools: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["tool_name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["Edit", "Write"]);

    let (status, answer) = get_text(&daemon.url("/events?where=data.tool_name%20%3D%3D")).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("query parameter where"), "{answer}");
    assert!(answer.contains("column 18"), "{answer}");

    // The stream from the start, with a condition: only the matching event arrives.
    let response = client()
        .get(daemon.url("/events/stream?after=0&where=type%20%3D%3D%20%22session.start%22"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let mut response = response;
    let mut seen = String::new();
    while !seen.contains("session.start") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a chunk in time")
            .unwrap()
            .expect("the stream goes on");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!seen.contains("hook.pre_tool"), "{seen}");

    let addr = daemon.addr.to_string();
    let out = run(&["tail", "--addr", &addr, "--where", cond], &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().count(),
        2,
        "{}",
        text(&out.stdout)
    );
}
