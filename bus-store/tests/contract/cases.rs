// The contract of `EventLog`'s cases, `include!`d by bus-store's tests/contract.rs and by
// bus-redis's: each declares its own `mod common`, which names the backends and their id text.
// (Plain comments: an included file cannot have inner attributes or docs.)


use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bus_store::{EventLog, LogId, ReadQuery, RetentionPolicy, StoreError};
use common::{BACKENDS, BAD_ID_TEXTS, event, event_at, eventually, id_text, subject};

fn keep_all() -> RetentionPolicy {
    RetentionPolicy {
        max_events: u64::MAX,
        max_age: Duration::MAX,
    }
}

async fn read_all(log: &dyn EventLog, query: ReadQuery) -> Vec<bus_store::StoredEvent> {
    let mut query = query;
    let mut all = Vec::new();
    loop {
        let page = log.read(query.clone()).await.unwrap();
        all.extend(page.events);
        match page.next {
            Some(next) => query.after = Some(next),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_get_dense_unique_increasing_ids() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = Arc::clone(&subject.log);
        let tasks: Vec<_> = (0..16)
            .map(|task| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..20 {
                        let batch = (0..(i % 3 + 1))
                            .map(|k| event("t", task * 100 + k))
                            .collect();
                        let got = log.append(batch).await.unwrap();
                        assert!(
                            got.windows(2).all(|w| w[1].0 == w[0].0 + 1),
                            "{backend}: a batch is contiguous"
                        );
                        ids.extend(got);
                    }
                    ids
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            let ids = task.await.unwrap();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "{backend}: one caller's ids increase"
            );
            all.extend(ids);
        }
        let unique: BTreeSet<u64> = all.iter().map(|id| id.0).collect();
        assert_eq!(unique.len(), all.len(), "{backend}: ids are unique");
        let expected: BTreeSet<u64> = (1..=all.len() as u64).collect();
        assert_eq!(unique, expected, "{backend}: ids are dense from 1");
        assert_eq!(log.last_id(), Some(LogId(all.len() as u64)), "{backend}");
        assert_eq!(log.first_id(), Some(LogId(1)), "{backend}");
        let stats = log.stats();
        assert_eq!(stats.appended, all.len() as u64, "{backend}");
        assert_eq!(stats.stored, all.len() as u64, "{backend}");
        assert!(
            stats.commits >= 1 && stats.commits <= 320,
            "{backend}: {stats:?}"
        );
    }
}

