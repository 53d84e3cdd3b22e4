//! The follower against `MemoryLog` and a durable consumer whose deliveries the test confirms.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bus_core::async_trait;
use bus_core::{HandlerResult, StartPosition};
use bus_store::{
    JsonText, MemoryLog, NewEvent, Page, ReadQuery, RetentionPolicy, StoreError, StoreStats,
    StoredEvent,
};
use tokio::sync::Notify;

use super::*;

/// A durable consumer with a bounded "send buffer" that the test empties with `deliver`.
struct Held {
    patterns: Vec<String>,
    capacity: usize,
    start: StartPosition,
    /// Deliver everything at once, as it is handed over.
    auto: bool,
    /// Refuse the next batch.
    refuse_next: AtomicBool,
    state: Mutex<HeldState>,
    progress: Notify,
}

#[derive(Default)]
struct HeldState {
    held: VecDeque<u64>,
    got: Vec<u64>,
    batches: Vec<usize>,
    confirmed: Option<u64>,
}

impl Held {
    fn new(patterns: &[&str], capacity: usize, auto: bool) -> Arc<Self> {
        Arc::new(Held {
            patterns: patterns.iter().map(|p| (*p).to_owned()).collect(),
            capacity,
            start: StartPosition::End,
            auto,
            refuse_next: AtomicBool::new(false),
            state: Mutex::default(),
            progress: Notify::new(),
        })
    }

    /// Delivers (confirms) the `n` oldest held events.
    fn deliver(&self, n: usize) {
        let mut state = self.state.lock().unwrap();
        for _ in 0..n {
            if let Some(id) = state.held.pop_front() {
                state.confirmed = Some(id);
            }
        }
        drop(state);
        self.progress.notify_one();
    }

    fn got(&self) -> Vec<u64> {
        self.state.lock().unwrap().got.clone()
    }

    fn held(&self) -> usize {
        self.state.lock().unwrap().held.len()
    }
}

#[async_trait]
impl DurableSubscriber for Held {
    fn name(&self) -> &str {
        "held"
    }
    fn patterns(&self) -> Vec<String> {
        self.patterns.clone()
    }
    fn start_position(&self) -> StartPosition {
        self.start
    }
    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.held())
    }
    async fn handle_batch(&self, events: Vec<Event>) -> HandlerResult {
        if self.refuse_next.swap(false, Ordering::SeqCst) {
            return Err("not now".into());
        }
        let mut state = self.state.lock().unwrap();
        state.batches.push(events.len());
        for event in &events {
            state.got.push(event.id());
            state.held.push_back(event.id());
        }
        if self.auto {
            state.confirmed = state.held.back().copied();
            state.held.clear();
        }
        Ok(())
    }
    fn confirmed(&self) -> Option<u64> {
        self.state.lock().unwrap().confirmed
    }
    async fn progressed(&self) {
        self.progress.notified().await;
    }
    async fn on_shutdown(&self, _timeout: Duration) -> u64 {
        self.held() as u64
    }
}

/// A `MemoryLog` that counts reads, to show the follower does not poll.
struct Counting {
    inner: MemoryLog,
    reads: AtomicU64,
}

impl Counting {
    fn new(retention: RetentionPolicy) -> Arc<Self> {
        Arc::new(Counting {
            inner: MemoryLog::new(retention),
            reads: AtomicU64::new(0),
        })
    }
    fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventLog for Counting {
    async fn append(&self, batch: Vec<NewEvent>) -> Result<Vec<LogId>, StoreError> {
        self.inner.append(batch).await
    }
    async fn read(&self, query: ReadQuery) -> Result<Page, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.read(query).await
    }
    async fn read_last(&self, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.inner.read_last(limit).await
    }
    fn first_id(&self) -> Option<LogId> {
        self.inner.first_id()
    }
    fn last_id(&self) -> Option<LogId> {
        self.inner.last_id()
    }
    fn subscribe_appends(&self) -> watch::Receiver<Option<LogId>> {
        self.inner.subscribe_appends()
    }
    async fn save_cursor(&self, consumer: &str, id: LogId) -> Result<(), StoreError> {
        self.inner.save_cursor(consumer, id).await
    }
    async fn cursor(&self, consumer: &str) -> Result<Option<LogId>, StoreError> {
        self.inner.cursor(consumer).await
    }
    fn stats(&self) -> StoreStats {
        self.inner.stats()
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.inner.close().await
    }
}

