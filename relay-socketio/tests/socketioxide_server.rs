//! The relay against a real in-process Socket.IO server (socketioxide), started, stopped,
//! restarted and misbehaving on purpose.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bus_core::{Event, EventBus};
use common::{
    Behaviour, PATIENCE, Recorder, TestServer, assert_all_arrived_in_order, eventually, free_port,
    test_config,
};
use relay_socketio::{RELAY_NAME, RelayConfig, SocketIoRelay};
use serde_json::{Value, json};

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

fn attached(config: RelayConfig) -> (EventBus, Arc<SocketIoRelay>) {
    init_tracing();
    let bus = EventBus::new();
    let relay = Arc::new(SocketIoRelay::new(config).unwrap());
    relay.attach(&bus).unwrap();
    (bus, relay)
}

fn publish_range(bus: &EventBus, range: std::ops::RangeInclusive<u64>) {
    for n in range {
        assert!(bus.publish("hook.pre_tool", json!({ "n": n })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_arrive_in_order_with_the_expected_payloads() {
    let recorder = Arc::new(Recorder::default());
    let behaviour = Behaviour::acking();
    let server = TestServer::start(0, recorder.clone(), behaviour.clone());
    let (bus, relay) = attached(test_config(&server.url()));

    for n in 1..=10_000u64 {
        let stamp = format!("2025-01-01T00:00:00.{n:06}Z");
        bus.publish("hook.pre_tool", json!({ "n": n, "timestamp": stamp }));
    }
    assert!(
        eventually(|| relay.stats().relayed == 10_000).await,
        "not all confirmed: {:?}",
        relay.stats()
    );
    let payloads = recorder.payloads();
    assert_eq!(payloads.len(), 10_000, "no duplicates on a healthy server");
    for (i, payload) in payloads.iter().enumerate() {
        let n = i as u64 + 1;
        let stamp = format!("2025-01-01T00:00:00.{n:06}Z");
        let expected = json!({
            "event": "claude_event", "type": "hook", "subtype": "pre_tool",
            "timestamp": stamp, "data": { "n": n, "timestamp": stamp },
            "source": "event_bus", "event_id": n
        });
        assert_eq!(payload, &expected, "payload #{n}");
    }
    let stats = relay.stats();
    assert_eq!(
        (stats.sent, stats.resent, stats.buffered, stats.dropped),
        (10_000, 0, 0, 0)
    );
    assert!(stats.connected && stats.last_relay_time.is_some());
    assert_eq!(behaviour.max_live.load(Ordering::SeqCst), 1);
    let row = bus
        .stats()
        .subscribers
        .into_iter()
        .find(|r| r.name == RELAY_NAME)
        .unwrap();
    assert_eq!((row.delivered, row.failed), (10_000, 0));
    let report = relay.stop(Duration::from_secs(5)).await;
    assert!(report.complete && report.undelivered == 0, "{report:?}");
    assert!(eventually(|| behaviour.live.load(Ordering::SeqCst) == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_data_is_relayed_and_only_matching_events() {
    let recorder = Arc::new(Recorder::default());
    let server = TestServer::start(0, recorder.clone(), Behaviour::acking());
    let config = RelayConfig {
        patterns: vec!["hook.*".into(), "startup".into()],
        ..test_config(&server.url())
    };
    let (bus, relay) = attached(config);
    let data = [
        json!([1, 2, 3]),
        json!("text"),
        Value::Null,
        json!(4.5),
        json!({"nested": {"a": [true]}}),
    ];
    for d in &data {
        bus.publish("hook.user_prompt", d.clone());
    }
    bus.publish("agent.spawned", json!({})); // not relayed
    bus.publish("startup", json!({"pid": 1}));
    assert!(
        eventually(|| relay.stats().relayed == 6).await,
        "{:?}",
        relay.stats()
    );
    let payloads = recorder.payloads();
    assert_eq!(payloads.len(), 6);
    for (payload, d) in payloads.iter().zip(&data) {
        assert_eq!(&payload["data"], d);
        assert_eq!(payload["type"], "hook");
        assert_eq!(payload["subtype"], "user_prompt");
        let ts = payload["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "{ts}");
    }
    assert_eq!(payloads[5]["type"], "startup");
    assert_eq!(payloads[5]["subtype"], "generic");
    assert_eq!(payloads[5]["event_id"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_a_server_started_after_the_relay() {
    let port = free_port();
    let (bus, relay) = attached(test_config(&format!("http://127.0.0.1:{port}")));
    publish_range(&bus, 1..=500);
    assert!(eventually(|| relay.stats().connection_failures >= 2).await);
    assert_eq!(relay.stats().buffered, 500);
    assert!(!relay.stats().connected);

    let recorder = Arc::new(Recorder::default());
    let _server = TestServer::start(port, recorder.clone(), Behaviour::acking());
    assert!(
        eventually(|| relay.stats().relayed == 500).await,
        "{:?}",
        relay.stats()
    );
    assert_eq!(recorder.ids(), (1..=500).collect::<Vec<_>>());
    let stats = relay.stats();
    assert!(stats.connected && stats.buffered == 0 && stats.connection_attempts >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_when_the_server_restarts_mid_stream() {
    let recorder = Arc::new(Recorder::default());
    let behaviour = Behaviour::acking();
    let server = TestServer::start(0, recorder.clone(), behaviour.clone());
    let port = server.port;
    let (bus, relay) = attached(test_config(&server.url()));

    let total = 6_000u64;
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for n in 1..=total {
                bus.publish("hook.pre_tool", json!({ "n": n }));
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };
    assert!(eventually(|| recorder.len() >= 1_000).await);
    tokio::task::spawn_blocking(move || server.stop())
        .await
        .unwrap();
    let at_stop = recorder.len();
    assert!(eventually(|| relay.stats().connection_failures >= 2).await);
    let server = TestServer::start(port, recorder.clone(), behaviour.clone());
    publisher.await.unwrap();
    assert!(
        eventually(|| relay.stats().relayed == total).await,
        "{:?}",
        relay.stats()
    );
    assert!(at_stop < total as usize, "the server stopped mid-stream");
    assert_all_arrived_in_order(&recorder.ids(), &(1..=total).collect::<Vec<_>>());
    let stats = relay.stats();
    assert_eq!(stats.dropped, 0);
    let duplicates = recorder.len() as u64 - total;
    assert!(
        duplicates <= stats.resent,
        "{duplicates} duplicates but only {} resends counted",
        stats.resent
    );
    assert_eq!(behaviour.max_live.load(Ordering::SeqCst), 1);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnected_by_the_server_reconnects_and_resends() {
    let recorder = Arc::new(Recorder::default());
    let behaviour = Behaviour::acking();
    behaviour.disconnect_at.store(1_500, Ordering::SeqCst);
    let server = TestServer::start(0, recorder.clone(), behaviour.clone());
    let (bus, relay) = attached(test_config(&server.url()));

    publish_range(&bus, 1..=4_000);
    assert!(
        eventually(|| relay.stats().relayed == 4_000).await,
        "{:?}",
        relay.stats()
    );
    assert_eq!(behaviour.disconnects.load(Ordering::SeqCst), 1);
    assert!(behaviour.connections.load(Ordering::SeqCst) >= 2);
    assert_eq!(behaviour.max_live.load(Ordering::SeqCst), 1);
    assert_all_arrived_in_order(&recorder.ids(), &(1..=4_000).collect::<Vec<_>>());
    let stats = relay.stats();
    assert!(
        stats.connection_failures >= 1 && stats.resent >= 1,
        "{stats:?}"
    );
    assert!(recorder.len() as u64 - 4_000 <= stats.resent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_the_oldest_and_counts_exactly() {
    let port = free_port();
    let config = RelayConfig {
        buffer_capacity: 100,
        ..test_config(&format!("http://127.0.0.1:{port}"))
    };
    let (bus, relay) = attached(config);
    publish_range(&bus, 1..=250);
    bus.flush().await;
    let stats = relay.stats();
    assert_eq!((stats.dropped, stats.buffered), (150, 100), "{stats:?}");

    let recorder = Arc::new(Recorder::default());
    let _server = TestServer::start(port, recorder.clone(), Behaviour::acking());
    assert!(
        eventually(|| relay.stats().relayed == 100).await,
        "{:?}",
        relay.stats()
    );
    assert_eq!(recorder.ids(), (151..=250).collect::<Vec<_>>());
    assert_eq!(relay.stats().dropped, 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_acks_is_detected_within_the_ack_timeout() {
    let recorder = Arc::new(Recorder::default());
    let behaviour = Arc::new(Behaviour::default()); // records, never acknowledges
    let server = TestServer::start(0, recorder.clone(), behaviour.clone());
    let ack_timeout = Duration::from_secs(1);
    let config = RelayConfig {
        ack_timeout,
        ..test_config(&server.url())
    };
    let (bus, relay) = attached(config);
    assert!(eventually(|| relay.stats().connected).await);

    let started = Instant::now();
    publish_range(&bus, 1..=50);
    assert!(eventually(|| relay.stats().ack_timeouts >= 1).await);
    let detected = started.elapsed();
    assert!(
        detected < ack_timeout + Duration::from_secs(3),
        "detected after {detected:?}"
    );
    // Received but never confirmed (the last one waits for the checkpoint in flight).
    assert!(recorder.len() >= 1, "the server did receive events");
    assert_eq!(
        relay.stats().relayed,
        0,
        "nothing is confirmed without an ack"
    );

    behaviour.ack.store(true, Ordering::SeqCst);
    assert!(
        eventually(|| relay.stats().relayed == 50).await,
        "{:?}",
        relay.stats()
    );
    let stats = relay.stats();
    // Everything emitted on the dead connection went again: each event was sent once
    // for the first time, the rest are counted resends.
    assert!(
        stats.resent >= 1 && stats.sent == 50 + stats.resent && stats.connection_failures >= 1,
        "{stats:?}"
    );
    assert_all_arrived_in_order(&recorder.ids(), &(1..=50).collect::<Vec<_>>());
    assert_eq!(behaviour.max_live.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_flushes_then_disconnects() {
    let recorder = Arc::new(Recorder::default());
    let behaviour = Behaviour::acking();
    let server = TestServer::start(0, recorder.clone(), behaviour.clone());
    let (bus, relay) = attached(test_config(&server.url()));
    publish_range(&bus, 1..=2_000);
    bus.flush().await;
    let report = relay.stop(PATIENCE).await;
    assert!(report.complete, "{report:?}");
    assert_eq!((report.relayed, report.undelivered), (2_000, 0));
    assert_eq!(recorder.ids(), (1..=2_000).collect::<Vec<_>>());
    assert!(eventually(|| behaviour.live.load(Ordering::SeqCst) == 0).await);
    assert!(!relay.stats().connected);
    // Later events are refused, and the bus counts them as failures.
    bus.publish("hook.late", json!({}));
    bus.flush().await;
    let row = bus.stats().subscribers.remove(0);
    assert_eq!(row.failed, 1);
    assert!(relay.push(Event::new(99, "hook.x", json!({}))).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bus_shutdown_reports_what_the_relay_could_not_deliver() {
    let port = free_port();
    let (bus, relay) = attached(test_config(&format!("http://127.0.0.1:{port}")));
    publish_range(&bus, 1..=10);
    let started = Instant::now();
    let report = bus.shutdown(Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!report.complete);
    assert_eq!(report.undelivered, 10, "{report:?}");
    let row = &report.subscribers[0];
    assert_eq!(
        (row.name.as_str(), row.queued, row.held),
        (RELAY_NAME, 0, 10)
    );
    assert_eq!(relay.stats().buffered, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_never_started_starts_with_its_first_event() {
    init_tracing();
    let recorder = Arc::new(Recorder::default());
    let server = TestServer::start(0, recorder.clone(), Behaviour::acking());
    let relay = Arc::new(SocketIoRelay::new(test_config(&server.url())).unwrap());
    // Subscribed directly, never started: the first handled event starts it.
    let bus = EventBus::new();
    bus.subscribe(relay.clone()).unwrap();
    publish_range(&bus, 1..=3);
    assert!(
        eventually(|| relay.stats().relayed == 3).await,
        "{:?}",
        relay.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_answers_the_handshake_times_out_and_stop_still_returns() {
    // Accepts TCP connections (the kernel's backlog does) and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let config = RelayConfig {
        connect_timeout: Duration::from_millis(300),
        ..test_config(&url)
    };
    let (bus, relay) = attached(config);
    publish_range(&bus, 1..=5);
    assert!(eventually(|| relay.stats().connection_failures >= 2).await);
    assert!(!relay.stats().connected);
    let started = Instant::now();
    let report = relay.stop(Duration::from_millis(500)).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!((report.undelivered, report.complete), (5, false));
    drop(silent);
}

/// `CLAUDE_MPM_RELAY_WHERE`: a content condition on top of the patterns, on both the bus
/// path and the durable path (events handed over from a log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condition_relays_only_matching_events_on_both_paths() {
    let recorder = Arc::new(Recorder::default());
    let server = TestServer::start(0, recorder.clone(), Behaviour::acking());
    let condition = || {
        relay_socketio::RelayCondition(Some(Arc::new(
            bus_cel::CelCondition::compile(r#"data.tool_name in ["Edit", "Write"]"#, "test")
                .unwrap(),
        )))
    };
    let config = RelayConfig {
        condition: condition(),
        ..test_config(&server.url())
    };
    let (bus, relay) = attached(config);
    for tool in ["Read", "Edit", "Grep", "Write"] {
        bus.publish("hook.pre_tool", json!({ "tool_name": tool }));
    }
    bus.publish("hook.pre_tool", json!({})); // cannot be evaluated: not relayed
    assert!(
        eventually(|| relay.stats().relayed == 2).await,
        "{:?}",
        relay.stats()
    );
    let tools: Vec<Value> = recorder
        .payloads()
        .iter()
        .map(|p| p["data"]["tool_name"].clone())
        .collect();
    assert_eq!(tools, [json!("Edit"), json!("Write")]);

    let durable_config = RelayConfig {
        durable: true,
        condition: condition(),
        ..test_config(&server.url())
    };
    let attached =
        <SocketIoRelay as bus_core::Consumer>::install(&EventBus::new(), durable_config).unwrap();
    let durable = attached.durable().expect("a durable relay");
    let events = (1..=4u64)
        .map(|id| {
            let tool = if id % 2 == 0 { "Edit" } else { "Read" };
            Event::new(100 + id, "hook.pre_tool", json!({ "tool_name": tool }))
        })
        .collect();
    durable.handle_batch(events).await.unwrap();
    assert!(
        eventually(|| durable.confirmed() == Some(104)).await,
        "confirmed {:?}",
        durable.confirmed()
    );
    let ids: Vec<Value> = recorder.payloads()[2..]
        .iter()
        .map(|p| p["event_id"].clone())
        .collect();
    assert_eq!(ids, [json!(102), json!(104)]);
}
