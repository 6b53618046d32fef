//! Several topics on one stream, against every framework over real loopback sockets: a
//! client of three topics is cut mid-stream while all three are published to and resumes
//! with no loss and no duplicate on any; a denied topic is refused with 403 and none of its
//! events appears, replayed or live.

use std::{collections::BTreeMap, time::Duration};

use http::StatusCode;
use http_body_util::BodyExt;
use tower_sse_conformance::{Framework, NETWORK, TOKEN, TestServer};
use tower_sse_core::Event;

const TOPICS: [&str; 3] = ["chat", "alerts", "dash/board"];
const PER_TOPIC: usize = 60;

/// Per topic (from the id's `<topic> ` label), the data received, in order.
fn by_topic(events: &[(String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (data, id) in events {
        let (topic, _) = id.split_once(' ').expect("a composite id");
        out.entry(topic.to_owned()).or_default().push(data.clone());
    }
    out
}

async fn three_topics_resume_after_a_cut(framework: Framework) {
    let server = TestServer::start(framework).await;
    let path = "/topics?topic=chat&topic=alerts&topic=dash%2Fboard";
    let mut client = server.client().await;
    let mut stream = client.events(path, &[]).await;

    // All three topics are published to, interleaved, during and after the cut.
    let hub = server.hub.clone();
    let publisher = tokio::spawn(async move {
        for i in 0..PER_TOPIC {
            for topic in TOPICS {
                let event = Event::new()
                    .event("n")
                    .unwrap()
                    .data(format!("{topic}:{i}"));
                hub.publish(topic, &event).await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 40 {
        let event = stream.event().await.expect("an event before the cut");
        seen.push((
            String::from(event.data()),
            String::from(event.last_event_id()),
        ));
    }
    // The cut: the connection goes away mid-stream.
    drop(stream);
    drop(client);
    let last = seen.last().unwrap().1.clone();
    assert!(last.len() <= 4096, "{last}");

    let mut client = server.client().await;
    let mut stream = client.events(path, &[("last-event-id", &last)]).await;
    while seen.len() < TOPICS.len() * PER_TOPIC {
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
        let expected: Vec<String> = (0..PER_TOPIC).map(|i| format!("{topic}:{i}")).collect();
        assert_eq!(
            got[topic], expected,
            "{topic}: no loss, no duplicate, in order"
        );
    }
    // Nothing more: no duplicate after the last one.
    let extra = tokio::time::timeout(Duration::from_millis(300), stream.event()).await;
    assert!(extra.is_err(), "unexpected {extra:?}");
}

async fn denied_topic_is_refused_and_never_sent(framework: Framework) {
    let server = TestServer::start(framework).await;
    let hub = &server.hub;
    let secret = hub
        .publish("private/ops", &Event::new().data("secret-before"))
        .await
        .unwrap();
    let public = hub
        .publish("news", &Event::new().data("news-0"))
        .await
        .unwrap();

    let path = "/topics?topic=news&topic=private%2Fops";
    let wrong = format!("Bearer not-{TOKEN}");
    for headers in [
        vec![],
        vec![("last-event-id", secret.id())],
        vec![("authorization", wrong.as_str())],
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
        "/topics?topic=".to_owned(),
        "/topics?topic=a%20b".to_owned(),
        format!("/topics?{many}"),
    ] {
        let mut client = server.client().await;
        let response = client.get(&path, &[]).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }

    // The public topic alone, resumed: replay and live carry no private event.
    let mut client = server.client().await;
    let mut stream = client
        .events("/topics?topic=news", &[("last-event-id", public.id())])
        .await;
    hub.publish("private/ops", &Event::new().data("secret-live"))
        .await
        .unwrap();
    hub.publish("news", &Event::new().data("news-1"))
        .await
        .unwrap();
    assert_eq!(stream.event().await.unwrap().data(), "news-1");

    // With the token, the same two topics are served, private events included.
    let bearer = format!("Bearer {TOKEN}");
    let mut client = server.client().await;
    let mut both = client
        .events(path, &[("authorization", bearer.as_str())])
        .await;
    hub.publish("private/ops", &Event::new().data("secret-2"))
        .await
        .unwrap();
    let event = both.event().await.unwrap();
    assert_eq!(event.data(), "secret-2");
    assert!(
        event.last_event_id().starts_with("private/ops "),
        "{}",
        event.last_event_id()
    );
    let raw = String::from_utf8(stream.raw.clone()).unwrap();
    assert!(!raw.contains("secret"), "{raw}");
}

macro_rules! topics {
    ($($name:ident => $framework:expr),* $(,)?) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn three_topics_resume_after_a_cut() {
                super::three_topics_resume_after_a_cut($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn denied_topic_is_refused_and_never_sent() {
                super::denied_topic_is_refused_and_never_sent($framework).await;
            }
        }
    )*};
}

topics! {
    axum => Framework::Axum,
    warp => Framework::Warp,
    poem => Framework::Poem,
}
