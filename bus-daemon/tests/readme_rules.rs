//! The README's "Validating and routing" section works as written: its schema file loads,
//! its refusal is what `eventbus publish` prints, and its three conditions select what the
//! text says they do.

mod common;

use serde_json::{Value, json};

use common::*;

const README: &str = include_str!("../../README.md");

/// The first fenced block after `<!-- readme-test: NAME -->`.
fn block(name: &str) -> &'static str {
    let marker = format!("<!-- readme-test: {name} -->");
    let start = README
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in the README"));
    let rest = &README[start..];
    let open = rest.find("```").expect("a fenced block");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").expect("the block's end")]
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_readme_schema_refusal_and_conditions_work_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("schemas.json");
    std::fs::write(&file, block("schema")).unwrap();
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_SCHEMAS", file.to_str().unwrap()),
    ]);
    let addr = daemon.addr.to_string();

    // The refusal: the command line as written (against this daemon), the output as written.
    let refusal = block("refusal");
    let mut lines = refusal.lines();
    let command = lines
        .next()
        .unwrap()
        .strip_prefix("$ eventbus publish ")
        .unwrap();
    let expected = lines.next().unwrap().replace("127.0.0.1:8770", &addr);
    let (event_type, data) = command.split_once(' ').unwrap();
    let data = data.trim_matches('\'');
    let out = run(&["publish", "--addr", &addr, event_type, data], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr).trim(), expected);

    let events = [
        (
            "hook.pre_tool",
            json!({"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Edit", "tool_input": {"file_path": "/a"}}),
        ),
        (
            "hook.pre_tool",
            json!({"session_id": "s1", "hook_event_name": "PreToolUse", "tool_name": "Read", "tool_input": {"file_path": "/b"}}),
        ),
        (
            "hook.post_tool",
            json!({"session_id": "s2", "hook_event_name": "PostToolUse", "tool_name": "Write"}),
        ),
        ("session.start", json!({"session_id": "s1"})),
    ];
    let body: Vec<Value> = events
        .iter()
        .map(|(t, d)| json!({"type": t, "data": d}))
        .collect();
    let (status, reply) = post(
        &daemon.url("/events"),
        "application/json",
        json!(body).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    let conditions: Vec<&str> = block("conditions").lines().collect();
    assert_eq!(conditions.len(), 3);
    // Which of the four events each condition selects, as the README describes them.
    let expected: [&[usize]; 3] = [&[0, 2], &[0, 1], &[0, 2, 3]];
    for (condition, want) in conditions.iter().zip(expected) {
        let page = get_json(&daemon.url(&format!("/events?where={}", encode(condition)))).await;
        let got: Vec<usize> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().parse::<usize>().unwrap() - 1)
            .collect();
        assert_eq!(got, want, "{condition}");
    }
    // The shell lines use the same three conditions.
    let shell = README
        .split("<!-- readme-test: conditions -->")
        .nth(1)
        .unwrap();
    for condition in &conditions {
        assert!(shell.contains(&format!("'{condition}'")), "{condition}");
    }
    // And each works where the shell lines put it: as the allow-list's condition.
    let filtered = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_STORE", "memory"),
        ("CLAUDE_MPM_EVENTBUS_FILTER_WHERE", conditions[2]),
        ("CLAUDE_MPM_RELAY_WHERE", conditions[0]),
    ]);
    let (status, reply) = post(
        &filtered.url("/events"),
        "application/json",
        json!(body).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        (reply["accepted"].as_u64(), reply["filtered"].as_u64()),
        (Some(3), Some(1))
    );
}
