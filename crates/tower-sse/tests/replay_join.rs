//! The layer's replay under the conditions of a reconnect storm: a handler whose stream
//! subscribes late, a failing log, a log that claims more but returns nothing, and many
//! clients resuming from one cursor at once (one read, even when the first client goes away).

mod common;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::decode;
use futures_util::stream;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sse::SseLayer;
use tower_sse_core::{
    Event, EventLog, LoggedEvent, MemoryLog, MemoryLogError, Replay, ReplayOutcome,
};

const TOPIC: &str = "/events";

/// Sends one request with `last_event_id` through `layer` to `handler`; the decoded events.
async fn get<H, F, B>(
    layer: SseLayer,
    last_event_id: &str,
    handler: H,
) -> Vec<(String, String, String)>
where
    H: FnMut(Request<()>) -> F + Clone + Send + 'static,
    F: std::future::Future<Output = Result<Response<B>, Infallible>> + Send + 'static,
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    let service = ServiceBuilder::new()
        .layer(layer)
        .service(service_fn(handler));
    let request = Request::get(TOPIC)
        .header("last-event-id", last_event_id)
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let body = tokio::time::timeout(Duration::from_secs(20), response.into_body().collect())
        .await
        .expect("the stream ends")
        .unwrap()
        .to_bytes();
    decode(&body)
}

fn event_stream<B>(body: B) -> Response<B> {
    common::event_stream(body)
}