async fn append(log: &dyn EventLog, types: &[&str]) -> Vec<u64> {
    let batch = types
        .iter()
        .map(|t| NewEvent::new(*t, JsonText::parse(r#"{"n":1}"#).unwrap()))
        .collect();
    log.append(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|id| id.0)
        .collect()
}

/// Waits (up to 5 s) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn follow(log: Arc<dyn EventLog>, consumer: Arc<Held>) -> (Running, Arc<Figures>) {
    let (follower, figures) = Follower::prepare(log, consumer).await.unwrap();
    (follower.spawn(), figures)
}

async fn stop(running: Running, timeout: Duration) -> Undelivered {
    running.stop.send_replace(Some(Instant::now() + timeout));
    running.task.await.unwrap()
}

async fn cursor(log: &dyn EventLog) -> Option<u64> {
    log.cursor("held").await.unwrap().map(|id| id.0)
}

#[tokio::test]
async fn a_member_without_a_cursor_takes_over_the_one_saved_under_the_bare_name() {
    let log = MemoryLog::new(RetentionPolicy::default());
    // Nothing saved under either name: nothing to adopt (the start position decides).
    assert_eq!(
        adopt_old_cursor(&log, "held", "held@a").await.unwrap(),
        None
    );
    assert_eq!(log.cursor("held@a").await.unwrap(), None);
    log.save_cursor("held", LogId(7)).await.unwrap();
    assert_eq!(
        adopt_old_cursor(&log, "held", "held@a").await.unwrap(),
        Some(LogId(7))
    );
    assert_eq!(log.cursor("held@a").await.unwrap(), Some(LogId(7)));
    // The member's own cursor, once it has one, wins over the old one.
    log.save_cursor("held@a", LogId(9)).await.unwrap();
    log.save_cursor("held", LogId(3)).await.unwrap();
    assert_eq!(
        adopt_old_cursor(&log, "held", "held@a").await.unwrap(),
        None
    );
    assert_eq!(log.cursor("held@a").await.unwrap(), Some(LogId(9)));
}

#[tokio::test]
async fn a_new_consumer_starts_at_the_end_saved_at_once_and_gets_later_events_in_order() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    append(&*log, &["hook.old"; 5]).await;
    let consumer = Held::new(&["hook.*"], 100, true);
    let (running, figures) = follow(log.clone(), consumer.clone()).await;
    // Saved before anything was delivered: a crash now would not skip what comes next.
    assert_eq!(cursor(&*log).await, Some(5));
    let ids = append(&*log, &["hook.a", "hook.b", "hook.c"]).await;
    until("three events", || consumer.got().len() == 3).await;
    assert_eq!(consumer.got(), ids);
    until("the cursor saved", || {
        figures.position.load(Ordering::Relaxed) == 8
    })
    .await;
    assert_eq!(cursor(&*log).await, Some(8));
    let row = stop(running, Duration::from_secs(1)).await;
    assert_eq!((row.queued, row.held), (0, 0));
}

#[tokio::test]
async fn a_consumer_resumes_after_its_saved_cursor_and_unconfirmed_events_come_again() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    append(&*log, &["hook.x"; 10]).await;
    log.save_cursor("held", LogId(4)).await.unwrap();
    let first = Held::new(&["hook.*"], 100, false);
    let (running, _) = follow(log.clone(), first.clone()).await;
    until("6 events", || first.got().len() == 6).await;
    assert_eq!(first.got(), (5..=10).collect::<Vec<_>>());
    first.deliver(3); // 5, 6, 7 delivered; 8, 9, 10 held
    let row = stop(running, Duration::from_millis(300)).await;
    assert_eq!((row.queued, row.held), (0, 3));
    assert_eq!(cursor(&*log).await, Some(7));

    // The next run gets what was not confirmed, then the new events.
    let second = Held::new(&["hook.*"], 100, true);
    let (running, _) = follow(log.clone(), second.clone()).await;
    append(&*log, &["hook.y"]).await;
    until("4 events", || second.got().len() == 4).await;
    assert_eq!(second.got(), [8, 9, 10, 11]);
    stop(running, Duration::from_millis(300)).await;
    assert_eq!(cursor(&*log).await, Some(11));
}

#[tokio::test]
async fn a_full_consumer_gets_nothing_more_until_it_has_room_and_nothing_is_dropped() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let consumer = Held::new(&["*"], 3, false);
    let (running, _) = follow(log.clone(), consumer.clone()).await;
    let ids = append(&*log, &["e"; 10]).await;
    until("a first batch", || consumer.got().len() == 3).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(consumer.got().len(), 3, "handed over beyond the room");
    let mut rounds = 0;
    while consumer.got().len() < 10 {
        consumer.deliver(2);
        rounds += 1;
        let want = (3 + 2 * rounds).min(10);
        until("more after room was freed", || consumer.got().len() == want).await;
        assert!(consumer.held() <= 3);
    }
    consumer.deliver(3);
    assert_eq!(consumer.got(), ids);
    let batches = consumer.state.lock().unwrap().batches.clone();
    assert!(batches.iter().all(|&n| n <= 3), "{batches:?}");
    stop(running, Duration::from_millis(300)).await;
    assert_eq!(cursor(&*log).await, Some(10));
}

