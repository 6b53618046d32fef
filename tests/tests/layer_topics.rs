//! The LAYER (not the hub) resumes streams of several topics, against every framework over
//! real loopback sockets, on `MemoryLog` and on `RedisLog` (a real `redis-server`): a client of
//! three topics is cut mid-stream while all three are published to and resumes through the
//! layer's replay, with a handler whose hub stream subscribes 200 ms late, with no loss and no
//! duplicate on any topic (also cut on one server and resumed on another sharing Redis); a
//! denied topic is refused with 403 and none of its events appears,
//! replayed or live.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use http::StatusCode;
use http_body_util::BodyExt;
use tower_sse::Hub;
use tower_sse_conformance::{Framework, LayeredServer, NETWORK, RedisServer, TOKEN};
use tower_sse_core::{Event, EventLog, MemoryLog, TopicName, TopicSet};
use tower_sse_redis::RedisLog;

const TOPICS: [&str; 3] = ["chat", "alerts", "dash/board"];
const PER_TOPIC: usize = 150;
/// The rounds published once the resumed stream's source has joined.
const TAIL: usize = 10;

/// Per topic (from the id's `<topic> ` label), the data received, in order.
fn by_topic(events: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (data, id) in events {
        let (topic, _) = id.split_once(' ').expect("a composite id");
        out.entry(topic.to_owned()).or_default().push(data.clone());
    }
    out
}

/// The log a scenario runs on, with the redis-server behind it (kept alive by the caller).
async fn redis_log() -> (RedisServer, RedisLog) {
    let server = RedisServer::start();
    let log = RedisLog::builder(server.url())
        .key_prefix(RedisServer::unique_prefix())
        .connect()
        .await
        .expect("connect to the test redis");
    (server, log)
}

async fn three_topics_resumed_by_the_layer<L: EventLog + Clone>(framework: Framework, log: L) {
    let hub = Hub::with_log(log.clone());
    let server = LayeredServer::start(framework, hub.clone(), log).await;
    resume_three_topics(framework, hub.clone(), &server, hub, &server).await;
}

/// Two servers of `framework` on one `redis-server`, each with its own hub and connections
/// (tailing Redis): the client is cut on A and resumes on B, while both publish.
async fn three_topics_resumed_on_another_server(framework: Framework) {
    let redis = RedisServer::start();
    let prefix = RedisServer::unique_prefix();
    let connect = || async {
        RedisLog::builder(redis.url())
            .key_prefix(prefix.clone())
            .connect()
            .await
            .expect("connect to the test redis")
    };
    let (log_a, log_b) = (connect().await, connect().await);
    let hub_a = Hub::with_live_log(log_a.clone());
    let hub_b = Hub::with_live_log(log_b.clone());
    let a = LayeredServer::start(framework, hub_a.clone(), log_a).await;
    let b = LayeredServer::start(framework, hub_b.clone(), log_b).await;
    resume_three_topics(framework, hub_a, &a, hub_b, &b).await;
}

