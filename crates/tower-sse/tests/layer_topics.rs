//! The layer resumes streams of several topics ([`SseLayer::stream_topics`]): a composite
//! `Last-Event-ID` replays every topic after its position, then the handler's live hub stream
//! (even one that subscribes 200 ms late) with no gap and no duplicate on any topic, every id
//! a cursor the client can resume from; invalid sets are a 400, a denied topic a 403.

mod common;

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use common::decode;
use futures_util::{StreamExt, stream};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, StreamBody};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sse::{Authorizer, GapPolicy, Hub, SSE_GAP, SSE_REPLAY_FROM, SseLayer, query_topics};
use tower_sse_core::{Event, EventLog, MemoryLog, TopicName, TopicSet};

const TOPICS: [&str; 3] = ["chat", "alerts", "dash/board"];
const PATH: &str = "/events?topic=chat&topic=alerts&topic=dash%2Fboard";

fn set() -> TopicSet {
    TopicSet::new(TOPICS.map(|t| TopicName::new(t).unwrap()), 32).unwrap()
}

fn layer(log: &Arc<MemoryLog>) -> SseLayer {
    SseLayer::new()
        .replay(Arc::clone(log))
        .stream_topics(|parts| query_topics(parts.uri.query(), "topic", 64))
}

type BoxBody = http_body_util::combinators::UnsyncBoxBody<Bytes, Infallible>;

/// One request through `layer` to `handler`; the response.
async fn get<H, F>(
    layer: SseLayer,
    path: &str,
    headers: &[(&str, &str)],
    handler: H,
) -> Response<tower_sse::ResponseBody<BoxBody>>
where
    H: FnMut(Request<()>) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Result<Response<BoxBody>, Infallible>> + Send + 'static,
{
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(handler));
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    service.oneshot(request.body(()).unwrap()).await.unwrap()
}

async fn body_of(response: Response<tower_sse::ResponseBody<BoxBody>>) -> Vec<u8> {
    let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the stream ends")
        .unwrap()
        .to_bytes();
    body.to_vec()
}

fn event_stream(body: BoxBody) -> Response<BoxBody> {
    common::event_stream(body)
}

/// A handler whose live body ends at once: a response is exactly the layer's replay.
fn no_live() -> impl FnMut(Request<()>) -> std::future::Ready<Result<Response<BoxBody>, Infallible>>
+ Clone
+ Send
+ 'static {
    |_| std::future::ready(Ok(event_stream(Empty::new().boxed_unsync())))
}