#[tokio::test]
async fn pages_return_everything_once_in_order_with_its_content() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let batch: Vec<_> = (0..2500u64)
            .map(|n| {
                event_at(
                    if n.is_multiple_of(2) { "even" } else { "odd" },
                    n,
                    t0 + Duration::from_micros(n),
                )
            })
            .collect();
        log.append(batch).await.unwrap();

        let first = log.read(ReadQuery::after(None, 1000)).await.unwrap();
        assert_eq!(first.events.len(), 1000, "{backend}");
        assert_eq!(first.next, Some(LogId(1000)), "{backend}");
        assert_eq!(first.missed, 0, "{backend}");
        let second = log.read(ReadQuery::after(first.next, 1000)).await.unwrap();
        assert_eq!(second.events[0].id, LogId(1001), "{backend}");
        let third = log.read(ReadQuery::after(second.next, 1000)).await.unwrap();
        assert_eq!(third.events.len(), 500, "{backend}");
        assert_eq!(third.next, None, "{backend}: the end was reached");

        let all = read_all(log, ReadQuery::after(None, 333)).await;
        assert_eq!(all.len(), 2500, "{backend}");
        for (n, stored) in all.iter().enumerate() {
            let n = n as u64;
            assert_eq!(stored.id, LogId(n + 1), "{backend}");
            assert_eq!(
                stored.event_type,
                if n.is_multiple_of(2) { "even" } else { "odd" },
                "{backend}"
            );
            assert_eq!(stored.data.as_str(), format!("{{\"n\":{n}}}"), "{backend}");
            assert_eq!(stored.timestamp, t0 + Duration::from_micros(n), "{backend}");
        }

        // Exactly `limit` left: the page says there is no more.
        let tail = log
            .read(ReadQuery::after(Some(LogId(2000)), 500))
            .await
            .unwrap();
        assert_eq!((tail.events.len(), tail.next), (500, None), "{backend}");
        // Past the end, and limit 0 read as 1.
        let past = log
            .read(ReadQuery::after(Some(LogId(9999)), 10))
            .await
            .unwrap();
        assert!(
            past.events.is_empty() && past.next.is_none() && past.missed == 0,
            "{backend}"
        );
        let one = log.read(ReadQuery::after(None, 0)).await.unwrap();
        assert_eq!(
            (one.events.len(), one.next),
            (1, Some(LogId(1))),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn pattern_and_since_filter_the_pages() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        let t0 = SystemTime::now() - Duration::from_secs(3600);
        let types = ["hook.pre_tool", "hook.post_tool", "agent.start", "hooks"];
        let batch: Vec<_> = (0..40)
            .map(|n| event_at(types[n as usize % 4], n, t0 + Duration::from_secs(n)))
            .collect();
        log.append(batch).await.unwrap();

        let hooks = read_all(
            log,
            ReadQuery {
                pattern: Some("hook.*".into()),
                limit: 3,
                ..ReadQuery::default()
            },
        )
        .await;
        assert_eq!(hooks.len(), 20, "{backend}");
        assert!(
            hooks.iter().all(|e| e.event_type.starts_with("hook.")),
            "{backend}"
        );
        let one_char = read_all(
            log,
            ReadQuery {
                pattern: Some("hook?".into()),
                ..ReadQuery::default()
            },
        )
        .await;
        assert_eq!(one_char.len(), 10, "{backend}: `?` is one character");
        assert!(
            one_char.iter().all(|e| e.event_type == "hooks"),
            "{backend}"
        );

        let since = read_all(
            log,
            ReadQuery {
                since: Some(t0 + Duration::from_secs(30)),
                ..ReadQuery::default()
            },
        )
        .await;
        assert_eq!(since.first().map(|e| e.id), Some(LogId(31)), "{backend}");
        assert_eq!(since.len(), 10, "{backend}");

        let both = ReadQuery {
            since: Some(t0 + Duration::from_secs(30)),
            pattern: Some("agent.*".into()),
            ..ReadQuery::default()
        };
        let ids: Vec<u64> = read_all(log, both).await.iter().map(|e| e.id.0).collect();
        assert_eq!(ids, [31, 35, 39], "{backend}");

        let none = log
            .read(ReadQuery {
                pattern: Some("nothing".into()),
                ..ReadQuery::default()
            })
            .await
            .unwrap();
        assert!(none.events.is_empty() && none.next.is_none(), "{backend}");
    }
}

#[tokio::test]
async fn empty_logs_and_empty_batches() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        assert_eq!((log.first_id(), log.last_id()), (None, None), "{backend}");
        assert_eq!(
            log.append(Vec::new()).await.unwrap(),
            Vec::<LogId>::new(),
            "{backend}"
        );
        assert_eq!(
            log.stats().commits,
            0,
            "{backend}: an empty batch commits nothing"
        );
        let page = log.read(ReadQuery::default()).await.unwrap();
        assert!(page.events.is_empty() && page.next.is_none(), "{backend}");
        let page = log
            .read(ReadQuery::after(Some(LogId(5)), 10))
            .await
            .unwrap();
        assert_eq!(page.missed, 0, "{backend}: nothing existed, nothing missed");
    }
}

#[tokio::test]
async fn subscribers_wake_after_each_commit() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = Arc::clone(&subject.log);
        let mut appends = log.subscribe_appends();
        assert_eq!(*appends.borrow_and_update(), None, "{backend}");
        let writer = Arc::clone(&log);
        let task =
            tokio::spawn(async move { writer.append(vec![event("a", 1), event("a", 2)]).await });
        tokio::time::timeout(Duration::from_secs(10), appends.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*appends.borrow_and_update(), Some(LogId(2)), "{backend}");
        task.await.unwrap().unwrap();
        // A reader woken by the change sees the events.
        let page = log.read(ReadQuery::default()).await.unwrap();
        assert_eq!(page.events.len(), 2, "{backend}");
    }
}

