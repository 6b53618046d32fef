//! The Hub: replay then live with no gap and no duplicate, slow subscribers, gap signals.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tower_sse::{Hub, REPLAY_PAGE, Subscription};
use tower_sse_core::{Decoded, Decoder, Event, EventLog, MemoryLog, ReplayOutcome, Retention};

/// (event type, data, id) of every event in `frame`.
fn decode(frame: &[u8]) -> Vec<(String, String, String)> {
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
    out
}

async fn next(sub: &mut Subscription) -> (String, String, String) {
    let frame = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event within 10 s")
        .expect("the feed does not end")
        .expect("no log error");
    let mut events = decode(&frame);
    assert_eq!(events.len(), 1, "one event per frame");
    events.pop().unwrap()
}

fn data(event: &str) -> Event<'_> {
    Event::new().data(event)
}

#[tokio::test]
async fn replays_after_cursor_then_goes_live() {
    let hub = Hub::new();
    let mut ids = Vec::new();
    for i in 1..=5 {
        ids.push(hub.publish("t", &data(&i.to_string())).await.unwrap());
    }
    let mut sub = hub.subscribe("t", Some(ids[1].id())).await.unwrap();
    assert_eq!(sub.outcome(), Some(&ReplayOutcome::Resumed));
    hub.publish("t", &data("6")).await.unwrap();
    let got: Vec<String> = [
        next(&mut sub).await,
        next(&mut sub).await,
        next(&mut sub).await,
        next(&mut sub).await,
    ]
    .into_iter()
    .map(|(_, d, _)| d)
    .collect();
    assert_eq!(got, ["3", "4", "5", "6"]);
}

#[tokio::test]
async fn no_cursor_starts_live_and_ids_are_the_logs() {
    let hub = Hub::new();
    hub.publish("t", &data("old")).await.unwrap();
    let mut sub = hub.subscribe("t", None).await.unwrap();
    assert_eq!(sub.outcome(), None);
    let logged = hub.publish("t", &data("new")).await.unwrap();
    let (ty, d, id) = next(&mut sub).await;
    assert_eq!(
        (ty.as_str(), d.as_str(), id.as_str()),
        ("message", "new", logged.id())
    );
}