/// Per topic (from the id's label), the data received, in order.
fn by_topic(events: &[(String, String, String)]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, data, id) in events {
        let (topic, _) = id.split_once(' ').expect("a composite id");
        out.entry(topic.to_owned()).or_default().push(data.clone());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_topics_resume_through_the_layer_with_a_late_subscriber() {
    const BEFORE: usize = 20;
    const TOTAL: usize = 120;
    let log = Arc::new(MemoryLog::new());
    let hub = Hub::with_log(Arc::clone(&log));
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for i in 0..BEFORE {
        for topic in TOPICS {
            let logged = hub
                .publish(topic, &Event::new().data(format!("{topic}:{i}")))
                .await
                .unwrap();
            ids.entry(topic).or_default().push(logged.id().to_owned());
        }
    }
    // The client had alerts up to 4, chat up to 14 and nothing of dash/board (its stream
    // started before the topic's first event).
    let set = set();
    let names: Vec<&str> = set.names().iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["alerts", "chat", "dash/board"]);
    let cursor = set.encode_cursor(
        1,
        &[
            Some(ids["alerts"][4].as_str().into()),
            Some(ids["chat"][14].as_str().into()),
            None,
        ],
    );
    // All three topics are published to while the client reconnects.
    let publisher = {
        let hub = hub.clone();
        tokio::spawn(async move {
            for i in BEFORE..TOTAL {
                for topic in TOPICS {
                    let event = Event::new().data(format!("{topic}:{i}"));
                    hub.publish(topic, &event).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let handler = {
        let hub = hub.clone();
        move |_request: Request<()>| {
            let hub = hub.clone();
            async move {
                // The stream subscribes 200 ms after the handler returned, with no cursor,
                // and ends after the last event of every topic.
                let live = stream::once(async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    hub.subscribe_topics(TOPICS, None).await.unwrap()
                })
                .flatten();
                let finals: Vec<Vec<u8>> = TOPICS
                    .iter()
                    .map(|t| format!("data: {t}:{}\n", TOTAL - 1).into_bytes())
                    .collect();
                let live =
                    stream::unfold((Box::pin(live), TOPICS.len()), move |(mut live, left)| {
                        let finals = finals.clone();
                        async move {
                            if left == 0 {
                                return None;
                            }
                            let frame = live.next().await?.unwrap();
                            let last = finals
                                .iter()
                                .any(|f| frame.windows(f.len()).any(|w| w == &f[..]));
                            let left = left - usize::from(last);
                            Some((
                                Ok::<_, Infallible>(http_body::Frame::data(frame)),
                                (live, left),
                            ))
                        }
                    });
                Ok::<_, Infallible>(event_stream(BodyExt::boxed_unsync(StreamBody::new(live))))
            }
        }
    };
    let response = get(layer(&log), PATH, &[("last-event-id", &cursor)], handler).await;
    assert_eq!(response.status(), StatusCode::OK);
    let got = decode(&body_of(response).await);
    publisher.await.unwrap();

    assert!(got.iter().all(|(kind, _, _)| kind == "message"), "{got:?}");
    let topics = by_topic(&got);
    let expect = |topic: &str, from: usize| -> Vec<String> {
        (from..TOTAL).map(|i| format!("{topic}:{i}")).collect()
    };
    assert_eq!(topics["alerts"], expect("alerts", 5), "alerts");
    assert_eq!(topics["chat"], expect("chat", 15), "chat");
    assert_eq!(topics["dash/board"], expect("dash/board", 0), "dash/board");

    // Every id is a cursor of the set whose own topic stands at that event.
    for (_, data, id) in &got {
        let positions = set.parse_cursor(id).expect("a cursor of the set");
        let (label, _) = id.split_once(' ').unwrap();
        let at = names.iter().position(|n| n == &label).unwrap();
        let (topic, n) = data.rsplit_once(':').unwrap();
        assert_eq!(topic, label);
        let n: usize = n.parse().unwrap();
        let logged = log
            .read_after(topic, positions[at].as_deref(), 1)
            .await
            .unwrap();
        match logged.events.first() {
            Some(next) => {
                let want = format!("data: {topic}:{}\n\n", n + 1);
                assert!(next.frame().ends_with(want.as_bytes()), "{id}");
            }
            None => assert_eq!(n, TOTAL - 1),
        }
    }

    // Resuming from any of them gives the rest of every topic, once.
    for cut in [0, 7, got.len() / 2, got.len() - 1] {
        let id = &got[cut].2;
        let response = get(layer(&log), PATH, &[("last-event-id", id)], no_live()).await;
        let rest = decode(&body_of(response).await);
        let mut expected: BTreeMap<String, Vec<String>> = by_topic(&got[cut + 1..]);
        for topic in TOPICS {
            expected.entry(topic.to_owned()).or_default();
        }
        let mut rest = by_topic(&rest);
        for topic in TOPICS {
            rest.entry(topic.to_owned()).or_default();
        }
        assert_eq!(rest, expected, "resumed after event {cut}");
    }
}

#[tokio::test]
async fn an_unknown_cursor_is_a_gap_per_topic_then_live() {
    let log = Arc::new(MemoryLog::new());
    let hub = Hub::with_log(Arc::clone(&log));
    for topic in ["chat", "alerts"] {
        hub.publish(topic, &Event::new().data(format!("{topic}:old")))
            .await
            .unwrap();
    }
    let path = "/events?topic=chat&topic=alerts&topic=dash%2Fboard";
    for cursor in ["garbage", "chat m1.0000000000000000.1,2,3"] {
        let response = get(layer(&log), path, &[("last-event-id", cursor)], no_live()).await;
        let got = decode(&body_of(response).await);
        // One signal per topic, each at its head (none for the empty one), nothing old.
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got.iter().all(|(kind, _, _)| kind == "sse-gap"), "{got:?}");
        assert!(got[0].1.contains("unknown-cursor"), "{got:?}");
        let last = &got[2].2;
        let positions = set().parse_cursor(last).expect("a cursor of the set");
        let heads = [
            log.head("alerts").await.unwrap(),
            log.head("chat").await.unwrap(),
            None,
        ];
        assert_eq!(positions, heads);
    }
}

#[tokio::test]
async fn header_policy_names_the_composite_position() {
    let log = Arc::new(
        MemoryLog::builder()
            .retention(tower_sse_core::Retention::unbounded().max_events(2))
            .build(),
    );
    let hub = Hub::with_log(Arc::clone(&log));
    let mut first = Vec::new();
    for i in 0..5 {
        for topic in ["chat", "alerts"] {
            let logged = hub
                .publish(topic, &Event::new().data(format!("{topic}:{i}")))
                .await
                .unwrap();
            if i == 0 {
                first.push(logged.id().to_owned());
            }
        }
    }
    let set = TopicSet::new(["chat", "alerts"].map(|t| TopicName::new(t).unwrap()), 32).unwrap();
    // alerts at its 0 (dropped since: a gap), chat at its 0 too.
    let cursor = set.encode_cursor(
        0,
        &[
            Some(first[1].as_str().into()),
            Some(first[0].as_str().into()),
        ],
    );
    let response = get(
        layer(&log).gap_policy(GapPolicy::Header),
        "/events?topic=chat&topic=alerts",
        &[("last-event-id", &cursor)],
        no_live(),
    )
    .await;
    assert_eq!(response.headers()[SSE_GAP], "gap");
    let from = response.headers()[SSE_REPLAY_FROM]
        .to_str()
        .unwrap()
        .to_owned();
    let positions = set.parse_cursor(&from).expect("a cursor of the set");
    assert_eq!(
        positions,
        vec![
            log.head("alerts").await.unwrap(),
            log.head("chat").await.unwrap()
        ]
    );
    assert!(from.starts_with("alerts "), "{from}");
    // Nothing before the heads is sent after the headers.
    let got = decode(&body_of(response).await);
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn invalid_sets_are_refused_and_denied_topics_never_sent() {
    let log = Arc::new(MemoryLog::new());
    let hub = Hub::with_log(Arc::clone(&log));
    let secret = hub
        .publish("private/ops", &Event::new().data("secret-0"))
        .await
        .unwrap();
    let news = hub
        .publish("news", &Event::new().data("news-0"))
        .await
        .unwrap();
    let authorizer = Authorizer::new(|head: &http::request::Parts, topic: &TopicName| {
        let allowed = !topic.starts_with("private/")
            || head
                .headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer ok");
        async move { allowed }
    });
    let guarded = || layer(&log).authorize(authorizer.clone());
    let live = {
        let hub = hub.clone();
        move |request: Request<()>| {
            let hub = hub.clone();
            async move {
                let topics = query_topics(request.uri().query(), "topic", 64);
                // The layer refuses what the hub would refuse too: the handler's stream of a
                // refused request is dropped unread.
                let Ok(sub) = hub
                    .subscribe_topics(topics.iter().map(String::as_str), None)
                    .await
                else {
                    return Ok(event_stream(Empty::new().boxed_unsync()));
                };
                let body = StreamBody::new(
                    sub.map(|frame| Ok::<_, Infallible>(http_body::Frame::data(frame.unwrap()))),
                );
                Ok::<_, Infallible>(event_stream(BodyExt::boxed_unsync(body)))
            }
        }
    };
    let set = TopicSet::new(
        ["news", "private/ops"].map(|t| TopicName::new(t).unwrap()),
        32,
    )
    .unwrap();
    let cursor = set.encode_cursor(0, &[Some(news.id().into()), Some(secret.id().into())]);
    for headers in [
        vec![("last-event-id", cursor.as_str())],
        vec![],
        vec![
            ("authorization", "Bearer nope"),
            ("last-event-id", cursor.as_str()),
        ],
    ] {
        let path = "/e?topic=news&topic=private%2Fops";
        let response = get(guarded(), path, &headers, live.clone()).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{headers:?}");
        let body = String::from_utf8(body_of(response).await).unwrap();
        assert!(
            body.contains("denied") && !body.contains("secret"),
            "{body}"
        );
    }
    let many: String = (0..33).map(|i| format!("topic=t{i}&")).collect();
    for path in [
        "/e?topic=".to_owned(),
        "/e?topic=a%20b".to_owned(),
        "/e".to_owned(),
        format!("/e?{many}"),
    ] {
        let response = get(guarded(), &path, &[("last-event-id", "1")], live.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
        let body = String::from_utf8(body_of(response).await).unwrap();
        assert!(body.starts_with("invalid stream topic"), "{body}");
    }
    // Names beyond what query_topics keeps are not seen by the layer; a custom list is.
    let response = get(
        layer(&log).stream_topics(move |_| vec!["a".to_owned(); 129]),
        "/e",
        &[("last-event-id", "1")],
        live.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Public topics for the token-less client: replay and live, no private event.
    let public = TopicSet::new(["news", "chat"].map(|t| TopicName::new(t).unwrap()), 32).unwrap();
    let from = public.encode_cursor(1, &[None, Some(news.id().into())]);
    let response = get(
        guarded(),
        "/e?topic=news&topic=chat",
        &[("last-event-id", &from)],
        live.clone(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    hub.publish("private/ops", &Event::new().data("secret-live"))
        .await
        .unwrap();
    hub.publish("news", &Event::new().data("news-1"))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("news-1") {
        let frame = tokio::time::timeout(Duration::from_secs(3), body.frame())
            .await
            .unwrap_or_else(|_| panic!("news-1 in time: {}", String::from_utf8_lossy(&seen)))
            .unwrap()
            .unwrap();
        seen.extend_from_slice(&frame.into_data().unwrap_or_default());
    }
    let seen = String::from_utf8_lossy(&seen);
    assert!(!seen.contains("secret"), "{seen}");
    assert_eq!(seen.matches("news-1").count(), 1, "{seen}");

    // With the token, the private topic resumes after its cursor.
    let response = get(
        guarded(),
        "/e?topic=news&topic=private%2Fops",
        &[("authorization", "Bearer ok"), ("last-event-id", &cursor)],
        no_live(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let got = decode(&body_of(response).await);
    let data: Vec<&str> = got.iter().map(|(_, d, _)| d.as_str()).collect();
    assert_eq!(data, ["news-1", "secret-live"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_topic_catches_up_with_another_topics_live_event() {
    let log = Arc::new(MemoryLog::new());
    let hub = Hub::with_log(Arc::clone(&log));
    let a0 = hub.publish("a", &Event::new().data("a0")).await.unwrap();
    let b0 = hub.publish("b", &Event::new().data("b0")).await.unwrap();
    let set = TopicSet::new(["a", "b"].map(|t| TopicName::new(t).unwrap()), 32).unwrap();
    let cursor = set.encode_cursor(0, &[Some(a0.id().into()), Some(b0.id().into())]);
    // The handler's source joins the hub only when told, and ends after `b1`.
    let (go, joined) = tokio::sync::oneshot::channel::<()>();
    let joined = Arc::new(std::sync::Mutex::new(Some(joined)));
    let handler = {
        let hub = hub.clone();
        move |_request: Request<()>| {
            let hub = hub.clone();
            let joined = joined.lock().unwrap().take().expect("one request");
            async move {
                let live = stream::once(async move {
                    joined.await.unwrap();
                    hub.subscribe_topics(["a", "b"], None).await.unwrap()
                })
                .flatten()
                .map(|frame| frame.unwrap());
                let live = stream::unfold((Box::pin(live), false), |(mut live, done)| async move {
                    if done {
                        return None;
                    }
                    let frame = live.next().await?;
                    let done = frame.ends_with(b"data: b1\n\n");
                    Some((
                        Ok::<_, Infallible>(http_body::Frame::data(frame)),
                        (live, done),
                    ))
                });
                Ok::<_, Infallible>(event_stream(BodyExt::boxed_unsync(StreamBody::new(live))))
            }
        }
    };
    let response = get(
        layer(&log),
        "/e?topic=a&topic=b",
        &[("last-event-id", &cursor)],
        handler,
    )
    .await;
    let reader = tokio::spawn(body_of(response));
    // The replay (nothing after the cursor) is read as soon as the body is polled; `a1` is
    // published after it and before the source joins, which then starts after `a1`.
    tokio::time::sleep(Duration::from_millis(100)).await;
    hub.publish("a", &Event::new().data("a1")).await.unwrap();
    go.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    hub.publish("b", &Event::new().data("b1")).await.unwrap();
    let got = decode(&reader.await.unwrap());
    let data: Vec<&str> = got.iter().map(|(_, d, _)| d.as_str()).collect();
    // `a1` is not left waiting for the next event of `a`: it goes out before `b1`.
    assert_eq!(data, ["a1", "b1"]);
    let positions = set.parse_cursor(&got[1].2).unwrap();
    assert_eq!(
        positions,
        [log.head("a").await.unwrap(), log.head("b").await.unwrap()]
    );
}

#[tokio::test]
async fn live_events_in_any_line_ending_and_the_handlers_own_events() {
    let log = Arc::new(MemoryLog::new());
    let hub = Hub::with_log(Arc::clone(&log));
    let a0 = hub.publish("a", &Event::new().data("a0")).await.unwrap();
    let a1 = hub.publish("a", &Event::new().data("a1")).await.unwrap();
    let b0 = hub.publish("b", &Event::new().data("b0")).await.unwrap();
    let set = TopicSet::new(["a", "b"].map(|t| TopicName::new(t).unwrap()), 32).unwrap();
    let cursor = set.encode_cursor(0, &[Some(a0.id().into()), Some(b0.id().into())]);
    // An id of the log after every event it holds: a live event the replay cannot have.
    let (epoch, seq) = a1.id().rsplit_once('-').unwrap();
    let a9 = format!("{epoch}-{}", seq.parse::<u64>().unwrap() + 100);
    let live_id = |id: &str| set.encode_cursor(0, &[Some(id.into()), Some(b0.id().into())]);
    let frames = [
        // Replayed already: dropped, CRLF and all.
        format!("id: {}\r\ndata: a1\r\n\r\n", live_id(a1.id())),
        ":note\n\n".to_owned(),
        // The handler's own event: passed as it is.
        "id: own-1\ndata: mine\n\n".to_owned(),
        // New: its id becomes the stream's cursor, line ends kept.
        format!("data: a9\rid: {}\r\r", live_id(&a9)),
    ];
    let handler = move |_request: Request<()>| {
        let frames = frames.clone();
        async move {
            let body = StreamBody::new(stream::iter(
                frames.map(|f| Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(f)))),
            ));
            Ok::<_, Infallible>(event_stream(BodyExt::boxed_unsync(body)))
        }
    };
    let response = get(
        layer(&log).heartbeat_comment("hb"),
        "/e?topic=a&topic=b",
        &[("last-event-id", &cursor)],
        handler,
    )
    .await;
    let body = body_of(response).await;
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.contains(":note\n\n"), "{text}");
    assert!(text.contains("id: own-1\ndata: mine\n\n"), "{text}");
    let got = decode(&body);
    let data: Vec<(&str, &str)> = got
        .iter()
        .map(|(_, d, id)| (d.as_str(), id.as_str()))
        .collect();
    let own = "own-1";
    let after_a1 = set.encode_cursor(0, &[Some(a1.id().into()), Some(b0.id().into())]);
    let after_a9 = set.encode_cursor(0, &[Some(a9.as_str().into()), Some(b0.id().into())]);
    assert_eq!(
        data,
        [
            ("a1", after_a1.as_str()),
            ("mine", own),
            ("a9", after_a9.as_str())
        ]
    );
    assert!(
        text.contains(&format!("data: a9\rid: {after_a9}\r\r")),
        "{text:?}"
    );
}

#[tokio::test]
async fn the_topic_limit_is_configurable() {
    let log = Arc::new(MemoryLog::new());
    let response = get(
        layer(&log).max_topics(2),
        PATH,
        &[("last-event-id", "x")],
        no_live(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = String::from_utf8(body_of(response).await).unwrap();
    assert_eq!(body, "invalid stream topics: more than 2 distinct topics\n");
    let response = get(
        layer(&log).max_topics(3),
        PATH,
        &[("last-event-id", "x")],
        no_live(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}
