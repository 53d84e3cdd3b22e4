//! SIGKILL a process that is appending, reopen the store, and check that every append it had
//! acknowledged is there exactly once. The test binary re-runs itself as the child.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus_store::{Durability, EventLog, LogId, ReadQuery, SqliteLog, SqliteOptions};
use common::event;

/// Set in the child: the store to append to.
const CHILD_STORE: &str = "BUS_STORE_CRASH_CHILD_STORE";

/// Appends from 8 tasks forever, printing each acknowledged id on its own line.
fn child(path: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let options = SqliteOptions {
            durability: Durability::Full,
            ..SqliteOptions::default()
        };
        let log = Arc::new(SqliteLog::open(path, options).unwrap());
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    for n in 0.. {
                        let batch = (0..(n % 5 + 1))
                            .map(|k| event("crash", task * 1_000_000 + k))
                            .collect();
                        let ids = log.append(batch).await.unwrap();
                        let mut out = std::io::stdout().lock();
                        for id in ids {
                            writeln!(out, "{id}").unwrap();
                        }
                        out.flush().unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    if let Ok(path) = std::env::var(CHILD_STORE) {
        child(&path);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.db");
    let mut acknowledged = Vec::new();
    for round in 0..3 {
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "acknowledged_appends_survive_sigkill",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_STORE, &path)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(process.stdout.take().unwrap()).lines();
        let started = Instant::now();
        let target = acknowledged.len() + 1500 + round * 500;
        while acknowledged.len() < target {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the child appends too slowly"
            );
            let Some(line) = lines.next() else {
                panic!("the child exited early")
            };
            let line = line.unwrap();
            // The test harness prints its own lines too.
            if let Ok(id) = line.trim().parse::<u64>() {
                acknowledged.push(id);
            }
        }
        process.kill().unwrap(); // SIGKILL, mid-append
        // What it printed before dying was acknowledged as well.
        for line in lines {
            if let Ok(id) = line.unwrap().trim().parse::<u64>() {
                acknowledged.push(id);
            }
        }
        process.wait().unwrap();
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The dead child's lock is gone: the store opens at once.
        let log = SqliteLog::open(&path, SqliteOptions::default()).unwrap();
        let mut stored = Vec::new();
        let mut query = ReadQuery::after(None, 1000);
        loop {
            let page = log.read(query.clone()).await.unwrap();
            stored.extend(page.events.iter().map(|e| e.id.0));
            match page.next {
                Some(next) => query.after = Some(next),
                None => break,
            }
        }
        assert!(
            stored.windows(2).all(|w| w[0] < w[1]),
            "stored ids increase strictly"
        );
        let stored_set: BTreeSet<u64> = stored.iter().copied().collect();
        let acked: BTreeSet<u64> = acknowledged.iter().copied().collect();
        assert_eq!(
            acked.len(),
            acknowledged.len(),
            "no id was acknowledged twice"
        );
        let lost: Vec<_> = acked.difference(&stored_set).take(10).collect();
        assert!(lost.is_empty(), "acknowledged ids lost: {lost:?}");
        let max = *stored.last().unwrap();
        let new = log.append(vec![event("after", 0)]).await.unwrap();
        assert_eq!(new, [LogId(max + 1)], "new ids continue above the old ones");
    });
}
