//! The shared `EventLog` conformance suite, and the Redis-specific rules, on a real Redis.

mod common;

use std::{sync::Arc, time::Duration};

use common::RedisServer;
use tower_sse_core::{
    Event, EventLog, LiveLog, LogTail, ReplayOutcome, Retention, UnknownCursor, conformance,
};
use tower_sse_redis::{RedisLog, RedisLogError};

/// Builds one log per check, each on its own key prefix, before the suite runs.
async fn logs(server: &RedisServer, n: usize) -> Vec<RedisLog> {
    let mut logs = Vec::with_capacity(n);
    for _ in 0..n {
        logs.push(server.log().await);
    }
    logs
}

#[tokio::test]
async fn passes_the_shared_suite() {
    let server = RedisServer::start();
    let pool = std::sync::Mutex::new(logs(&server, 16).await);
    conformance::run(|| pool.lock().unwrap().pop().expect("enough logs")).await;
}

#[tokio::test]
async fn passes_the_live_log_check() {
    let server = RedisServer::start();
    conformance::live_positions(&server.log().await).await;
}

#[tokio::test]
async fn passes_the_gap_check_with_exact_trimming() {
    let server = RedisServer::start();
    let log = server.exact_log(3).await;
    conformance::gap_after_count_eviction(|max| {
        assert_eq!(log.retention().max_events, Some(max));
        log.clone()
    })
    .await;
}

#[tokio::test]
async fn malformed_cursors_are_rejected_without_a_round_trip() {
    let server = RedisServer::start();
    let log = server.log().await;
    let first = log.append("t", &Event::new().data("x")).await.unwrap();
    for cursor in [
        "-", "+", "$", ">", "*", "0", "1-", "01-1", "1-1\r\n", "1-1\0", "x",
    ] {
        let replay = log.read_after("t", Some(cursor), 10).await.unwrap();
        assert_eq!(
            replay.outcome,
            ReplayOutcome::Unknown(UnknownCursor::Malformed),
            "{cursor:?}"
        );
    }
    // Well-formed but past the last id: ahead. Well-formed, in range, never issued: unknown.
    let (ms, seq) = first.id().split_once('-').unwrap();
    let ms: u64 = ms.parse().unwrap();
    let replay = log
        .read_after("t", Some(&format!("{}-0", ms + 1)), 10)
        .await
        .unwrap();
    assert_eq!(replay.outcome, ReplayOutcome::Unknown(UnknownCursor::Ahead));
    let second = log.append("t", &Event::new().data("y")).await.unwrap();
    let between = if second.id().starts_with(&format!("{ms}-")) {
        None // same millisecond: no id strictly between
    } else {
        Some(format!("{ms}-{}", seq.parse::<u64>().unwrap() + 1))
    };
    if let Some(between) = between {
        let replay = log.read_after("t", Some(&between), 10).await.unwrap();
        assert_eq!(
            replay.outcome,
            ReplayOutcome::Unknown(UnknownCursor::OtherEpoch)
        );
    }
    let replay = log.read_after("other", Some(first.id()), 10).await.unwrap();
    assert_eq!(
        replay.outcome,
        ReplayOutcome::Unknown(UnknownCursor::Ahead),
        "an id of another topic, on a topic never written"
    );
}

#[tokio::test]
async fn approximate_trimming_keeps_at_least_max_events_and_reports_the_gap() {
    let server = RedisServer::start();
    let log = server
        .builder()
        .retention(Retention::unbounded().max_events(10))
        .connect()
        .await
        .unwrap();
    let events: Vec<Event<'static>> = (0..1000)
        .map(|i| Event::new().data(i.to_string()))
        .collect();
    let appended = log.append_batch("t", &events).await.unwrap();
    assert_eq!(appended.len(), 1000);

    let fresh = log.read_after("t", None, 2000).await.unwrap();
    assert_eq!(fresh.outcome, ReplayOutcome::Fresh);
    let retained = fresh.events.len();
    assert!(
        (10..1000).contains(&retained),
        "approximate MAXLEN keeps at least 10 and trimmed something: kept {retained}"
    );
    assert_eq!(fresh.events[..], appended[1000 - retained..]);

    let replay = log
        .read_after("t", Some(appended[0].id()), 5)
        .await
        .unwrap();
    let oldest = fresh.events[0].shared_id().clone();
    assert_eq!(replay.outcome, ReplayOutcome::gap(Some(oldest)));
    assert_eq!(replay.events[..], fresh.events[..5]);
    assert!(replay.has_more);

    // The entry just before the oldest replayable one is the retention marker: no gap.
    let marker = &appended[1000 - retained - 1];
    let replay = log.read_after("t", Some(marker.id()), 2000).await.unwrap();
    assert_eq!(
        (replay.outcome, replay.events),
        (ReplayOutcome::Resumed, fresh.events)
    );
}