/// Reads a three-topic stream on `first`, cuts it mid-stream while `hub_a` and `hub_b` publish
/// to all three topics in turn, and resumes it on `second` with the last id received.
async fn resume_three_topics<L: EventLog>(
    framework: Framework,
    hub_a: Hub<L>,
    first: &LayeredServer,
    hub_b: Hub<L>,
    second: &LayeredServer,
) {
    let server = first;
    let path = "/feed?topic=chat&topic=alerts&topic=dash%2Fboard";
    let mut client = server.client().await;
    let mut stream = client.events(path, &[]).await;

    // All three topics are published to, interleaved, before, during and after the cut; the
    // last rounds once the resumed stream's source has joined, so that every topic's tail
    // comes live (an event published before the source joins goes out with the next live one).
    let (resumed, joined) = tokio::sync::oneshot::channel::<()>();
    let publisher = tokio::spawn(async move {
        let mut joined = Some(joined);
        for i in 0..PER_TOPIC {
            if i == PER_TOPIC - TAIL {
                let _ = joined.take().unwrap().await;
                tokio::time::sleep(tower_sse_conformance::LATE * 2).await;
            }
            for topic in TOPICS {
                let event = Event::new()
                    .event("n")
                    .unwrap()
                    .data(format!("{topic}:{i}"));
                let hub = if i % 2 == 0 { &hub_a } else { &hub_b };
                hub.publish(topic, &event).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 40 {
        let event = tokio::time::timeout(NETWORK, stream.event())
            .await
            .expect("an event before the cut")
            .expect("the stream goes on");
        seen.push((
            String::from(event.data()),
            String::from(event.last_event_id()),
        ));
    }
    // The cut: the connection goes away mid-stream.
    drop(stream);
    drop(client);
    assert!(
        !publisher.is_finished(),
        "cut while all three are published to"
    );
    let last = seen.last().unwrap().1.clone();
    assert!(last.len() <= 4096, "{last}");

    let mut client = second.client().await;
    let mut stream = client.events(path, &[("last-event-id", &last)]).await;
    resumed.send(()).unwrap();
    let finals: Vec<String> = TOPICS
        .iter()
        .map(|t| format!("{t}:{}", PER_TOPIC - 1))
        .collect();
    while !finals.iter().all(|f| seen.iter().any(|(d, _)| d == f)) {
        let event = tokio::time::timeout(NETWORK, stream.event())
            .await
            .expect("every event in time")
            .expect("the stream goes on");
        assert_eq!(event.event_type(), "n", "no gap signal: {}", event.data());
        seen.push((
            String::from(event.data()),
            String::from(event.last_event_id()),
        ));
    }
    publisher.await.unwrap();
    let got = by_topic(&seen);
    for topic in TOPICS {
        // The first stream started late (its source subscribes 200 ms after the request):
        // from its first event on, every event of every topic once, in order.
        let events = &got[topic];
        let first: usize = events[0].rsplit_once(':').unwrap().1.parse().unwrap();
        let expected: Vec<String> = (first..PER_TOPIC).map(|i| format!("{topic}:{i}")).collect();
        assert_eq!(
            events, &expected,
            "{framework:?} {topic}: no loss, no duplicate, in order"
        );
    }
    // Nothing more: no duplicate after the last one.
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.event()).await;
    assert!(extra.is_err(), "unexpected {extra:?}");
}

async fn denied_topic_is_absent_on_the_layer_path<L: EventLog + Clone>(
    framework: Framework,
    log: L,
) {
    let hub = Hub::with_log(log.clone());
    let server = LayeredServer::start(framework, hub.clone(), log).await;
    let secret = hub
        .publish("private/ops", &Event::new().data("secret-before"))
        .await
        .unwrap();
    let news = hub
        .publish("news", &Event::new().data("news-0"))
        .await
        .unwrap();
    let set =
        |names: [&str; 2]| TopicSet::new(names.map(|n| TopicName::new(n).unwrap()), 32).unwrap();
    // A cursor of (news, private/ops) as the server writes it: before both events.
    let guarded = set(["news", "private/ops"]);
    let cursor = guarded.encode_cursor(0, &[None, None]);

    let path = "/feed?topic=news&topic=private%2Fops";
    let wrong = format!("Bearer not-{TOKEN}");
    for headers in [
        vec![],
        vec![("last-event-id", cursor.as_str())],
        vec![("last-event-id", secret.id())],
        vec![
            ("authorization", wrong.as_str()),
            ("last-event-id", cursor.as_str()),
        ],
    ] {
        let mut client = server.client().await;
        let response = client.get(path, &headers).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{framework:?}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(body.contains("denied"), "{body}");
        assert!(!body.contains("secret"), "{body}");
    }
    // Invalid names and too many topics: 400 with a message.
    let many: String = (0..33).map(|i| format!("topic=t{i}&")).collect();
    for path in [
        "/feed?topic=".to_owned(),
        "/feed?topic=a%20b".to_owned(),
        format!("/feed?{many}"),
    ] {
        let mut client = server.client().await;
        let response = client.get(&path, &[("last-event-id", &cursor)]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(b"invalid stream topic"), "{body:?}");
    }

    // Public topics, resumed by the layer: replay and live carry no private event.
    let public = set(["chat", "news"]);
    let from = public.encode_cursor(1, &[None, Some(news.id().into())]);
    let mut client = server.client().await;
    let mut stream = client
        .events("/feed?topic=news&topic=chat", &[("last-event-id", &from)])
        .await;
    hub.publish("private/ops", &Event::new().data("secret-live"))
        .await
        .unwrap();
    hub.publish("news", &Event::new().data("news-1"))
        .await
        .unwrap();
    // After the handler's source has joined: live.
    tokio::time::sleep(tower_sse_conformance::LATE * 2).await;
    hub.publish("private/ops", &Event::new().data("secret-later"))
        .await
        .unwrap();
    hub.publish("chat", &Event::new().data("chat-0"))
        .await
        .unwrap();
    let mut data = Vec::new();
    while data.len() < 2 {
        let event = tokio::time::timeout(NETWORK, stream.event())
            .await
            .expect("news-1 and chat-0 in time")
            .expect("the stream goes on");
        data.push(String::from(event.data()));
    }
    assert_eq!(data, ["news-1", "chat-0"]);
    let raw = String::from_utf8(stream.raw.clone()).unwrap();
    assert!(!raw.contains("secret"), "{raw}");

    // With the token, the same two topics are served, private events included.
    let bearer = format!("Bearer {TOKEN}");
    let mut client = server.client().await;
    let mut both = client
        .events(
            path,
            &[
                ("authorization", bearer.as_str()),
                ("last-event-id", cursor.as_str()),
            ],
        )
        .await;
    let mut data = Vec::new();
    while data.len() < 5 {
        let event = tokio::time::timeout(NETWORK, both.event())
            .await
            .expect("the replay in time")
            .expect("the stream goes on");
        let (topic, _) = event.last_event_id().split_once(' ').unwrap();
        data.push(format!("{topic} {}", event.data()));
    }
    assert_eq!(
        data,
        [
            "news news-0",
            "news news-1",
            "private/ops secret-before",
            "private/ops secret-live",
            "private/ops secret-later",
        ]
    );
}

macro_rules! layer_topics {
    ($($name:ident => $framework:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn three_topics_resumed_by_the_layer_on_memory() {
                let log = Arc::new(MemoryLog::new());
                super::three_topics_resumed_by_the_layer($framework, log).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn three_topics_resumed_by_the_layer_on_redis() {
                let (_server, log) = redis_log().await;
                super::three_topics_resumed_by_the_layer($framework, log).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn three_topics_resumed_by_the_layer_on_another_server() {
                super::three_topics_resumed_on_another_server($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn denied_topic_is_absent_on_the_layer_path_on_memory() {
                let log = Arc::new(MemoryLog::new());
                super::denied_topic_is_absent_on_the_layer_path($framework, log).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn denied_topic_is_absent_on_the_layer_path_on_redis() {
                let (_server, log) = redis_log().await;
                super::denied_topic_is_absent_on_the_layer_path($framework, log).await;
            }
        }
    )*};
}

layer_topics! {
    axum => Framework::Axum,
    warp => Framework::Warp,
    poem => Framework::Poem,
}