#[tokio::test]
async fn gap_and_unknown_cursors_get_the_gap_signal() {
    let log = MemoryLog::builder()
        .retention(Retention::default().max_events(3))
        .build();
    let hub = Hub::with_log(log);
    let first = hub.publish("t", &data("1")).await.unwrap();
    for i in 2..=10 {
        hub.publish("t", &data(&i.to_string())).await.unwrap();
    }
    // A live subscriber makes the topic's ring carry "10": the join point is known.
    let _watcher = hub.subscribe("t", None).await.unwrap();
    let ten = hub.publish("t", &data("10")).await.unwrap();
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    assert!(matches!(sub.outcome(), Some(ReplayOutcome::Gap { .. })));
    // The rule: the signal at the discontinuity, carrying where the stream continues, and
    // nothing older after it (the retained 8, 9, 10 are not sent: the client refetches).
    let (kind, signal, id) = next(&mut sub).await;
    assert_eq!(kind, "sse-gap");
    assert_eq!(
        signal,
        format!(r#"{{"reason":"gap","resume_from":"{}"}}"#, ten.id())
    );
    assert_eq!(
        id,
        ten.id(),
        "the client's lastEventId moves to resume_from"
    );
    hub.publish("t", &data("after-gap")).await.unwrap();
    assert_eq!(next(&mut sub).await.1, "after-gap");

    let last = hub.publish("t", &data("last")).await.unwrap();
    let mut sub = hub.subscribe("t", Some("bogus\r\nid")).await.unwrap();
    assert!(matches!(sub.outcome(), Some(ReplayOutcome::Unknown(_))));
    assert_eq!(
        next(&mut sub).await.1,
        format!(
            r#"{{"reason":"unknown-cursor","resume_from":"{}"}}"#,
            last.id()
        )
    );
    hub.publish("t", &data("11")).await.unwrap();
    assert_eq!(next(&mut sub).await.1, "11");

    // Another topic's id is no position of this one: a visible gap, never silence.
    let other = hub.publish("elsewhere", &data("x")).await.unwrap();
    let mut sub = hub.subscribe("t", Some(other.id())).await.unwrap();
    assert!(matches!(sub.outcome(), Some(ReplayOutcome::Unknown(_))));
    assert!(
        next(&mut sub)
            .await
            .1
            .starts_with(r#"{"reason":"unknown-cursor","#)
    );
}

#[tokio::test]
async fn replay_is_capped() {
    let hub = Hub::new().max_replay(5);
    let first = hub.publish("t", &data("0")).await.unwrap();
    for i in 1..=20 {
        hub.publish("t", &data(&i.to_string())).await.unwrap();
    }
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(next(&mut sub).await.1);
    }
    assert_eq!(seen[..5], ["1", "2", "3", "4", "5"]);
    // Nothing published through the hub since the topic became active: no join point yet.
    assert_eq!(seen[5], r#"{"reason":"too-far-behind","resume_from":null}"#);
    hub.publish("t", &data("live")).await.unwrap();
    assert_eq!(next(&mut sub).await.1, "live");

    // With a live subscriber the ring's position is known, and it is where the signal points.
    let _watcher = hub.subscribe("t", None).await.unwrap();
    let head = hub.publish("t", &data("head")).await.unwrap();
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    for want in ["1", "2", "3", "4", "5"] {
        assert_eq!(next(&mut sub).await.1, want);
    }
    let (kind, signal, id) = next(&mut sub).await;
    assert_eq!(kind, "sse-gap");
    assert_eq!(
        signal,
        format!(
            r#"{{"reason":"too-far-behind","resume_from":"{}"}}"#,
            head.id()
        )
    );
    assert_eq!(id, head.id());
    hub.publish("t", &data("after")).await.unwrap();
    assert_eq!(
        next(&mut sub).await.1,
        "after",
        "nothing older follows the signal"
    );
}

#[tokio::test]
async fn slow_subscriber_catches_up_from_the_log() {
    let hub = Hub::new().capacity(4);
    let start = hub.publish("t", &data("start")).await.unwrap();
    let mut sub = hub.subscribe("t", Some(start.id())).await.unwrap();
    for i in 0..100 {
        hub.publish("t", &data(&i.to_string())).await.unwrap();
    }
    for i in 0..100 {
        assert_eq!(
            next(&mut sub).await.1,
            i.to_string(),
            "no gap, no duplicate"
        );
    }
    hub.publish("t", &data("after")).await.unwrap();
    assert_eq!(next(&mut sub).await.1, "after");
}

/// A live subscriber skips the id comparison once it is past its cursor (issue 16); after
/// falling behind, the catch-up's replay (several pages) and the rejoined ring overlap, and
/// the comparison must be back on: every event once, in order.
#[tokio::test]
async fn live_subscriber_that_lags_then_catches_up_gets_each_event_once() {
    let hub = Hub::new().capacity(4);
    let mut sub = hub.subscribe("t", None).await.unwrap();
    let mut sent = 0;
    for _ in 0..3 {
        hub.publish("t", &data(&sent.to_string())).await.unwrap();
        sent += 1;
    }
    let mut expected = 0;
    for _ in 0..3 {
        assert_eq!(next(&mut sub).await.1, expected.to_string());
        expected += 1;
    }
    // Far past the ring: the next read rejoins it and replays from the log, more than one
    // page. Two events published during the replay reach both the log (a later page) and
    // the rejoined ring.
    for _ in 0..(2 * REPLAY_PAGE) {
        hub.publish("t", &data(&sent.to_string())).await.unwrap();
        sent += 1;
    }
    assert_eq!(next(&mut sub).await.1, expected.to_string());
    expected += 1;
    for _ in 0..2 {
        hub.publish("t", &data(&sent.to_string())).await.unwrap();
        sent += 1;
    }
    while expected < sent {
        assert_eq!(
            next(&mut sub).await.1,
            expected.to_string(),
            "no gap, no duplicate"
        );
        expected += 1;
    }
    hub.publish("t", &data("after")).await.unwrap();
    assert_eq!(next(&mut sub).await.1, "after", "nothing twice before it");
}

#[tokio::test]
async fn subscriber_that_never_reads_holds_bounded_memory() {
    let log = MemoryLog::builder()
        .retention(Retention::default().max_events(1000))
        .build();
    let hub = Hub::with_log(log).capacity(16);
    let mut sub = hub.subscribe("t", None).await.unwrap();
    let first = hub.publish("t", &data("first")).await.unwrap();
    assert_eq!(next(&mut sub).await.2, first.id());
    let mut last = first;
    for i in 0..1_000_000u32 {
        last = hub.publish("t", &data(&i.to_string())).await.unwrap();
    }
    // The log keeps its bound; the topic's ring is fixed at 16 slots whatever the reader does.
    assert_eq!(hub.log().len("t"), 1000);
    // The reader's position is gone: it is told where the stream continues (the last event
    // the ring carried), and gets nothing older than that, only what follows.
    let (kind, signal, id) = next(&mut sub).await;
    assert_eq!(kind, "sse-gap");
    assert_eq!(
        signal,
        format!(r#"{{"reason":"gap","resume_from":"{}"}}"#, last.id())
    );
    assert_eq!(id, last.id());
    let live = hub.publish("t", &data("live")).await.unwrap();
    assert_ne!(live.id(), last.id());
    assert_eq!(next(&mut sub).await.1, "live");
}

#[tokio::test]
async fn topics_are_released_when_subscribers_leave() {
    let hub = Hub::new();
    hub.publish("a", &data("x")).await.unwrap();
    assert_eq!(hub.topic_count(), 0, "publishing alone tracks nothing");
    let sub = hub.subscribe("a", None).await.unwrap();
    let sub2 = hub.subscribe("b", None).await.unwrap();
    assert_eq!(hub.topic_count(), 2);
    drop(sub);
    drop(sub2);
    assert_eq!(hub.topic_count(), 0);
}

/// Several publishers and several subscribers that drop and resume mid-flight: every
/// subscriber sees exactly the log's order from where it started, with no gap and no
/// duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_and_resuming_subscribers() {
    const PUBLISHERS: usize = 4;
    const PER_PUBLISHER: usize = 500;
    const TOTAL: usize = PUBLISHERS * PER_PUBLISHER;
    let hub = Hub::with_log(Arc::new(MemoryLog::new())).capacity(8);

    // Subscribers start before publishing and resume three times with their last id.
    let mut readers = Vec::new();
    for r in 0..4 {
        let hub = hub.clone();
        let mut sub = hub.subscribe("t", None).await.unwrap();
        readers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while seen.len() < TOTAL {
                let (_, d, id) = next(&mut sub).await;
                seen.push((id.clone(), d));
                if seen.len() % (TOTAL / 3 + r) == 0 {
                    drop(sub);
                    tokio::task::yield_now().await;
                    sub = hub.subscribe("t", Some(&id)).await.unwrap();
                    assert_eq!(sub.outcome(), Some(&ReplayOutcome::Resumed));
                }
            }
            seen
        }));
    }
    let mut publishers = Vec::new();
    for p in 0..PUBLISHERS {
        let hub = hub.clone();
        publishers.push(tokio::spawn(async move {
            for i in 0..PER_PUBLISHER {
                hub.publish("t", &data(&format!("{p}-{i}"))).await.unwrap();
                if i % 50 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for p in publishers {
        p.await.unwrap();
    }
    // The log's own order is the truth.
    let replay = hub.log().read_after("t", None, TOTAL + 1).await.unwrap();
    let truth: Vec<(String, String)> = replay
        .events
        .iter()
        .map(|e| {
            let (_, d, id) = decode(e.frame()).pop().unwrap();
            (id, d)
        })
        .collect();
    assert_eq!(truth.len(), TOTAL);
    for reader in readers {
        assert_eq!(reader.await.unwrap(), truth);
    }
}

/// A subscriber that joined a topic whose ring had carried nothing yet, and fell behind the
/// ring before reading its first event, catches up from the log from where it joined: no
/// gap signal, nothing lost, nothing from before it joined.
#[tokio::test]
async fn a_fresh_subscriber_behind_the_ring_before_its_first_event_loses_nothing() {
    let hub = Hub::with_log(Arc::new(MemoryLog::new())).capacity(2);
    // Events before the subscriber joined, through another topic entry's lifetime.
    hub.publish("t", &data("old")).await.unwrap();
    assert_eq!(hub.topic_count(), 0, "the entry left with its publish");
    let mut sub = hub.subscribe("t", None).await.unwrap();
    for i in 0..10 {
        hub.publish("t", &data(&format!("e{i}"))).await.unwrap();
    }
    for i in 0..10 {
        let (event_type, data, _) = next(&mut sub).await;
        assert_eq!((event_type.as_str(), data), ("message", format!("e{i}")));
    }

    // The same on a topic with nothing in the log at all.
    let mut empty = hub.subscribe("u", None).await.unwrap();
    for i in 0..10 {
        hub.publish("u", &data(&format!("u{i}"))).await.unwrap();
    }
    for i in 0..10 {
        assert_eq!(next(&mut empty).await.1, format!("u{i}"));
    }
}
