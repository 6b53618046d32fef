//! Faults: Redis restarted mid-stream, Redis unreachable at start-up.

mod common;

use std::time::{Duration, Instant};

use common::RedisServer;
use futures_util::StreamExt;
use tower_sse::{Hub, Subscription};
use tower_sse_core::{Decoded, Decoder, Event, EventLog, ReplayOutcome};
use tower_sse_redis::{RedisLog, RedisLogError};

async fn next_data(sub: &mut Subscription) -> String {
    let frame = tokio::time::timeout(Duration::from_secs(15), sub.next())
        .await
        .expect("an event within 15 s")
        .expect("the feed does not end")
        .expect("no log error");
    let mut decoder = Decoder::new();
    decoder.feed(&frame);
    match decoder.decode() {
        Ok(Some(Decoded::Event(event))) => event.data().into(),
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn live_hub(server: &RedisServer, prefix: &str) -> Hub<RedisLog> {
    let log = RedisLog::builder(server.url())
        .key_prefix(prefix)
        .block(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    Hub::with_live_log(log)
}

/// Publishes, retrying while the client reconnects to a restarted server.
async fn publish_eventually(hub: &Hub<RedisLog>, data: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match hub
            .publish("room", &Event::new().data(data.to_owned()))
            .await
        {
            Ok(_) => return,
            Err(error) if Instant::now() < deadline => {
                let connection = error.log_error().is_some_and(|e| e.is_connection_error());
                assert!(connection, "{error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(error) => panic!("publish still failing after the restart: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_loses_nothing_redis_kept_and_subscribers_reconnect_on_their_own() {
    let mut server = RedisServer::start_persistent();
    let prefix = common::unique_prefix();
    let a = live_hub(&server, &prefix).await;
    let b = live_hub(&server, &prefix).await;
    let mut on_b = b.subscribe("room", None).await.unwrap();

    let mut before = Vec::new();
    for i in 0..5 {
        before.push(
            a.publish("room", &Event::new().data(format!("e{i}")))
                .await
                .unwrap(),
        );
    }
    // Killed before B's tail has necessarily delivered them: the append-only file has them.
    server.stop();

    let started = Instant::now();
    let error = a
        .publish("room", &Event::new().data("lost"))
        .await
        .expect_err("no server, no append");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast: {:?}",
        started.elapsed()
    );
    assert!(
        error.log_error().is_some_and(|e| e.is_connection_error()),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(&server.url()),
        "names the server: {message}"
    );
    assert!(message.contains("append to"), "says what failed: {message}");
    assert!(
        std::error::Error::source(&error).is_some(),
        "keeps the cause"
    );

    server.restart();
    for i in 5..10 {
        publish_eventually(&a, &format!("e{i}")).await;
    }
    for i in 0..10 {
        assert_eq!(
            next_data(&mut on_b).await,
            format!("e{i}"),
            "in order, none lost"
        );
    }
    if let Ok(item) = tokio::time::timeout(Duration::from_millis(500), on_b.next()).await {
        panic!("nothing else, and no duplicate: got {item:?}");
    }

    // A client that saw e2 before the restart resumes on either server.
    for hub in [&a, &b] {
        let replay = hub
            .log()
            .read_after("room", Some(before[2].id()), 100)
            .await
            .unwrap();
        assert_eq!(replay.outcome, ReplayOutcome::Resumed);
        assert_eq!(replay.events.len(), 7);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_lost_the_data_is_reported_as_a_gap() {
    // No persistence: the restarted server has forgotten the stream.
    let mut server = RedisServer::start();
    let prefix = common::unique_prefix();
    let a = live_hub(&server, &prefix).await;
    let mut on_a = a.subscribe("room", None).await.unwrap();
    a.publish("room", &Event::new().data("before"))
        .await
        .unwrap();
    assert_eq!(next_data(&mut on_a).await, "before");

    server.restart();
    publish_eventually(&a, "after").await;
    // The tail finds its position gone; the subscriber is told, then goes on live.
    let frame = tokio::time::timeout(Duration::from_secs(15), on_a.next())
        .await
        .expect("a frame within 15 s")
        .expect("the feed does not end")
        .expect("no log error");
    assert!(
        frame.windows(15).any(|w| w == b"event: sse-gap\n"),
        "the gap signal: {:?}",
        String::from_utf8_lossy(&frame)
    );
    publish_eventually(&a, "later").await;
    let mut rest = Vec::new();
    while rest.last().map(String::as_str) != Some("later") {
        rest.push(next_data(&mut on_a).await);
    }
    assert!(
        rest == ["later"] || rest == ["after", "later"],
        "then live again: {rest:?}"
    );
}

#[tokio::test]
async fn unreachable_at_start_up_names_the_url() {
    let url = format!("redis://127.0.0.1:{}", common::free_port());
    let started = Instant::now();
    let error = RedisLog::connect(&url)
        .await
        .expect_err("nobody listens there");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast: {:?}",
        started.elapsed()
    );
    assert!(matches!(error, RedisLogError::Connect { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        format!("could not connect to redis at {url}")
    );
    assert!(std::error::Error::source(&error).is_some());
    assert!(error.is_connection_error());
}

#[tokio::test]
async fn a_bad_url_is_refused_and_a_password_never_shown() {
    let error = RedisLog::connect("http://example.com").await.unwrap_err();
    assert!(
        matches!(error, RedisLogError::InvalidUrl { .. }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "invalid redis url `http://example.com`");

    let url = format!("redis://:hunter2@127.0.0.1:{}", common::free_port());
    let error = RedisLog::connect(&url).await.unwrap_err();
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.contains("redis://:***@127.0.0.1:"), "{message}");
}