#[tokio::test]
async fn age_retention_uses_the_servers_clock() {
    let server = RedisServer::start();
    let log = server
        .builder()
        .retention(Retention::default().max_age(Duration::from_millis(300)))
        .connect()
        .await
        .unwrap();
    let old = log.append("t", &Event::new().data("old")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(450)).await;
    let new = log.append("t", &Event::new().data("new")).await.unwrap();

    let fresh = log.read_after("t", None, 10).await.unwrap();
    assert_eq!(
        fresh.events,
        std::slice::from_ref(&new),
        "the expired event is not replayed"
    );
    let replay = log.read_after("t", Some(old.id()), 10).await.unwrap();
    assert_eq!(
        (replay.outcome, replay.events),
        (ReplayOutcome::Resumed, vec![new.clone()]),
        "the reader saw the last expired event: no gap"
    );

    tokio::time::sleep(Duration::from_millis(450)).await;
    let replay = log.read_after("t", Some(old.id()), 10).await.unwrap();
    assert_eq!(
        (replay.outcome, replay.events),
        (ReplayOutcome::gap(None), vec![]),
        "both expired: a gap, and nothing left to replay"
    );
    let replay = log.read_after("t", Some(new.id()), 10).await.unwrap();
    assert_eq!(replay.outcome, ReplayOutcome::Resumed);
}

#[tokio::test]
async fn byte_retention_is_refused() {
    let server = RedisServer::start();
    let error = server
        .builder()
        .retention(Retention::default().max_bytes(1024))
        .connect()
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        RedisLogError::UnsupportedRetention { limit: "max_bytes" }
    ));
    assert!(error.to_string().contains("max_bytes"), "{error}");
}

#[tokio::test]
async fn the_stream_holds_the_frame_under_the_key_prefix() {
    let server = RedisServer::start();
    let log = server.builder().key_prefix("app:").connect().await.unwrap();
    let event = Event::new().event("tick").unwrap().data("1");
    let logged = log.append("clock", &event).await.unwrap();
    assert_eq!(
        &logged.frame()[..],
        format!("id: {}\nevent: tick\ndata: 1\n\n", logged.id()).as_bytes()
    );
    let mut connection = log.connection();
    type Entry = (String, Vec<(String, Vec<u8>)>);
    let entries: Vec<Entry> = tower_sse_redis::redis::cmd("XRANGE")
        .arg("app:clock")
        .arg("-")
        .arg("+")
        .query_async(&mut connection)
        .await
        .unwrap();
    assert_eq!(
        entries,
        [(
            logged.id().to_owned(),
            vec![(
                "event".to_owned(),
                format!("id: {}\nevent: tick\ndata: 1\n\n", logged.id()).into_bytes()
            )]
        )]
    );
}

#[tokio::test]
async fn live_positions_and_the_tail() {
    let server = RedisServer::start();
    let log = Arc::new(
        server
            .builder()
            .block(Duration::from_millis(200))
            .connect()
            .await
            .unwrap(),
    );
    assert_eq!(log.last_id("t").await.unwrap().as_deref(), Some("0-0"));
    let replay = log.read_after("t", Some("0-0"), 10).await.unwrap();
    assert_eq!(
        replay.outcome,
        ReplayOutcome::Resumed,
        "0-0 is before everything"
    );

    let a = log.append("t", &Event::new().data("a")).await.unwrap();
    let b = log.append("t", &Event::new().data("b")).await.unwrap();
    assert_eq!(log.last_id("t").await.unwrap().as_deref(), Some(b.id()));
    assert_eq!(
        log.compare_ids(a.id(), b.id()),
        Some(std::cmp::Ordering::Less)
    );
    assert_eq!(log.compare_ids(a.id(), "$"), None);

    let mut tail = log.tail();
    let never = || std::future::pending::<()>();
    let at = |after: &str| vec![(Arc::<str>::from("t"), Some(Arc::<str>::from(after)))];
    assert_eq!(
        tail.wait_any(&at(a.id()), never()).await.unwrap(),
        [0],
        "b follows a"
    );
    assert!(
        tail.wait_any(&at(b.id()), never())
            .await
            .unwrap()
            .is_empty(),
        "nothing after b: times out"
    );

    // Waiting on a quiet topic; an append to the followed one wakes the tail.
    let b_id = b.id().to_owned();
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let positions = vec![
            (Arc::<str>::from("quiet"), None),
            (Arc::<str>::from("t"), Some(Arc::<str>::from(b_id.as_str()))),
        ];
        loop {
            let ready = tail.wait_any(&positions, never()).await.unwrap();
            if !ready.is_empty() {
                return (ready, started.elapsed(), tail);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    log.append("t", &Event::new().data("c")).await.unwrap();
    let (ready, waited, _tail) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready, [1], "the followed topic with an event");
    assert!(
        waited < Duration::from_secs(2),
        "woken by the append, after {waited:?}"
    );

    // A re-arm cuts a blocked wait short (CLIENT UNBLOCK), well before the block timeout.
    let slow = server
        .builder()
        .block(Duration::from_secs(30))
        .connect()
        .await
        .unwrap();
    let mut tail = slow.tail();
    let started = std::time::Instant::now();
    let rearm = tokio::time::sleep(Duration::from_millis(100));
    let ready = tail
        .wait_any(&[(Arc::<str>::from("quiet"), None)], rearm)
        .await
        .unwrap();
    assert!(ready.is_empty());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "re-armed after {:?}",
        started.elapsed()
    );
    // And the connection is free for the next wait.
    slow.append("quiet", &Event::new().data("q")).await.unwrap();
    let ready = tail
        .wait_any(&[(Arc::<str>::from("quiet"), None)], never())
        .await
        .unwrap();
    assert_eq!(ready, [0]);
}

