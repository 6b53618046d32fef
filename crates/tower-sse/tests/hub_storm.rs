//! The Hub under reconnect storms: no lock across I/O, concurrent publishers and resuming
//! subscribers, cancelled calls, and a misbehaving log.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tower_sse::{Hub, Subscription};
use tower_sse_core::{
    Decoded, Decoder, Event, EventLog, LoggedEvent, MemoryLog, Replay, ReplayOutcome,
};

/// (event type, data, id) of the one event in `frame`.
fn decode(frame: &[u8]) -> (String, String, String) {
    let mut decoder = Decoder::new();
    decoder.feed(frame);
    let mut out = Vec::new();
    while let Some(item) = decoder.decode().unwrap() {
        if let Decoded::Event(e) = item {
            out.push((
                e.event_type().into(),
                e.data().into(),
                e.last_event_id().into(),
            ));
        }
    }
    assert_eq!(out.len(), 1, "one event per frame");
    out.pop().unwrap()
}

async fn next(sub: &mut Subscription) -> (String, String, String) {
    let frame = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event within 10 s")
        .expect("the feed does not end")
        .expect("no log error");
    decode(&frame)
}

/// A MemoryLog whose reads take `read_delay` while `slow` is set, and whose appends yield
/// once (so that a cancelled publish can be dropped mid-append).
#[derive(Clone)]
struct SlowLog {
    inner: Arc<MemoryLog>,
    slow: Arc<AtomicBool>,
    read_delay: Duration,
    reads: Arc<AtomicUsize>,
}

