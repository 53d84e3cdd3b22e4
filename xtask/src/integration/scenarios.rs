//! The integration scenarios of the relay and the daemon's lifecycle: the full flow, the
//! dashboard server killed, stopped or late, and the daemon stopped mid-stream. Each returns a
//! one-line summary of what held, or what did not. What they share is in `delivery.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::Env;
use super::delivery::*;
use super::peers::{Daemon, PythonServer, free_port, wait_for};

pub(crate) fn full_flow(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("full-flow.jsonl");
    let _server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(env, port, &[])?;
    let mut ledger = Ledger::default();
    for k in 0..10 {
        ledger.post_batch(&daemon, batch(k * 1000, 1000, true))?;
    }
    publish_with_cli(env, &daemon, &mut ledger, 1000)?;
    let delivery = wait_delivered(&record, &ledger.relayed)?;
    wait_relay_settled(&daemon, ledger.relayed.len() as u64)?;

    // Every consumer has caught up once the metrics consumer has seen every event.
    let stats = wait_for("the consumers to catch up", || {
        let stats = daemon.get_json("/stats").ok()?;
        let metrics_row = subscriber_row(&stats, "metrics").ok()?;
        let seen = metrics_row["delivered"].as_u64()? + metrics_row["dropped"].as_u64()?;
        (seen == stats["events_published"].as_u64()?).then_some(stats)
    })?;
    let expect = |what: &str, got: &Value, want: u64| -> Result<(), String> {
        (got.as_u64() == Some(want))
            .then_some(())
            .ok_or_else(|| format!("/stats {what} is {got}, expected {want}"))
    };
    expect(
        "events_published",
        &stats["events_published"],
        ledger.accepted,
    )?;
    expect(
        "events_filtered",
        &stats["events_filtered"],
        ledger.filtered,
    )?;
    expect("events_failed", &stats["events_failed"], 0)?;
    let metrics = check_metrics(env, &daemon, &stats, &ledger)?;
    Ok(format!(
        "{} sent, {} accepted, {} filtered; {} relayed in order per producer with exact payloads ({} duplicates), relay.relayed == {}; {metrics}",
        ledger.sent,
        ledger.accepted,
        ledger.filtered,
        delivery.unique,
        delivery.duplicates,
        ledger.relayed.len()
    ))
}

/// The burst published before a fault: large enough that the relay is still emitting it when
/// the fault hits.
const BURST: u64 = 10_000;

/// Streams events while the server goes away and comes back; everything must arrive.
fn server_outage(env: &Env, signal: Signal, label: &str) -> Result<String, String> {
    const STREAM_BATCHES: u64 = 20;
    const STREAM_BATCH: u64 = 100;
    let port = free_port()?;
    let record = env.work.join(format!("{label}.jsonl"));
    let server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(env, port, &[ROOMY_BUFFER])?;
    let mut ledger = Ledger::default();
    // A burst, then a producer that keeps publishing small batches: the server is stopped
    // once the relay is seen emitting the burst with part of it unconfirmed.
    ledger.post_batch(&daemon, batch(0, BURST, false))?;
    let streamed_so_far = AtomicU64::new(0);
    let (streamed, fault) = std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let mut streamed = Ledger::default();
            for k in 0..STREAM_BATCHES {
                streamed.post_batch(
                    &daemon,
                    batch(BURST + k * STREAM_BATCH, STREAM_BATCH, false),
                )?;
                streamed_so_far.fetch_add(STREAM_BATCH, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok::<_, String>(streamed)
        });
        let fault = (|| {
            let at_signal = wait_mid_stream(&daemon, BURST)?;
            let streamed_before = streamed_so_far.load(Ordering::Relaxed);
            server.stop(signal)?;
            let gone = relay_stats(&daemon)?;
            Ok::<_, String>((at_signal, streamed_before, gone))
        })();
        let streamed = producer
            .join()
            .unwrap_or_else(|_| Err("the producer panicked".into()));
        (streamed, fault)
    });
    let (at_signal, streamed_before, gone) = fault?;
    ledger.merge(streamed?);
    let _server = PythonServer::start(env, port, &record)?;
    ledger.post_batch(
        &daemon,
        batch(BURST + STREAM_BATCHES * STREAM_BATCH, 1000, false),
    )?;
    let delivery = wait_delivered(&record, &ledger.relayed)?;
    let relay = wait_relay_settled(&daemon, ledger.relayed.len() as u64)?;
    let failures = count(&relay, "/stats relay", "connection_failures")?;
    let attempts = count(&relay, "/stats relay", "connection_attempts")?;
    if failures == 0 || attempts < 2 {
        return Err(format!(
            "the relay never lost its connection or never reconnected ({failures} failures, {attempts} attempts): the outage was not exercised"
        ));
    }
    Ok(format!(
        "{signal} {} during a {BURST}-event burst; {} confirmed when the server was gone; {} of {} streamed events published after the signal; {} events, all arrived in order ({} duplicates; relay resent {}, {failures} connection failures, {attempts} attempts, none dropped)",
        relay_moment(&at_signal),
        gone["relayed"],
        STREAM_BATCHES * STREAM_BATCH - streamed_before,
        STREAM_BATCHES * STREAM_BATCH,
        delivery.unique,
        delivery.duplicates,
        relay["resent"],
    ))
}

