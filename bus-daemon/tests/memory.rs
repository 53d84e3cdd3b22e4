//! Memory bounded by bytes: the history's byte budget, and the budget on request bodies
//! being read at once (503 + Retry-After past it, nothing published).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use common::*;

/// An NDJSON body of exactly `len` bytes: one event whose string payload fills it.
fn body_of(len: usize) -> String {
    let frame = "{\"type\":\"big.body\",\"data\":\"\"}\n";
    format!(
        "{{\"type\":\"big.body\",\"data\":\"{}\"}}\n",
        "x".repeat(len - frame.len())
    )
}

fn headers(daemon: &Daemon, len: usize) -> String {
    format!(
        "POST /events HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
        daemon.addr
    )
}

fn answer(stream: &mut TcpStream) -> (u16, String) {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_keeps_no_more_bytes_than_its_budget() {
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_HISTORY_MAX_BYTES", "1048576"),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "1000"),
    ]);
    let blob = "y".repeat(200_000);
    for i in 0..20 {
        let body = format!("{{\"type\":\"big.event\",\"data\":{{\"i\":{i},\"blob\":\"{blob}\"}}}}");
        let (status, reply) = post(&daemon.url("/events"), "application/json", body).await;
        assert_eq!(status, 200, "{reply}");
    }
    let stats = get_json(&daemon.url("/stats")).await;
    let held = stats["history_bytes"].as_u64().unwrap();
    assert!(held <= 1 << 20, "{held} bytes held: {stats}");
    // About 200 KB each: five fit in 1 MiB, not six.
    assert_eq!(stats["history_size"], 5, "{stats}");
    assert_eq!(stats["events_published"], 20);
    // The log still has every event.
    let recent = get_json(&daemon.url("/events/recent?limit=100")).await;
    assert_eq!(recent.as_array().unwrap().len(), 20);
}

#[test]
fn bodies_past_the_budget_wait_outside_with_503_and_retry_after() {
    let mib = 1 << 20;
    let daemon = Daemon::start(&[
        ("CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES", "4194304"),
        ("CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES", "8388608"),
    ]);
    let body = body_of(4 * mib);
    // Two 4 MiB bodies in flight fill the 8 MiB budget: each sent all but its last byte.
    let mut in_flight: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(daemon.addr).unwrap();
            s.write_all(headers(&daemon, body.len()).as_bytes())
                .unwrap();
            s.write_all(&body.as_bytes()[..body.len() - 1]).unwrap();
            s
        })
        .collect();
    // Wait until the daemon has reserved both.
    let reserved = || {
        let mut s = TcpStream::connect(daemon.addr).unwrap();
        s.write_all(
            format!(
                "GET /stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                daemon.addr
            )
            .as_bytes(),
        )
        .unwrap();
        let (_, text) = answer(&mut s);
        let json: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        json["body_budget"]["in_use_bytes"].as_u64().unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reserved() < 8 * mib as u64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the two bodies were never reserved"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A third is refused at once, before its body is read, and says why.
    let mut third = TcpStream::connect(daemon.addr).unwrap();
    third
        .write_all(headers(&daemon, body.len()).as_bytes())
        .unwrap();
    let (status, text) = answer(&mut third);
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert!(
        text.contains("CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES"),
        "{text}"
    );
    // A small body is refused too while the budget is full; a GET is not affected.
    let mut small = TcpStream::connect(daemon.addr).unwrap();
    small
        .write_all(format!("{}{}", headers(&daemon, 20), "{\"type\":\"tiny\"}\n    ").as_bytes())
        .unwrap();
    assert_eq!(answer(&mut small).0, 503);

    // The two finish and are accepted; then the budget is free again.
    for s in &mut in_flight {
        s.write_all(&body.as_bytes()[body.len() - 1..]).unwrap();
        let (status, text) = answer(s);
        assert_eq!(status, 200, "{}", &text[..text.len().min(300)]);
    }
    assert_eq!(reserved(), 0);
    let mut again = TcpStream::connect(daemon.addr).unwrap();
    again
        .write_all(headers(&daemon, body.len()).as_bytes())
        .unwrap();
    again.write_all(body.as_bytes()).unwrap();
    assert_eq!(answer(&mut again).0, 200);
    // Exactly three big events were published: none of the refused ones.
    let mut s = TcpStream::connect(daemon.addr).unwrap();
    s.write_all(
        format!(
            "GET /events?pattern=big.*&limit=10 HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            daemon.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let (_, text) = answer(&mut s);
    let json: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 3);
}
