//! Several topics on one stream over Redis: a client subscribed to three topics on server A is
//! cut while all three are published to (on both servers), and resumes on server B with the
//! composite cursor: every topic continues with no gap and no duplicate.

mod common;

use std::{collections::BTreeMap, time::Duration};

use common::RedisServer;
use futures_util::StreamExt;
use tower_sse::{Hub, Subscription};
use tower_sse_core::{Decoded, Decoder, Event};
use tower_sse_redis::RedisLog;

/// (data, id) of the one event in the next frame.
async fn next(sub: &mut Subscription) -> (String, String) {
    let frame = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event within 10 s")
        .expect("the feed does not end")
        .expect("no log error");
    let mut decoder = Decoder::new();
    decoder.feed(&frame);
    let mut events = Vec::new();
    while let Some(item) = decoder.decode().unwrap() {
        if let Decoded::Event(e) = item {
            events.push((e.data().to_owned(), e.last_event_id().to_owned()));
        }
    }
    assert_eq!(events.len(), 1, "one event per frame: {frame:?}");
    let (data, id) = events.pop().unwrap();
    (data, id)
}

const TOPICS: [&str; 3] = ["chat", "alerts", "private/ops"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_topic_cursor_from_a_resumes_on_b() {
    let server = RedisServer::start();
    let prefix = common::unique_prefix();
    let connect = || async {
        RedisLog::builder(server.url())
            .key_prefix(prefix.clone())
            .block(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect")
    };
    let (a, b) = (
        Hub::with_live_log(connect().await),
        Hub::with_live_log(connect().await),
    );
    // Some history that the client, subscribing later without a cursor, must not get.
    a.publish("chat", &Event::new().data("old")).await.unwrap();

    let mut on_a = a.subscribe_topics(TOPICS, None).await.unwrap();
    let mut seen: Vec<(String, String)> = Vec::new();
    for i in 0..3 {
        for (n, topic) in TOPICS.iter().enumerate() {
            let hub = if n % 2 == 0 { &a } else { &b };
            hub.publish(topic, &Event::new().data(format!("{topic}-{i}")))
                .await
                .unwrap();
        }
    }
    // Mid-stream: five of nine.
    for _ in 0..5 {
        seen.push(next(&mut on_a).await);
    }
    let cursor = seen.last().unwrap().1.clone();
    drop(on_a);
    for i in 3..5 {
        for topic in TOPICS {
            b.publish(topic, &Event::new().data(format!("{topic}-{i}")))
                .await
                .unwrap();
        }
    }
    let mut on_b = b.subscribe_topics(TOPICS, Some(&cursor)).await.unwrap();
    for topic in TOPICS {
        a.publish(topic, &Event::new().data(format!("{topic}-5")))
            .await
            .unwrap();
    }
    while seen.len() < 18 {
        seen.push(next(&mut on_b).await);
    }
    if let Ok(more) = tokio::time::timeout(Duration::from_millis(500), on_b.next()).await {
        panic!("nothing more expected, got {more:?}");
    }
    let mut by_topic: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (data, id) in &seen {
        let (topic, _) = id.split_once(' ').expect("a composite id");
        assert!(data.starts_with(topic), "{data} labelled {topic}");
        by_topic.entry(topic).or_default().push(data);
    }
    for topic in TOPICS {
        let expected: Vec<String> = (0..6).map(|i| format!("{topic}-{i}")).collect();
        assert_eq!(by_topic[topic], expected, "{topic}");
    }
}