pub(crate) fn server_killed(env: &Env) -> Result<String, String> {
    server_outage(env, Signal::SIGKILL, "server-killed")
}

pub(crate) fn server_stopped(env: &Env) -> Result<String, String> {
    server_outage(env, Signal::SIGTERM, "server-stopped")
}

pub(crate) fn server_late(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("server-late.jsonl");
    let daemon = Daemon::start(env, port, &[])?;
    let mut ledger = Ledger::default();
    ledger.post_batch(&daemon, batch(0, 1000, false))?;
    let before = wait_for(
        "a failed connection attempt to the absent server (relay.connection_failures >= 1)",
        || {
            let relay = relay_stats(&daemon).ok()?;
            (relay["connection_failures"].as_u64()? >= 1).then_some(relay)
        },
    )?;
    if before["relayed"] != 0 || before["connected"] != false {
        return Err(format!(
            "the relay was connected or confirmed events with no server listening: {before}"
        ));
    }
    let _server = PythonServer::start(env, port, &record)?;
    ledger.post_batch(&daemon, batch(1000, 500, false))?;
    let delivery = wait_delivered(&record, &ledger.relayed)?;
    wait_relay_settled(&daemon, ledger.relayed.len() as u64)?;
    Ok(format!(
        "server started after {} failed connection attempt(s), {} events buffered; {} events published before and after, all arrived in order ({} duplicates)",
        before["connection_failures"], before["buffered"], delivery.unique, delivery.duplicates
    ))
}

pub(crate) fn daemon_stopped(env: &Env) -> Result<String, String> {
    let port = free_port()?;
    let record = env.work.join("daemon-stopped.jsonl");
    let _server = PythonServer::start(env, port, &record)?;
    let daemon = Daemon::start(env, port, &[ROOMY_BUFFER])?;
    let mut ledger = Ledger::default();
    ledger.post_batch(&daemon, batch(0, BURST, false))?;
    let at_signal = wait_mid_stream(&daemon, BURST)?;
    let (code, log) = daemon.terminate()?;
    if code != Some(0) {
        return Err(format!(
            "the daemon exited with {code:?} after SIGTERM:\n{log}"
        ));
    }
    let published = log
        .split("totals: published ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse::<u64>().ok())
        .ok_or_else(|| format!("the daemon did not report its totals:\n{log}"))?;
    if published != ledger.accepted {
        return Err(format!(
            "the daemon reported {published} events published, {} were accepted",
            ledger.accepted
        ));
    }
    let undelivered = if log.contains("every consumer drained its queue") {
        0
    } else {
        log.split("shut down: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| format!("the daemon did not report its shutdown:\n{log}"))?
    };
    let delivery = check_record(&record, &ledger.relayed, false)?;
    if delivery.missing as u64 > undelivered {
        return Err(format!(
            "{} accepted events never arrived, but the daemon reported only {undelivered} undelivered",
            delivery.missing
        ));
    }
    Ok(format!(
        "SIGTERM {} during a {BURST}-event burst; {} accepted; {} arrived in order, {} reported undelivered, none lost silently",
        relay_moment(&at_signal),
        ledger.relayed.len(),
        delivery.unique,
        undelivered
    ))
}