#[tokio::test]
async fn only_matching_events_are_handed_over_and_the_cursor_moves_past_the_others() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let consumer = Held::new(&["hook.*", "agent.stop"], 100, true);
    let (running, figures) = follow(log.clone(), consumer.clone()).await;
    append(
        &*log,
        &[
            "hook.a",
            "session.x",
            "agent.stop",
            "agent.start",
            "hook.b",
            "other",
        ],
    )
    .await;
    until("3 events", || consumer.got().len() == 3).await;
    assert_eq!(consumer.got(), [1, 3, 5]);
    until("the cursor past the unwanted tail", || {
        figures.position.load(Ordering::Relaxed) == 6
    })
    .await;
    let row = stop(running, Duration::from_millis(300)).await;
    assert_eq!((row.queued, row.held), (0, 0));
    assert_eq!(cursor(&*log).await, Some(6));
}

#[tokio::test]
async fn events_trimmed_before_they_were_read_are_counted_exactly() {
    let retention = RetentionPolicy {
        max_events: 5,
        ..RetentionPolicy::default()
    };
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::new(retention));
    log.save_cursor("held", LogId(2)).await.unwrap();
    append(&*log, &["hook.x"; 20]).await; // keeps 16..=20: 3..=15 are gone
    let consumer = Held::new(&["hook.*"], 100, true);
    let (running, figures) = follow(log.clone(), consumer.clone()).await;
    until("the kept events", || consumer.got().len() == 5).await;
    assert_eq!(consumer.got(), (16..=20).collect::<Vec<_>>());
    assert_eq!(figures.missed.load(Ordering::Relaxed), 13);
    let json = figures.to_json(log.last_id());
    assert_eq!(json["missed"], 13);
    stop(running, Duration::from_millis(300)).await;
    assert_eq!(figures.missed.load(Ordering::Relaxed), 13, "counted once");
}

#[tokio::test]
async fn a_caught_up_follower_does_not_poll_and_wakes_on_append() {
    let log = Counting::new(RetentionPolicy::default());
    let dyn_log: Arc<dyn EventLog> = log.clone();
    let consumer = Held::new(&["*"], 100, true);
    let (running, _) = follow(dyn_log.clone(), consumer.clone()).await;
    append(&*dyn_log, &["a"]).await;
    until("the first event", || consumer.got().len() == 1).await;
    // Let the cursor save settle, then watch it idle.
    tokio::time::sleep(SAVE_INTERVAL * 2).await;
    let reads = log.reads();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(log.reads(), reads, "the follower read the log while idle");
    let woke = Instant::now();
    append(&*dyn_log, &["b"]).await;
    until("the second event", || consumer.got().len() == 2).await;
    assert!(woke.elapsed() < Duration::from_millis(500));
    assert!(
        log.reads() <= reads + 2,
        "{} reads for one append",
        log.reads() - reads
    );
    stop(running, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_refused_batch_is_offered_again() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let consumer = Held::new(&["*"], 100, true);
    consumer.refuse_next.store(true, Ordering::SeqCst);
    let (running, figures) = follow(log.clone(), consumer.clone()).await;
    let ids = append(&*log, &["a", "b"]).await;
    until("the batch, the second time", || consumer.got().len() == 2).await;
    assert_eq!(consumer.got(), ids);
    assert_eq!(figures.failures.load(Ordering::Relaxed), 1);
    stop(running, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn at_shutdown_the_rest_of_the_log_is_handed_over_and_what_stays_is_reported() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryLog::default());
    let consumer = Held::new(&["hook.*"], 4, false);
    let (running, _) = follow(log.clone(), consumer.clone()).await;
    append(
        &*log,
        &[
            "hook.x", "other", "hook.x", "hook.x", "hook.x", "hook.x", "hook.x",
        ],
    )
    .await;
    until("a full consumer", || consumer.got().len() == 4).await;
    consumer.deliver(1);
    until("room used again", || consumer.got().len() == 5).await;
    // Nobody frees more room: 4 held, 1 matching event still only in the log.
    let row = stop(running, Duration::from_millis(200)).await;
    assert_eq!((row.name.as_str(), row.queued, row.held), ("held", 1, 4));
    assert_eq!(cursor(&*log).await, Some(1));
    let mut report = ShutdownReport {
        complete: true,
        ..ShutdownReport::default()
    };
    Followers::add_to(&mut report, vec![row]);
    assert_eq!((report.undelivered, report.complete), (5, false));
}
