//! Publishes a known mix of events and checks every rendered value exactly.

mod common;

use std::time::Duration;

use bus_core::{BusStats, EventBus, Overflow, QueueOptions};
use common::{buckets, parse, series_count, validate, value};
use consumer_metrics::{BusMetrics, MetricsConfig};
use serde_json::json;

/// The bus's own histogram of subscription `id`, as `(le, count)` with `+Inf` last.
fn expected_buckets(stats: &BusStats, id: u64) -> (Vec<(f64, u64)>, f64, u64) {
    let row = stats.subscribers.iter().find(|s| s.id == id).unwrap();
    let h = row.handler_duration.as_ref().unwrap();
    let mut b = h.buckets.clone();
    b.push((f64::INFINITY, h.count));
    (b, h.sum_seconds, h.count)
}

#[test]
fn a_known_mix_renders_exactly() {
    // Queued subscribers' workers run on this runtime, which only runs inside `block_on`:
    // while publishing, no worker has taken anything, so which events a full queue drops
    // does not depend on thread timing.
    let workers = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let bus = EventBus::builder()
        .history_size(50)
        .filters(["app.*"])
        .runtime(workers.handle().clone())
        .build()
        .unwrap();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    assert_eq!(metrics.subscription().get(), 1);
    // #2: a sync handler that always fails.
    bus.on("app.fail", |_: &bus_core::Event| Err::<(), _>("boom"))
        .unwrap();
    // #3: a slow consumer (20 ms per event) with room for two queued events.
    bus.on_async_with(
        "app.slow",
        QueueOptions::new(2, Overflow::DropNewest),
        |_| tokio::time::sleep(Duration::from_millis(20)),
    )
    .unwrap();

    for _ in 0..3 {
        assert!(bus.publish("app.ok", json!({})));
    }
    for _ in 0..2 {
        assert!(bus.publish("app.fail", json!({})));
    }
    for _ in 0..4 {
        assert!(!bus.publish("noise.x", json!({})), "filtered");
    }
    // Two fit in the slow consumer's queue, three are dropped.
    for _ in 0..5 {
        assert!(bus.publish("app.slow", json!({})));
    }
    let own = [("subscriber", "metrics"), ("subscription", "1")];
    let slow = [("subscriber", "async#3"), ("subscription", "3")];
    let busy = parse(&metrics.render());
    assert_eq!(value(&busy, "eventbus_subscriber_queue_depth", &slow), 2.0);
    // The per-type counting runs on the publishing thread: no queue, nothing waiting.
    assert_eq!(value(&busy, "eventbus_subscriber_queue_depth", &own), 0.0);
    assert_eq!(
        value(
            &busy,
            "eventbus_events_total",
            &[("event_type", "app.slow")]
        ),
        5.0,
        "counted before any worker ran"
    );
    assert_eq!(value(&busy, "eventbus_events_dropped_total", &[]), 3.0);

    workers.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), bus.flush())
            .await
            .unwrap()
    });
    bus.set_enabled(false);
    assert!(!bus.publish("app.ok", json!({})), "disabled: not counted");

    let text = metrics.render();
    let scrape = parse(&text);
    let v = |name: &str, labels: &[(&str, &str)]| value(&scrape, name, labels);
    assert_eq!(v("eventbus_events_published_total", &[]), 10.0);
    assert_eq!(v("eventbus_events_filtered_total", &[]), 4.0);
    assert_eq!(v("eventbus_events_failed_total", &[]), 2.0);
    assert_eq!(v("eventbus_events_dropped_total", &[]), 3.0);
    assert_eq!(v("eventbus_enabled", &[]), 0.0);
    assert_eq!(v("eventbus_history_size", &[]), 10.0);
    assert_eq!(v("eventbus_history_capacity", &[]), 50.0);
    assert_eq!(v("eventbus_filters", &[]), 1.0);

    assert_eq!(series_count(&scrape, "eventbus_events_total"), 4, "{text}");
    assert_eq!(v("eventbus_events_total", &[("event_type", "app.ok")]), 3.0);
    assert_eq!(
        v("eventbus_events_total", &[("event_type", "app.fail")]),
        2.0
    );
    assert_eq!(
        v("eventbus_events_total", &[("event_type", "app.slow")]),
        5.0
    );
    assert_eq!(v("eventbus_events_total", &[("event_type", "other")]), 0.0);

    let failing = [("subscriber", "sync#2"), ("subscription", "2")];
    for (labels, delivered, failed, dropped, depth, capacity) in [
        (&own, 10.0, 0.0, 0.0, 0.0, 0.0),
        (&failing, 0.0, 2.0, 0.0, 0.0, 0.0),
        (&slow, 2.0, 0.0, 3.0, 0.0, 2.0),
    ] {
        assert_eq!(
            v("eventbus_subscriber_delivered_total", labels),
            delivered,
            "{labels:?}"
        );
        assert_eq!(
            v("eventbus_subscriber_failed_total", labels),
            failed,
            "{labels:?}"
        );
        assert_eq!(
            v("eventbus_subscriber_dropped_total", labels),
            dropped,
            "{labels:?}"
        );
        assert_eq!(
            v("eventbus_subscriber_queue_depth", labels),
            depth,
            "{labels:?}"
        );
        assert_eq!(
            v("eventbus_subscriber_queue_capacity", labels),
            capacity,
            "{labels:?}"
        );
    }

    // Histograms: queued subscriptions only, and exactly the bus's own figures.
    let stats = bus.stats();
    let name = "eventbus_subscriber_handler_duration_seconds";
    assert_eq!(series_count(&scrape, name), 1);
    let (labels, id, count) = (&slow, 3, 2);
    let (expected, sum, expected_count) = expected_buckets(&stats, id);
    assert_eq!(expected_count, count);
    assert_eq!(buckets(&scrape, name, labels), expected);
    assert_eq!(v(&format!("{name}_count"), labels), count as f64);
    assert_eq!(v(&format!("{name}_sum"), labels), sum);
    // Both slow events took at least 20 ms: none is at or under 10 ms.
    let slow_buckets = buckets(&scrape, name, &slow);
    assert!(
        slow_buckets.iter().all(|&(le, n)| le > 0.01 || n == 0),
        "{slow_buckets:?}"
    );
    assert!(v(&format!("{name}_sum"), &slow) >= 0.04);
    assert!(
        !text.contains(&format!("{name}_bucket{{subscriber=\"sync#2\"")),
        "sync handlers have no histogram"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_never_go_backwards_across_resets() {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    bus.on("x", |_: &bus_core::Event| Err::<(), _>("no"))
        .unwrap();
    // #3: a queued handler, whose handler durations are recorded.
    bus.on_async("x", |_| async {}).unwrap();
    let queued = [("subscriber", "async#3"), ("subscription", "3")];
    for _ in 0..5 {
        bus.publish("x", json!({}));
    }
    bus.flush().await;
    let first = parse(&metrics.render());
    let own = [("subscriber", "metrics"), ("subscription", "1")];
    let hist = "eventbus_subscriber_handler_duration_seconds_count";
    assert_eq!(value(&first, "eventbus_events_published_total", &[]), 5.0);
    assert_eq!(value(&first, hist, &queued), 5.0);

    bus.reset_stats();
    assert_eq!(bus.stats().events_published, 0);
    let after_reset = parse(&metrics.render());
    assert_eq!(
        value(&after_reset, "eventbus_events_published_total", &[]),
        5.0
    );

    // A reset followed by more events than before, all between two scrapes: only
    // `stats_resets` can tell this apart from "nothing happened".
    bus.reset_stats();
    for _ in 0..7 {
        bus.publish("x", json!({}));
    }
    bus.flush().await;
    let later = parse(&metrics.render());
    let f = |name: &str, labels: &[(&str, &str)]| value(&later, name, labels);
    assert_eq!(f("eventbus_events_published_total", &[]), 12.0);
    assert_eq!(f("eventbus_events_failed_total", &[]), 12.0);
    assert_eq!(f("eventbus_subscriber_delivered_total", &own), 12.0);
    assert_eq!(
        f(
            "eventbus_subscriber_failed_total",
            &[("subscriber", "sync#2"), ("subscription", "2")]
        ),
        12.0
    );
    assert_eq!(f(hist, &queued), 12.0);
    let b = buckets(
        &later,
        "eventbus_subscriber_handler_duration_seconds",
        &queued,
    );
    assert_eq!(b.last().unwrap().1, 12);
    // Per-type counts are the metrics consumer's own and never reset.
    assert_eq!(f("eventbus_events_total", &[("event_type", "x")]), 12.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_type_floods_are_capped() {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(
        &bus,
        MetricsConfig {
            max_event_types: 3,
            ..MetricsConfig::default()
        },
    )
    .unwrap();
    for i in 0..1000 {
        bus.publish(&format!("unique.{i}"), json!({}));
    }
    bus.publish(&"long".repeat(100), json!({}));
    bus.publish("unique.0", json!({}));
    bus.flush().await;
    let scrape = parse(&metrics.render());
    assert_eq!(series_count(&scrape, "eventbus_events_total"), 4);
    assert_eq!(metrics.distinct_event_types(), 3);
    let t = |ty| value(&scrape, "eventbus_events_total", &[("event_type", ty)]);
    assert_eq!(t("unique.0"), 2.0);
    assert_eq!(t("unique.1"), 1.0);
    assert_eq!(t("unique.2"), 1.0);
    assert_eq!(t("other"), 997.0 + 1.0, "the rest and the over-long name");
}

#[test]
fn gone_subscriptions_leave_the_output() {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    let id = bus.on("a", |_: &bus_core::Event| {}).unwrap();
    assert!(metrics.render().contains("subscriber=\"sync#2\""));
    bus.unsubscribe(id);
    let text = metrics.render();
    assert!(!text.contains("sync#2"), "{text}");
    validate(&text).unwrap();
}

#[test]
fn dropping_the_metrics_detaches_the_subscriber() {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    let copy = metrics.clone();
    drop(metrics);
    assert_eq!(bus.stats().subscribers.len(), 1, "a clone still holds it");
    drop(copy);
    assert!(bus.stats().subscribers.is_empty());
}

#[test]
fn bad_config_names_the_culprit() {
    let bus = EventBus::new();
    let err = BusMetrics::attach(
        &bus,
        MetricsConfig {
            patterns: vec!["".into()],
            ..MetricsConfig::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("\"\""), "{err}");
    let err = BusMetrics::attach(
        &bus,
        MetricsConfig {
            patterns: vec![],
            ..MetricsConfig::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("patterns"), "{err}");
}

#[test]
fn label_values_are_escaped_and_parse() {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    bus.publish("we\"ird\\type\nname", json!({}));
    bus.flush_blocking(Duration::from_secs(5)).unwrap();
    let text = metrics.render();
    assert!(
        text.contains(r#"eventbus_events_total{event_type="we\"ird\\type\nname"} 1"#),
        "{text}"
    );
    validate(&text).unwrap();
}

/// The checker used above must reject malformed text, or the tests above prove nothing.
#[test]
fn the_format_check_rejects_malformed_lines() {
    let bus = EventBus::new();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    bus.on_async("q", |_| async {}).unwrap();
    bus.publish("q", json!({}));
    bus.flush_blocking(Duration::from_secs(5)).unwrap();
    let good = metrics.render();
    validate(&good).unwrap();
    let bad_lines = [
        "eventbus_events_total{event_type=\"unterminated} 1",
        "eventbus_events_published_total 1.2.3",
        "eventbus_events_published_total",
        "eventbus_events_total{event_type=\"a\"} 1 not-a-timestamp",
        "9bad_name 1",
        "undeclared_metric 1",
        "eventbus_events_published_total 5",
        "# TYPE eventbus_enabled gauge",
        "# HELP eventbus_events_total",
        "# something else",
    ];
    for bad in bad_lines {
        let text = format!("{good}{bad}\n");
        assert!(validate(&text).is_err(), "accepted: {bad}");
    }
    // A histogram whose +Inf bucket disagrees with its count.
    let broken = good.replacen("le=\"+Inf\"} 1", "le=\"+Inf\"} 2", 1);
    assert_ne!(broken, good);
    assert!(validate(&broken).is_err());
}

/// Runs the reference checker on the output: `promtool check metrics` (from the
/// `prometheus` Debian package), which also lints names, units and help texts. Ignored by
/// default because it needs that tool: `cargo test -p consumer-metrics -- --ignored`.
#[test]
#[ignore = "needs promtool on PATH (apt-get install prometheus)"]
fn promtool_accepts_the_output() {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let bus = EventBus::builder().filters(["a.*"]).build().unwrap();
    let metrics = BusMetrics::attach(&bus, MetricsConfig::default()).unwrap();
    bus.on("a.*", |_: &bus_core::Event| Err::<(), _>("x"))
        .unwrap();
    bus.on_async("a.*", |_| async {}).unwrap();
    for t in ["a.one", "a.two", "b.filtered"] {
        bus.publish(t, json!({}));
    }
    bus.flush_blocking(Duration::from_secs(5)).unwrap();
    let text = metrics.render();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool on PATH");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool: {report}\n{text}"
    );
}
