//! Several topics on one Hub subscription: one composite cursor resumes every topic with no
//! gap and no duplicate; topic names validated; the authorization hook.

use std::{collections::BTreeMap, time::Duration};

use futures_util::StreamExt;
use http::request::Parts;
use tower_sse::{Authorizer, Hub, HubError, Subscription};
use tower_sse_core::{Decoded, Decoder, Event, InvalidTopic, MemoryLog, TopicName, TopicSetError};

/// (event type, data, id) of the one event in the next frame.
async fn next(sub: &mut Subscription) -> (String, String, String) {
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
            events.push((
                e.event_type().to_owned(),
                e.data().to_owned(),
                e.last_event_id().to_owned(),
            ));
        }
    }
    assert_eq!(events.len(), 1, "one event per frame");
    let (a, b, c) = events.pop().unwrap();
    (a, b, c)
}

/// Nothing more arrives for a while.
async fn quiet(sub: &mut Subscription) {
    let more = tokio::time::timeout(Duration::from_millis(200), sub.next()).await;
    assert!(more.is_err(), "unexpected frame: {more:?}");
}

fn data(value: &str) -> Event<'_> {
    Event::new().data(value)
}

const TOPICS: [&str; 3] = ["chat", "alerts", "dash/board"];

/// Per topic (from the id's label), the data received in order.
fn by_topic(events: &[(String, String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, data, id) in events {
        let (topic, _) = id.split_once(' ').expect("a composite id");
        out.entry(topic.to_owned()).or_default().push(data.clone());
    }
    out
}

#[tokio::test]
async fn one_cursor_resumes_three_topics_without_gap_or_duplicate() {
    let hub = Hub::new();
    // History before the first subscribe is not the client's.
    hub.publish("chat", &data("old")).await.unwrap();
    let mut sub = hub.subscribe_topics(TOPICS, None).await.unwrap();
    let mut seen = Vec::new();
    for i in 0..4 {
        for topic in TOPICS {
            hub.publish(topic, &data(&format!("{topic}-{i}")))
                .await
                .unwrap();
        }
    }
    for _ in 0..7 {
        seen.push(next(&mut sub).await);
    }
    let cursor = seen.last().unwrap().2.clone();
    assert!(cursor.len() < 4096, "{cursor}");
    // The cut: the client is away while every topic is published to.
    drop(sub);
    for i in 4..6 {
        for topic in TOPICS {
            hub.publish(topic, &data(&format!("{topic}-{i}")))
                .await
                .unwrap();
        }
    }
    let mut sub = hub.subscribe_topics(TOPICS, Some(&cursor)).await.unwrap();
    for topic in TOPICS {
        hub.publish(topic, &data(&format!("{topic}-6")))
            .await
            .unwrap();
    }
    while seen.len() < 21 {
        seen.push(next(&mut sub).await);
    }
    quiet(&mut sub).await;
    let got = by_topic(&seen);
    for topic in TOPICS {
        let expected: Vec<String> = (0..7).map(|i| format!("{topic}-{i}")).collect();
        assert_eq!(got[topic], expected, "{topic}");
    }
}

#[tokio::test]
async fn a_topic_without_events_before_the_cut_loses_nothing() {
    let hub = Hub::new();
    let mut sub = hub.subscribe_topics(["a", "b"], None).await.unwrap();
    hub.publish("a", &data("a1")).await.unwrap();
    let (_, _, cursor) = next(&mut sub).await;
    drop(sub);
    // Published while the client is away, to a topic it never got an event of.
    hub.publish("b", &data("b1")).await.unwrap();
    let mut sub = hub
        .subscribe_topics(["b", "a"], Some(&cursor))
        .await
        .unwrap();
    let (_, data, id) = next(&mut sub).await;
    assert_eq!(data, "b1");
    assert!(id.starts_with("b "), "{id}");
    quiet(&mut sub).await;
}

#[tokio::test]
async fn single_topic_keeps_plain_ids_and_a_foreign_cursor_is_a_gap() {
    let hub = Hub::new();
    let mut one = hub.subscribe_topics(["t", "t"], None).await.unwrap();
    let logged = hub.publish("t", &data("x")).await.unwrap();
    assert_eq!(next(&mut one).await.2, logged.id());

    // A plain id sent to a set of two: each topic says it cannot resume.
    let mut two = hub
        .subscribe_topics(["t", "u"], Some(logged.id()))
        .await
        .unwrap();
    let mut gaps = vec![next(&mut two).await, next(&mut two).await];
    gaps.sort();
    for (event_type, data, _) in &gaps {
        assert_eq!(event_type, "sse-gap");
        assert!(data.contains("unknown-cursor"), "{data}");
    }
    hub.publish("u", &data("live")).await.unwrap();
    assert_eq!(next(&mut two).await.1, "live");
}

#[tokio::test]
async fn invalid_names_and_too_many_topics_are_refused_before_the_log() {
    let log = std::sync::Arc::new(MemoryLog::new());
    let hub = Hub::with_log(std::sync::Arc::clone(&log));
    for name in ["", "a b", "x\r\nDEL y", "caf\u{e9}", &"a".repeat(129), "*"] {
        let err = hub.publish(name, &data("x")).await.unwrap_err();
        assert!(matches!(err, HubError::InvalidTopic(_)), "{name:?}: {err}");
        assert_eq!(err.status(), 400);
        let err = hub.subscribe_topics(["ok", name], None).await.unwrap_err();
        assert!(matches!(err, HubError::InvalidTopic(_)), "{name:?}");
    }
    assert_eq!(log.topic_count(), 0);
    assert_eq!(hub.topic_count(), 0);

    let names: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
    let err = hub
        .subscribe_topics(names.iter().map(String::as_str), None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        HubError::Topics(TopicSetError::TooMany { max: 32 })
    ));
    // 32 distinct names, repeated, are fine.
    let repeated = names[..32].iter().chain(&names[..32]).map(String::as_str);
    hub.subscribe_topics(repeated, None).await.unwrap();
    let flood = std::iter::repeat_n("same", 129);
    let err = hub.subscribe_topics(flood, None).await.unwrap_err();
    assert!(matches!(
        err,
        HubError::Topics(TopicSetError::TooManyNames { max: 128 })
    ));
    // A garbage cursor of the maximum length on a set: each topic says it cannot resume.
    let garbage = format!("a m1.{}", "%zz,".repeat(1000));
    let mut sub = hub
        .subscribe_topics(["a", "b"], Some(&garbage))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(next(&mut sub).await.0, "sse-gap");
    }
    let err = hub.subscribe_topics([], None).await.unwrap_err();
    assert!(matches!(err, HubError::Topics(TopicSetError::Empty)));
    assert_eq!(
        Hub::new().topic("a b").unwrap_err().to_string(),
        InvalidTopic::ForbiddenByte { at: 1 }.to_string()
    );
}