impl SlowLog {
    fn new(read_delay: Duration) -> Self {
        Self {
            inner: Arc::new(MemoryLog::new()),
            slow: Arc::new(AtomicBool::new(true)),
            read_delay,
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl EventLog for SlowLog {
    type Error = tower_sse_core::MemoryLogError;

    async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, Self::Error> {
        tokio::task::yield_now().await;
        self.inner.append_sync(topic, event)
    }

    async fn read_after(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Replay, Self::Error> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if self.slow.load(Ordering::Relaxed) {
            tokio::time::sleep(self.read_delay).await;
        }
        Ok(self.inner.read_after_sync(topic, cursor, limit))
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        self.inner.compare_ids(a, b)
    }
}

/// Reads block for 1 s: while reconnecting subscribers wait on them, publishing on the same
/// topic and live delivery to a connected subscriber are not delayed (functional margins:
/// well under the read's second, not a benchmark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_log_read_delays_neither_publish_nor_live_delivery() {
    let log = SlowLog::new(Duration::from_secs(1));
    let hub = Hub::with_log(log.clone());
    let mut connected = hub.subscribe("t", None).await.unwrap();
    let first = hub.publish("t", &Event::new().data("first")).await.unwrap();
    assert_eq!(next(&mut connected).await.1, "first");

    // A storm of reconnecting clients, each stuck in a 1 s read.
    let mut storm = Vec::new();
    for _ in 0..20 {
        let hub = hub.clone();
        let cursor = first.id().to_owned();
        storm.push(tokio::spawn(async move {
            hub.subscribe("t", Some(&cursor)).await.unwrap()
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for i in 0..5 {
        let started = Instant::now();
        hub.publish("t", &Event::new().data(format!("live{i}")))
            .await
            .unwrap();
        let published = started.elapsed();
        assert_eq!(next(&mut connected).await.1, format!("live{i}"));
        let delivered = started.elapsed();
        assert!(
            published < Duration::from_millis(500) && delivered < Duration::from_millis(500),
            "publish took {published:?}, delivery {delivered:?}, while reads take 1 s"
        );
    }
    // The reconnecting clients get everything after their cursor, once.
    for handle in storm {
        let mut sub = handle.await.unwrap();
        assert_eq!(sub.outcome(), Some(&ReplayOutcome::Resumed));
        for i in 0..5 {
            assert_eq!(next(&mut sub).await.1, format!("live{i}"));
        }
    }
}

/// Many publishers, many subscribers resuming from random cursors and cancelled at random:
/// every surviving subscriber's sequence is exactly the log's, from its cursor on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_and_subscribers_resuming_from_random_cursors() {
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 300;
    const TOTAL: usize = PUBLISHERS * PER_PUBLISHER;
    let log = SlowLog::new(Duration::from_millis(2));
    let hub = Hub::with_log(log.clone()).capacity(16).max_replay(5_000);
    let seed = hub.publish("t", &Event::new().data("seed")).await.unwrap();
    let published = Arc::new(std::sync::Mutex::new(vec![seed.clone()]));

    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let hub = hub.clone();
        let published = Arc::clone(&published);
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                let logged = hub
                    .publish("t", &Event::new().data(format!("{p}-{i}")))
                    .await
                    .unwrap();
                published.lock().unwrap().push(logged);
                if i % 7 == 0 {
                    tokio::task::yield_now().await;
                }
                if i % 10 == 0 {
                    // Spread publishing over the subscribers' arrivals.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }));
    }
    let mut subscribers = Vec::new();
    for s in 0..24u64 {
        let hub = hub.clone();
        let published = Arc::clone(&published);
        subscribers.push(tokio::spawn(async move {
            // A pseudo-random cursor among what was published so far.
            tokio::time::sleep(Duration::from_millis(s * 3)).await;
            let cursor = {
                let published = published.lock().unwrap();
                published[(s as usize * 7919) % published.len()].clone()
            };
            let subscribing = hub.subscribe("t", Some(cursor.id()));
            if s % 4 == 3 {
                // Cancelled mid-subscribe, or right after a few events.
                let _ = tokio::time::timeout(Duration::from_millis(s % 3), subscribing).await;
                return None;
            }
            let mut sub = subscribing.await.unwrap();
            assert_eq!(sub.outcome(), Some(&ReplayOutcome::Resumed));
            let mut seen = Vec::new();
            if cursor.frame().ends_with(b"data: end\n\n") {
                // Resumed after the very end: nothing follows.
                return Some((cursor.id().to_owned(), seen));
            }
            loop {
                let Ok(frame) = tokio::time::timeout(Duration::from_secs(10), sub.next()).await
                else {
                    panic!(
                        "subscriber {s} stuck after {} events from {}: last {:?}",
                        seen.len(),
                        cursor.id(),
                        seen.last()
                    );
                };
                let (kind, data, id) = decode(&frame.unwrap().unwrap());
                assert_eq!(kind, "message", "no gap signal: nothing was lost");
                seen.push(id);
                if data == "end" {
                    break;
                }
                if s % 5 == 1 && seen.len() == 10 {
                    return None; // dropped mid-stream
                }
            }
            Some((cursor.id().to_owned(), seen))
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    // Publishing is over: a final marker tells subscribers where the end is.
    let end = hub.publish("t", &Event::new().data("end")).await.unwrap();
    published.lock().unwrap().push(end);
    log.slow.store(false, Ordering::Relaxed);

    let truth = log.inner.read_after_sync("t", None, TOTAL + 10);
    let truth: Vec<&str> = truth.events.iter().map(LoggedEvent::id).collect();
    assert_eq!(truth.len(), TOTAL + 2);
    let position: HashMap<&str, usize> = truth.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let mut checked = 0;
    for s in subscribers {
        if let Some((cursor, seen)) = s.await.unwrap() {
            let start = position[cursor.as_str()] + 1;
            assert_eq!(seen, truth[start..], "gap-free, duplicate-free, log order");
            checked += 1;
        }
    }
    assert!(checked >= 10, "enough subscribers survived: {checked}");
    assert_eq!(hub.topic_count(), 0, "nothing left behind");
}

/// 10,000 publish and subscribe calls cancelled at random points over a log with slow reads:
/// the topic table returns to its size, and the hub still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_leave_nothing_behind() {
    let log = SlowLog::new(Duration::from_millis(1));
    let hub = Hub::with_log(log.clone());
    let keeper = hub.subscribe("kept", None).await.unwrap();
    let cursor = hub.publish("kept", &Event::new().data("x")).await.unwrap();
    assert_eq!(hub.topic_count(), 1);
    let mut calls = Vec::new();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for i in 0..10_000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let hub = hub.clone();
        let cursor = cursor.id().to_owned();
        let yields = rng % 4;
        let topic = format!("t{}", rng % 64);
        calls.push(tokio::spawn(async move {
            let call = async {
                if i % 2 == 0 {
                    let _ = hub.publish(&topic, &Event::new().data("p")).await;
                } else {
                    let sub = hub.subscribe(&topic, Some(&cursor)).await;
                    drop(sub);
                }
            };
            tokio::select! {
                () = call => {}
                () = async { for _ in 0..yields { tokio::task::yield_now().await; } } => {}
            }
        }));
    }
    for call in calls {
        call.await.unwrap();
    }
    assert_eq!(hub.topic_count(), 1, "only the kept topic remains");
    drop(keeper);
    assert_eq!(hub.topic_count(), 0);
    // Still working.
    let mut sub = hub.subscribe("t1", None).await.unwrap();
    hub.publish("t1", &Event::new().data("after"))
        .await
        .unwrap();
    assert_eq!(next(&mut sub).await.1, "after");
}

/// A log that says more events follow but returns none: the subscription does not spin; the
/// first read of a subscribe becomes the `log-error` signal, then live.
#[tokio::test]
async fn a_log_answering_has_more_with_no_events_does_not_spin() {
    #[derive(Clone)]
    struct BadLog(Arc<MemoryLog>, Arc<AtomicUsize>);
    impl EventLog for BadLog {
        type Error = tower_sse_core::MemoryLogError;
        async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, Self::Error> {
            self.0.append_sync(topic, event)
        }
        async fn read_after(
            &self,
            _topic: &str,
            _cursor: Option<&str>,
            _limit: usize,
        ) -> Result<Replay, Self::Error> {
            self.1.fetch_add(1, Ordering::Relaxed);
            Ok(Replay::new(ReplayOutcome::Resumed, Vec::new(), true))
        }
        fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
            self.0.compare_ids(a, b)
        }
    }
    let reads = Arc::new(AtomicUsize::new(0));
    let hub = Hub::with_log(BadLog(Arc::new(MemoryLog::new()), Arc::clone(&reads)));
    let first = hub.publish("t", &Event::new().data("1")).await.unwrap();
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    let (kind, data, _) = next(&mut sub).await;
    assert_eq!(kind, "sse-gap");
    assert!(data.starts_with(r#"{"reason":"log-error","#), "{data}");
    let live = hub.publish("t", &Event::new().data("live")).await.unwrap();
    let (_, data, id) = next(&mut sub).await;
    assert_eq!((data.as_str(), id.as_str()), ("live", live.id()));
    assert_eq!(reads.load(Ordering::Relaxed), 1, "read once, no spin");
}

/// Replay is read in pages as the client drains, never the whole cap at once.
#[tokio::test]
async fn replay_is_read_in_pages_as_the_client_drains() {
    let log = SlowLog::new(Duration::ZERO);
    log.slow.store(false, Ordering::Relaxed);
    let hub = Hub::with_log(log.clone()).max_replay(10_000);
    let first = hub.publish("t", &Event::new().data("0")).await.unwrap();
    for i in 1..=2_000 {
        hub.publish("t", &Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    assert_eq!(
        log.reads.load(Ordering::Relaxed),
        1,
        "one page at subscribe"
    );
    for i in 1..=tower_sse::REPLAY_PAGE {
        assert_eq!(next(&mut sub).await.1, i.to_string());
    }
    assert_eq!(log.reads.load(Ordering::Relaxed), 1, "the next page waits");
    for i in tower_sse::REPLAY_PAGE + 1..=2_000 {
        assert_eq!(next(&mut sub).await.1, i.to_string());
    }
    let reads = log.reads.load(Ordering::Relaxed);
    assert!(
        (2_000 / tower_sse::REPLAY_PAGE..=2_000 / tower_sse::REPLAY_PAGE + 2).contains(&reads),
        "{reads} pages for 2,000 events"
    );
}