#[tokio::test]
async fn cursors_are_saved_overwritten_and_kept_per_consumer() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        assert_eq!(log.cursor("relay").await.unwrap(), None, "{backend}");
        log.save_cursor("relay", LogId(5)).await.unwrap();
        log.save_cursor("tail", LogId(2)).await.unwrap();
        log.save_cursor("relay", LogId(7)).await.unwrap();
        assert_eq!(
            log.cursor("relay").await.unwrap(),
            Some(LogId(7)),
            "{backend}"
        );
        assert_eq!(
            log.cursor("tail").await.unwrap(),
            Some(LogId(2)),
            "{backend}"
        );
        assert!(
            matches!(
                log.save_cursor("", LogId(1)).await,
                Err(StoreError::EmptyConsumerName)
            ),
            "{backend}"
        );
        assert!(
            matches!(log.cursor("").await, Err(StoreError::EmptyConsumerName)),
            "{backend}"
        );
    }
}

#[tokio::test]
async fn retention_by_count_trims_the_oldest_and_reports_what_a_cursor_missed() {
    for backend in BACKENDS {
        let retention = RetentionPolicy {
            max_events: 10,
            ..keep_all()
        };
        let subject = subject(backend, retention);
        let log = &*subject.log;
        for n in 0..25 {
            log.append(vec![event("t", n)]).await.unwrap();
        }
        eventually("trimming to 10 events", || log.stats().trimmed == 15).await;
        assert_eq!(log.first_id(), Some(LogId(16)), "{backend}");
        assert_eq!(log.last_id(), Some(LogId(25)), "{backend}");
        assert_eq!(log.stats().stored, 10, "{backend}");

        // A consumer that had read up to 3: events 4..=15 are gone.
        let page = log
            .read(ReadQuery::after(Some(LogId(3)), 100))
            .await
            .unwrap();
        assert_eq!(page.missed, 12, "{backend}");
        assert_eq!(
            page.events.first().map(|e| e.id),
            Some(LogId(16)),
            "{backend}"
        );
        assert_eq!(page.events.len(), 10, "{backend}");
        let page = log
            .read(ReadQuery::after(Some(LogId(15)), 100))
            .await
            .unwrap();
        assert_eq!(page.missed, 0, "{backend}");
    }
}

#[tokio::test]
async fn retention_by_age_trims_the_old_prefix_only() {
    for backend in BACKENDS {
        let retention = RetentionPolicy {
            max_events: u64::MAX,
            max_age: Duration::from_secs(24 * 3600),
        };
        let subject = subject(backend, retention);
        let log = &*subject.log;
        let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
        let now = SystemTime::now();
        log.append(vec![
            event_at("t", 1, old),
            event_at("t", 2, old),
            event_at("t", 3, now),
            event_at("t", 4, old),
        ])
        .await
        .unwrap();
        eventually("trimming the two old events", || log.stats().trimmed == 2).await;
        let ids: Vec<u64> = read_all(log, ReadQuery::default())
            .await
            .iter()
            .map(|e| e.id.0)
            .collect();
        // The old event behind a young one stays, so that stored ids remain one range.
        assert_eq!(ids, [3, 4], "{backend}");
    }
}

#[tokio::test]
async fn ids_are_never_reused_after_everything_is_trimmed() {
    for backend in BACKENDS {
        let subject = subject(
            backend,
            RetentionPolicy {
                max_events: 0,
                ..keep_all()
            },
        );
        let log = &*subject.log;
        log.append(vec![event("t", 1), event("t", 2), event("t", 3)])
            .await
            .unwrap();
        eventually("trimming everything", || log.stats().trimmed == 3).await;
        assert_eq!(
            (log.first_id(), log.last_id()),
            (None, Some(LogId(3))),
            "{backend}"
        );
        let page = log
            .read(ReadQuery::after(Some(LogId(1)), 10))
            .await
            .unwrap();
        assert_eq!(page.missed, 2, "{backend}: 2 and 3 were trimmed");
        assert_eq!(
            log.append(vec![event("t", 4)]).await.unwrap(),
            [LogId(4)],
            "{backend}"
        );
    }
}