fn data(events: &[(String, String, String)]) -> Vec<&str> {
    events.iter().map(|(_, d, _)| d.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_subscribes_200_ms_late_misses_nothing() {
    let log = Arc::new(MemoryLog::new());
    let earlier: Vec<LoggedEvent> = (0..50)
        .map(|i| {
            log.append_sync(TOPIC, &Event::new().data(i.to_string()))
                .unwrap()
        })
        .collect();
    const TOTAL: usize = 400;
    let (live, _) = tokio::sync::broadcast::channel::<Bytes>(4096);
    // The publisher: append, then fan out, one event a millisecond.
    let publisher = {
        let log = Arc::clone(&log);
        let live = live.clone();
        tokio::spawn(async move {
            for i in 50..TOTAL {
                let logged = log
                    .append(TOPIC, &Event::new().data(i.to_string()))
                    .await
                    .unwrap();
                let _ = live.send(logged.frame().clone());
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let last = (TOTAL - 1).to_string();
    let handler = move |_request: Request<()>| {
        let live = live.clone();
        let last = last.clone();
        async move {
            // The stream subscribes 200 ms after the handler returned.
            let events = stream::unfold(
                (None::<tokio::sync::broadcast::Receiver<Bytes>>, false),
                move |(receiver, done)| {
                    let live = live.clone();
                    let last = last.clone();
                    async move {
                        if done {
                            return None;
                        }
                        let mut receiver = match receiver {
                            Some(receiver) => receiver,
                            None => {
                                tokio::time::sleep(Duration::from_millis(200)).await;
                                live.subscribe()
                            }
                        };
                        let frame = receiver.recv().await.ok()?;
                        let done = frame.ends_with(format!("data: {last}\n\n").as_bytes());
                        Some((
                            Ok::<_, Infallible>(http_body::Frame::data(frame)),
                            (Some(receiver), done),
                        ))
                    }
                },
            );
            Ok::<_, Infallible>(event_stream(StreamBody::new(events)))
        }
    };
    let got = get(
        SseLayer::new().replay(Arc::clone(&log)),
        earlier[9].id(),
        handler,
    )
    .await;
    publisher.await.unwrap();
    let expected: Vec<String> = (10..TOTAL).map(|i| i.to_string()).collect();
    assert_eq!(data(&got), expected, "every event once, in order");
    assert!(got.iter().all(|(event_type, _, _)| event_type == "message"));
}

/// A log whose reads fail.
struct Failing(MemoryLog);

impl EventLog for Failing {
    type Error = std::io::Error;

    async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, Self::Error> {
        Ok(self.0.append_sync(topic, event).unwrap())
    }

    async fn read_after(&self, _: &str, _: Option<&str>, _: usize) -> Result<Replay, Self::Error> {
        Err(std::io::Error::other("store down"))
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        self.0.compare_ids(a, b)
    }
}

#[tokio::test]
async fn a_failing_log_is_a_log_error_then_live_without_duplicates() {
    let inner = MemoryLog::new();
    let events: Vec<LoggedEvent> = (1..=4)
        .map(|i| {
            inner
                .append_sync(TOPIC, &Event::new().data(i.to_string()))
                .unwrap()
        })
        .collect();
    let live: Bytes = events
        .iter()
        .flat_map(|e| e.frame().to_vec())
        .collect::<Vec<_>>()
        .into();
    let got = get(
        SseLayer::new().replay(Failing(inner)),
        events[1].id(),
        move |_| {
            let live = live.clone();
            async move { Ok(event_stream(Full::new(live))) }
        },
    )
    .await;
    assert_eq!(got[0].0, "sse-gap");
    assert_eq!(got[0].1, r#"{"reason":"log-error","resume_from":null}"#);
    // What the client had (1, 2) is dropped; the rest passes.
    assert_eq!(data(&got[1..]), ["3", "4"]);
}

/// A log that claims more events but returns none.
struct Claims(MemoryLog, AtomicUsize);

impl EventLog for Claims {
    type Error = MemoryLogError;

    async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, Self::Error> {
        self.0.append(topic, event).await
    }

    async fn read_after(&self, _: &str, _: Option<&str>, _: usize) -> Result<Replay, Self::Error> {
        self.1.fetch_add(1, Ordering::Relaxed);
        Ok(Replay::new(ReplayOutcome::Resumed, Vec::new(), true))
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        self.0.compare_ids(a, b)
    }
}

#[tokio::test]
async fn has_more_without_events_does_not_spin() {
    let log = Arc::new(Claims(MemoryLog::new(), AtomicUsize::new(0)));
    let first = log.append(TOPIC, &Event::new().data("1")).await.unwrap();
    let got = get(
        SseLayer::new().replay(Arc::clone(&log)),
        first.id(),
        |_| async {
            Ok(event_stream(Full::new(Bytes::from_static(
                b"data: live\n\n",
            ))))
        },
    )
    .await;
    assert_eq!(data(&got), ["live"]);
    assert_eq!(log.1.load(Ordering::Relaxed), 1);
}

/// A log whose reads take 300 ms and are counted.
struct Slow(MemoryLog, AtomicUsize);

impl EventLog for Slow {
    type Error = MemoryLogError;

    async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, Self::Error> {
        self.0.append(topic, event).await
    }

    async fn read_after(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Replay, Self::Error> {
        self.1.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(self.0.read_after_sync(topic, cursor, limit))
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        self.0.compare_ids(a, b)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resuming_from_one_cursor_share_one_read_even_if_the_first_leaves() {
    let log = Arc::new(Slow(MemoryLog::new(), AtomicUsize::new(0)));
    let mut events = Vec::new();
    for i in 0..600 {
        events.push(
            log.append(TOPIC, &Event::new().data(i.to_string()))
                .await
                .unwrap(),
        );
    }
    let layer = SseLayer::new().replay(Arc::clone(&log));
    let cursor = events[99].id().to_owned();
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let layer = layer.clone();
            let cursor = cursor.clone();
            tokio::spawn(async move {
                get(layer, &cursor, |_| async {
                    Ok(event_stream(Full::new(Bytes::new())))
                })
                .await
            })
        })
        .collect();
    // The first client goes away while the first read is in flight.
    tokio::time::sleep(Duration::from_millis(100)).await;
    clients[0].abort();
    let expected: Vec<String> = (100..600).map(|i| i.to_string()).collect();
    for client in clients.into_iter().skip(1) {
        let got = client.await.unwrap();
        assert_eq!(data(&got), expected);
    }
    // 500 events in pages of 256: two reads, each shared by every client.
    assert_eq!(log.1.load(Ordering::Relaxed), 2);
}

#[tokio::test]
async fn replay_frames_are_bounded_and_an_unknown_cursor_continues_from_the_head() {
    let log = Arc::new(MemoryLog::new());
    let big = "x".repeat(10 * 1024);
    let events: Vec<LoggedEvent> = (0..40)
        .map(|_| {
            log.append_sync(TOPIC, &Event::new().data(big.as_str()))
                .unwrap()
        })
        .collect();
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().replay(Arc::clone(&log)))
        .service(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(event_stream(Full::new(Bytes::new())))
        }));
    let request = Request::get(TOPIC)
        .header("last-event-id", events[0].id())
        .body(())
        .unwrap();
    let mut body = service.oneshot(request).await.unwrap().into_body();
    let mut all = Vec::new();
    while let Some(frame) = body.frame().await {
        let data = frame.unwrap().into_data().unwrap();
        // 64 KiB, overshooting by at most one event.
        assert!(
            data.len() <= 64 * 1024 + events[0].frame().len(),
            "{}",
            data.len()
        );
        all.extend_from_slice(&data);
    }
    assert_eq!(decode(&all).len(), 39);

    let got = get(
        SseLayer::new().replay(Arc::clone(&log)),
        "bogus",
        |_| async { Ok(event_stream(Full::new(Bytes::new()))) },
    )
    .await;
    let head = events[39].id();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1,
        format!(r#"{{"reason":"unknown-cursor","resume_from":"{head}"}}"#)
    );
    assert_eq!(got[0].2, head);
}
