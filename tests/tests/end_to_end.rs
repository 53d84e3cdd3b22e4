//! The bus, configured by `bus-config` from a list of variables, with logging, metrics and the
//! Socket.IO relay wired, against a real in-process Socket.IO server.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus_config::Config;
use consumer_logging::LogFormat;
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef};

const PATIENCE: Duration = Duration::from_secs(30);

/// A Socket.IO server like the dashboard: records every `claude_event` payload and acks it.
/// It runs on a current-thread runtime of its own, so handlers record in arrival order.
fn start_dashboard(received: Arc<Mutex<Vec<Value>>>) -> u16 {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            serve_dashboard(listener, received).await;
        });
    });
    port_rx.recv_timeout(PATIENCE).unwrap()
}

async fn serve_dashboard(listener: tokio::net::TcpListener, received: Arc<Mutex<Vec<Value>>>) {
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", move |socket: SocketRef| {
        let received = received.clone();
        async move {
            socket.on(
                "claude_event",
                move |Data::<Value>(payload), ack: AckSender| {
                    let received = received.clone();
                    async move {
                        received.lock().unwrap().push(payload);
                        let _ = ack.send("ok");
                    }
                },
            );
        }
    });
    axum::serve(listener, axum::Router::new().layer(layer))
        .await
        .unwrap();
}

/// Log output captured from every thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn vars(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_from_variables_every_consumer_sees_what_it_should() {
    let logs = Captured::default();
    let writer = logs.clone();
    let formatter = consumer_logging::formatter(LogFormat::Json, false, move || writer.clone());
    tracing::subscriber::set_global_default(formatter).unwrap();

    let received = Arc::new(Mutex::new(Vec::new()));
    let port = start_dashboard(received.clone());
    let config = Config::from_iter(vars(&[
        ("CLAUDE_MPM_EVENTBUS_FILTERS", "hook.*, session.*".into()),
        ("CLAUDE_MPM_EVENTBUS_HISTORY_SIZE", "50".into()),
        ("CLAUDE_MPM_EVENTBUS_LOGGING", "yes".into()),
        ("CLAUDE_MPM_EVENTBUS_METRICS", "ON".into()),
        ("CLAUDE_MPM_RELAY_ENABLED", "1".into()),
        (
            "CLAUDE_MPM_SOCKETIO_URL",
            format!("http://127.0.0.1:{port}"),
        ),
        ("CLAUDE_MPM_RELAY_PATTERNS", "hook.*".into()),
        ("CLAUDE_MPM_RELAY_RETRY_DELAY", "50ms".into()),
    ]))
    .unwrap();
    let bus = config.build_bus().unwrap();
    let wired = bus_config::wiring::wire(&bus, &config).unwrap();

    let mut relayed = Vec::new();
    for n in 0..700u64 {
        let (event_type, data) = match n % 7 {
            0 => ("other.noise", json!({"n": n})),
            1 => ("session.start", json!({"n": n})),
            2 => ("hook.post_tool", json!(n)),
            _ => ("hook.pre_tool", json!({"n": n, "tool_name": "Read"})),
        };
        match bus.try_publish(event_type, data.clone()) {
            Ok(event) if event_type.starts_with("hook.") => relayed.push((event.id(), data)),
            Ok(_) => {}
            Err(refusal) => assert_eq!(
                (event_type, refusal),
                ("other.noise", bus_core::Refusal::Filtered)
            ),
        }
    }
    bus.flush().await;

    // The relay: every hook event, in order, in the dashboard's format.
    let start = Instant::now();
    while received.lock().unwrap().len() < relayed.len() && start.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let payloads = received.lock().unwrap().clone();
    let mut seen = HashSet::new();
    let firsts: Vec<&Value> = payloads
        .iter()
        .filter(|p| seen.insert(p["event_id"].as_u64().unwrap()))
        .collect();
    assert_eq!(firsts.len(), relayed.len(), "every hook event arrived");
    for (payload, (id, data)) in firsts.iter().zip(&relayed) {
        assert_eq!(payload["event_id"], *id, "in publish order");
        assert_eq!(payload["type"], "hook");
        assert_eq!(payload["source"], "event_bus");
        assert_eq!(payload["data"], *data);
    }

    // The bus's own view.
    let stats = bus.stats();
    assert_eq!(stats.events_published, 600);
    assert_eq!(stats.events_filtered, 100);
    assert_eq!(stats.events_failed, 0);
    assert_eq!(stats.history_size, 50);

    // Metrics: parsed by a real Prometheus text parser, values exact.
    let metrics = wired
        .consumers
        .iter()
        .flat_map(|c| c.endpoints())
        .find(|e| e.path == "/metrics")
        .expect("metrics are on");
    let text = (metrics.render)();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .unwrap_or_else(|| panic!("no {name} {label:?} in:\n{text}"))
    };
    assert_eq!(value("eventbus_events_published_total", None), 600.0);
    assert_eq!(value("eventbus_events_filtered_total", None), 100.0);
    assert_eq!(
        value(
            "eventbus_events_total",
            Some(("event_type", "session.start"))
        ),
        100.0
    );
    assert_eq!(
        value(
            "eventbus_events_total",
            Some(("event_type", "hook.pre_tool"))
        ),
        400.0
    );

    // Logging: one structured line per accepted event, on the events target.
    let logged: Vec<Value> = String::from_utf8(logs.0.lock().unwrap().clone())
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "eventbus::events")
        .collect();
    assert_eq!(logged.len(), 600, "every accepted event was logged once");
    let ids: HashSet<u64> = logged
        .iter()
        .map(|l| l["fields"]["event_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids.len(), 600);

    let report = bus.shutdown(Duration::from_secs(10)).await;
    assert_eq!(report.undelivered, 0, "{report:?}");
}

#[test]
fn a_bad_variable_list_names_every_culprit_and_builds_nothing() {
    let err = Config::from_iter(vars(&[
        ("CLAUDE_MPM_EVENTBUS_ENABLED", "maybe".into()),
        ("CLAUDE_MPM_SOCKETIO_PORT", "99999".into()),
        ("CLAUDE_MPM_RELAY_MAX_RETRIES", "-1".into()),
    ]))
    .unwrap_err()
    .to_string();
    for culprit in [
        "CLAUDE_MPM_EVENTBUS_ENABLED=\"maybe\"",
        "CLAUDE_MPM_SOCKETIO_PORT=\"99999\"",
        "CLAUDE_MPM_RELAY_MAX_RETRIES=\"-1\"",
    ] {
        assert!(err.contains(culprit), "{culprit} missing from: {err}");
    }
}
