//! Throughput of the event log: group commit under concurrency, big batches, and paging.
//!
//! `cargo bench -p bus-store --bench store`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bus_store::{
    Durability, EventLog, JsonText, MemoryLog, NewEvent, ReadQuery, RetentionPolicy, SqliteLog,
    SqliteOptions,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const WRITERS: u64 = 64;
const EVENTS_PER_WRITER: u64 = 100;
const BATCH: u64 = 10_000;
const WARM_STORE: u64 = 1_000_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A hook-like event of about 150 bytes.
fn event(n: u64) -> NewEvent {
    let data = JsonText::from_value(&serde_json::json!({
        "session_id": "5f0c8f6e-1d2b-4c1e-9a7d-3c2b1a0f9e8d",
        "tool_name": "Bash",
        "cwd": "/home/user/project",
        "n": n,
    }));
    NewEvent::new("hook.pre_tool", data)
}

fn keep_all() -> RetentionPolicy {
    RetentionPolicy {
        max_events: u64::MAX,
        max_age: Duration::MAX,
    }
}

fn sqlite(dir: &tempfile::TempDir, name: &str, durability: Durability) -> Arc<dyn EventLog> {
    let options = SqliteOptions {
        durability,
        retention: keep_all(),
        ..SqliteOptions::default()
    };
    Arc::new(SqliteLog::open(dir.path().join(name), options).unwrap())
}

fn concurrent_single_appends(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let log = sqlite(&dir, "concurrent.db", Durability::Full);
    let mut group = c.benchmark_group("append");
    group.sample_size(10);
    group.throughput(Throughput::Elements(WRITERS * EVENTS_PER_WRITER));
    group.bench_function("64_concurrent_single_event_full", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                rt.block_on(async {
                    let tasks: Vec<_> = (0..WRITERS)
                        .map(|w| {
                            let log = Arc::clone(&log);
                            tokio::spawn(async move {
                                for n in 0..EVENTS_PER_WRITER {
                                    log.append(vec![event(w * 1000 + n)]).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                });
                total += started.elapsed();
            }
            total
        });
    });
    group.finish();
    let stats = log.stats();
    eprintln!(
        "64 concurrent writers: {} events in {} commits ({:.1} events per commit)",
        stats.appended,
        stats.commits,
        stats.appended as f64 / stats.commits.max(1) as f64
    );
}

fn big_batches(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let logs: [(&str, Arc<dyn EventLog>); 3] = [
        ("sqlite_full", sqlite(&dir, "full.db", Durability::Full)),
        ("sqlite_off", sqlite(&dir, "off.db", Durability::Off)),
        (
            "memory",
            Arc::new(MemoryLog::new(RetentionPolicy {
                max_events: 1_000_000,
                ..keep_all()
            })),
        ),
    ];
    let mut group = c.benchmark_group("batch_10k");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH));
    for (name, log) in logs {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let batch: Vec<_> = (0..BATCH).map(event).collect();
                    let started = Instant::now();
                    rt.block_on(log.append(batch)).unwrap();
                    total += started.elapsed();
                }
                total
            });
        });
    }
    group.finish();
}

fn paging(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let log = sqlite(&dir, "warm.db", Durability::Off);
    rt.block_on(async {
        for chunk in 0..WARM_STORE / BATCH {
            let batch = (0..BATCH).map(|n| event(chunk * BATCH + n)).collect();
            log.append(batch).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("read");
    group.sample_size(10);
    group.throughput(Throughput::Elements(WARM_STORE));
    group.bench_function("page_through_1m_in_pages_of_1000", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                let read = rt.block_on(async {
                    let mut query = ReadQuery::after(None, 1000);
                    let mut read = 0;
                    loop {
                        let page = log.read(query.clone()).await.unwrap();
                        read += page.events.len() as u64;
                        match page.next {
                            Some(next) => query.after = Some(next),
                            None => return read,
                        }
                    }
                });
                assert_eq!(read, WARM_STORE);
            }
            started.elapsed()
        });
    });
    group.finish();
    drop(log);

    // Opening runs PRAGMA quick_check over the whole file: what a restart costs.
    let path = dir.path().join("warm.db");
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    eprintln!("warm store: {WARM_STORE} events, {} MB", size / 1_000_000);
    let mut group = c.benchmark_group("open");
    group.sample_size(10);
    for check_integrity in [true, false] {
        let name = if check_integrity {
            "1m_events_quick_check"
        } else {
            "1m_events_no_check"
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                let options = SqliteOptions {
                    check_integrity,
                    ..SqliteOptions::default()
                };
                drop(SqliteLog::open(&path, options).unwrap());
            });
        });
    }
    group.finish();
}

criterion_group!(benches, concurrent_single_appends, big_batches, paging);
criterion_main!(benches);
