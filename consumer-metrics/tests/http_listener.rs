//! Scrapes the real HTTP listener on 127.0.0.1 with an ephemeral port.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bus_core::EventBus;
use common::{parse, value};
use consumer_metrics::install_prometheus;
use serde_json::json;

/// One plain HTTP/1.1 request; returns the status line, the headers (lower-cased) and the body.
fn get(addr: SocketAddr, method: &str, path: &str) -> (String, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (
        status.to_owned(),
        headers.to_ascii_lowercase(),
        body.to_owned(),
    )
}

#[test]
fn scrapes_fresh_stats_over_http() {
    let bus = EventBus::new();
    let server = install_prometheus(&bus, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);

    let (status, headers, body) = get(addr, "GET", "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    assert_eq!(
        value(&parse(&body), "eventbus_events_published_total", &[]),
        0.0
    );

    for _ in 0..3 {
        bus.publish("http.test", json!({"n": 1}));
    }
    bus.flush_blocking(Duration::from_secs(5)).unwrap();
    // No refresh call in between: the scrape itself reads fresh stats.
    let (_, _, body) = get(addr, "GET", "/metrics");
    let scrape = parse(&body);
    assert_eq!(value(&scrape, "eventbus_events_published_total", &[]), 3.0);
    assert_eq!(
        value(
            &scrape,
            "eventbus_events_total",
            &[("event_type", "http.test")]
        ),
        3.0
    );
    // The same lines as render() (the exporter's family order is not fixed).
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(sorted(&body), sorted(&server.metrics().render()));

    let (status, _, _) = get(addr, "GET", "/other");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _, _) = get(addr, "POST", "/metrics");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");

    server.shutdown();
    assert!(
        TcpStream::connect(addr).is_err(),
        "the port is closed after shutdown"
    );
    assert!(
        bus.stats().subscribers.is_empty(),
        "shutting down the only holder of the metrics detaches the subscriber"
    );
}

#[test]
fn a_busy_port_is_reported_with_its_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = install_prometheus(&EventBus::new(), addr)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&addr.to_string()), "{err}");
}