fn request(token: Option<&str>) -> Parts {
    let mut builder = http::Request::get("/events");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    builder.body(()).unwrap().into_parts().0
}

#[tokio::test]
async fn a_denied_topic_refuses_the_subscription_before_anything_is_read() {
    let hub = Hub::new().authorize(Authorizer::new(|request: &Parts, topic: &TopicName| {
        let allowed = !topic.starts_with("private/")
            || request
                .headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer good");
        async move { allowed }
    }));
    hub.publish("private/x", &data("secret")).await.unwrap();
    let first = hub.publish("public", &data("p1")).await.unwrap();

    for token in [None, Some("bad")] {
        let err = hub
            .subscribe_request(&request(token), ["public", "private/x"], None)
            .await
            .unwrap_err();
        match &err {
            HubError::Forbidden { topic } => assert_eq!(topic.as_str(), "private/x"),
            other => panic!("{other}"),
        }
        assert_eq!(err.status(), 403);
        assert_eq!(hub.topic_count(), 0, "nothing joined");
    }
    // Without a request: no credentials.
    assert!(hub.subscribe("private/x", Some(first.id())).await.is_err());

    let mut sub = hub
        .subscribe_request(&request(Some("good")), ["public", "private/x"], None)
        .await
        .unwrap();
    hub.publish("private/x", &data("s2")).await.unwrap();
    assert_eq!(next(&mut sub).await.1, "s2");
    assert!(
        hub.allows(
            &request(Some("good")),
            &TopicName::new("private/x").unwrap()
        )
        .await
    );
    assert!(
        !hub.allows(&request(None), &TopicName::new("private/x").unwrap())
            .await
    );
}

#[tokio::test]
async fn dropping_a_multi_topic_subscription_releases_every_topic() {
    let hub = Hub::new();
    let names: Vec<String> = (0..32).map(|i| format!("t/{i}")).collect();
    let sub = hub
        .subscribe_topics(names.iter().map(String::as_str), None)
        .await
        .unwrap();
    assert_eq!(hub.topic_count(), 32);
    drop(sub);
    assert_eq!(hub.topic_count(), 0);
    // A subscribe cancelled half-way (its future dropped) leaves nothing behind either.
    let pending = hub.subscribe_topics(names.iter().map(String::as_str), None);
    drop(pending);
    assert_eq!(hub.topic_count(), 0);
}