#[tokio::test]
async fn readers_of_an_entry_share_one_frame_and_old_entries_still_read() {
    let server = RedisServer::start();
    let log = server.log().await;
    let appended = log.append("t", &Event::new().data("shared")).await.unwrap();
    let a = log.read_after("t", None, 10).await.unwrap();
    let b = log.read_after("t", None, 10).await.unwrap();
    assert_eq!(a.events, std::slice::from_ref(&appended));
    // The same buffer, not an equal copy: the cache hands out one Bytes per entry.
    assert_eq!(a.events[0].frame().as_ptr(), b.events[0].frame().as_ptr());
    assert_eq!(a.events[0].frame().as_ptr(), appended.frame().as_ptr());

    // Without the cache each read has its own buffer, still the same bytes.
    let uncached = server
        .builder()
        .frame_cache_bytes(0)
        .connect()
        .await
        .unwrap();
    let logged = uncached.append("t", &Event::new().data("x")).await.unwrap();
    let read = uncached.read_after("t", None, 10).await.unwrap();
    assert_eq!(read.events, [logged]);

    // An entry written before frames were stored with their id (field `frame`).
    let mut connection = log.connection();
    let id: String = tower_sse_redis::redis::cmd("XADD")
        .arg(log.key("legacy"))
        .arg("1-1")
        .arg("frame")
        .arg("data: old\n\n")
        .query_async(&mut connection)
        .await
        .unwrap();
    let read = log.read_after("legacy", None, 10).await.unwrap();
    assert_eq!(
        &read.events[0].frame()[..],
        format!("id: {id}\ndata: old\n\n").as_bytes()
    );
}

#[tokio::test]
async fn invalid_topic_names_never_become_keys() {
    let server = RedisServer::start();
    let log = server.builder().key_prefix("app:").connect().await.unwrap();
    let event = Event::new().data("x");
    let long = "a".repeat(129);
    for name in ["", "a b", "chat\r\nFLUSHALL", "x:y", "*", long.as_str()] {
        for result in [
            log.append(name, &event).await.map(|_| ()),
            log.append_batch(name, std::slice::from_ref(&event))
                .await
                .map(|_| ()),
            log.read_after(name, Some("1-0"), 5).await.map(|_| ()),
            log.read_after(name, Some("not an id"), 5).await.map(|_| ()),
            log.head(name).await.map(|_| ()),
        ] {
            let error = result.expect_err(name);
            assert!(
                matches!(error, RedisLogError::InvalidTopic { .. }),
                "{name:?}: {error:?}"
            );
            assert!(!error.is_connection_error());
            let message = error.to_string();
            assert!(message.contains("topic name"), "{message}");
            assert!(name.len() < 2 || !message.contains(name), "{message}");
        }
    }
    // A configured rule admits what the default refuses; invisible bytes stay refused.
    let colons = server
        .builder()
        .key_prefix("app:")
        .topic_rules(tower_sse_core::TopicRules::new().allowed(|_| true))
        .connect()
        .await
        .unwrap();
    colons.append("x:y", &event).await.unwrap();
    assert!(colons.append("a b", &event).await.is_err());
    let mut connection = log.connection();
    let keys: Vec<Vec<u8>> = tower_sse_redis::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut connection)
        .await
        .unwrap();
    // The log's own clock key is not UTF-8 (so no topic can have it): every other key is.
    let keys: Vec<&str> = keys
        .iter()
        .filter_map(|key| std::str::from_utf8(key).ok())
        .collect();
    assert_eq!(keys, ["app:x:y"], "only the valid name became a key");
}