#[tokio::test]
async fn a_closed_log_refuses_writes() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        log.append(vec![event("t", 1)]).await.unwrap();
        log.close().await.unwrap();
        log.close().await.unwrap();
        assert!(
            matches!(
                log.append(vec![event("t", 2)]).await,
                Err(StoreError::Closed)
            ),
            "{backend}"
        );
        assert!(
            matches!(
                log.save_cursor("c", LogId(1)).await,
                Err(StoreError::Closed)
            ),
            "{backend}"
        );
        // What was committed stays readable.
        assert_eq!(
            log.read(ReadQuery::default()).await.unwrap().events.len(),
            1,
            "{backend}"
        );
    }
}

#[tokio::test]
async fn ids_format_and_parse_as_the_backends_text() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        assert_eq!(log.format_id(LogId(42)), id_text(42), "{backend}");
        let mut written = String::from("x");
        log.write_id(LogId(42), &mut written);
        assert_eq!(written, format!("x{}", id_text(42)), "{backend}: write_id");
        assert_eq!(log.parse_id(&id_text(42)).unwrap(), LogId(42));
        assert_eq!(log.parse_id(&id_text(0)).unwrap(), LogId(0));
        for bad in BAD_ID_TEXTS {
            match log.parse_id(bad) {
                Err(StoreError::InvalidId { text }) => assert_eq!(text, bad, "{backend}"),
                other => panic!("{backend}: {bad:?} gave {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn pages_and_the_newest_events_stop_at_the_byte_cap() {
    let mib = 1 << 20;
    let big = |n: usize| {
        bus_store::NewEvent::new(
            "big",
            bus_store::JsonText::parse(&format!("\"{}{n}\"", "x".repeat(3 * mib))).unwrap(),
        )
    };
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        let ids = log.append((0..5).map(big).collect()).await.unwrap();
        // 3 MiB each: the third takes a page past 8 MiB, so a page holds three.
        let page = log.read(ReadQuery::after(None, 100)).await.unwrap();
        assert_eq!(page.events.len(), 3, "{backend}");
        assert_eq!(page.next, Some(ids[2]), "{backend}");
        let rest = log.read(ReadQuery::after(page.next, 100)).await.unwrap();
        assert_eq!(rest.events.len(), 2, "{backend}");
        assert_eq!(rest.next, None, "{backend}");
        assert_eq!(
            read_all(log, ReadQuery::default()).await.len(),
            5,
            "{backend}"
        );

        let newest = log.read_last(100).await.unwrap();
        let got: Vec<LogId> = newest.iter().map(|e| e.id).collect();
        assert_eq!(got, ids[2..], "{backend}: the newest three, oldest first");
        assert!(newest[2].data.as_str().ends_with("4\""), "{backend}");
    }
}

#[tokio::test]
async fn the_newest_events_come_oldest_first() {
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        assert!(log.read_last(10).await.unwrap().is_empty(), "{backend}");
        let ids = log
            .append((0..30).map(|n| event("t", n)).collect())
            .await
            .unwrap();
        let newest: Vec<LogId> = log
            .read_last(4)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(newest, ids[26..], "{backend}");
        assert_eq!(log.read_last(100).await.unwrap().len(), 30, "{backend}");
        assert!(log.read_last(0).await.unwrap().is_empty(), "{backend}");
    }
}

#[tokio::test]
async fn a_publishers_priority_is_stored_with_its_event() {
    use bus_store::Priority;
    for backend in BACKENDS {
        let subject = subject(backend, keep_all());
        let log = &*subject.log;
        let ids = log
            .append(vec![
                event("t", 0).with_priority(Priority::High),
                event("t", 1),
                event("t", 2).with_priority(Priority::Low),
                event("t", 3).with_priority(Priority::Normal),
            ])
            .await
            .unwrap();
        let read: Vec<Option<Priority>> = read_all(log, ReadQuery::after(None, 2))
            .await
            .iter()
            .map(|e| e.priority)
            .collect();
        let expected = [
            Some(Priority::High),
            None,
            Some(Priority::Low),
            Some(Priority::Normal),
        ];
        assert_eq!(read, expected, "{backend}: paged");
        let newest: Vec<Option<Priority>> =
            log.read_last(4).await.unwrap().iter().map(|e| e.priority).collect();
        assert_eq!(newest, expected, "{backend}: newest");
        let stored = &read_all(log, ReadQuery::after(Some(ids[0]), 1)).await[1];
        assert_eq!(
            stored.to_event().unwrap().priority(),
            Some(Priority::Low),
            "{backend}: the bus event carries it"
        );
    }
}
