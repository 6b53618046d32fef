//! The layer's gate: an invalid stream key is a 400 and never reaches the log; a stream the
//! authorization hook denies is a 403 with none of its events, replayed or live.

mod common;

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use common::{decode, event_stream};
use http::{Request, StatusCode, request::Parts};
use http_body_util::{BodyExt, Full};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sse::{Authorizer, SseLayer};
use tower_sse_core::{Event, MemoryLog, TopicName};

/// Status, content type and body of `uri` through `layer`, to a handler whose live body is one
/// event, `live`.
async fn get(layer: SseLayer, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String, String) {
    let handler = service_fn(|_request: Request<()>| async {
        let live = Bytes::from_static(b"data: live\n\n");
        Ok::<_, Infallible>(event_stream(Full::new(live)))
    });
    let service = ServiceBuilder::new().layer(layer).service(handler);
    let mut request = Request::get(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn an_invalid_stream_key_is_a_400_and_never_read() {
    let log = Arc::new(MemoryLog::new());
    let first = log.append_sync("ok", &Event::new().data("1")).unwrap();
    let reads = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&reads);
    let layer = SseLayer::new()
        .replay(Arc::clone(&log))
        .stream_key(move |parts: &Parts| {
            counted.fetch_add(1, Ordering::Relaxed);
            parts
                .uri
                .query()
                .unwrap_or("")
                .trim_start_matches("topic=")
                .to_owned()
        });
    for hostile in ["a%20b", "x%0D%0ASET", "", &"a".repeat(129)] {
        let uri = format!("/events?topic={hostile}");
        let (status, content_type, body) =
            get(layer.clone(), &uri, &[("last-event-id", first.id())]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{hostile:?}");
        assert!(content_type.starts_with("text/plain"));
        assert!(
            body.starts_with("invalid stream topic: topic name"),
            "{body}"
        );
        assert!(
            !body.contains("live"),
            "no event of the refused stream: {body}"
        );
    }
    assert_eq!(reads.load(Ordering::Relaxed), 4);
    assert_eq!(log.topic_count(), 1, "no topic created by a read");

    // A valid key replays as before.
    let (status, _, body) = get(layer, "/events?topic=ok", &[("last-event-id", first.id())]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.ends_with("data: live\n\n"), "{body}");
}

fn private_needs_token() -> Authorizer {
    Authorizer::new(|request: &Parts, topic: &TopicName| {
        let allowed = !topic.starts_with("/private/")
            || request
                .headers
                .get("authorization")
                .is_some_and(|v| v == "Bearer t0ken");
        async move {
            tokio::task::yield_now().await;
            allowed
        }
    })
}

#[tokio::test]
async fn a_denied_stream_is_a_403_with_no_replayed_or_live_event() {
    let log = Arc::new(MemoryLog::new());
    let first = log
        .append_sync("/private/ops", &Event::new().data("1"))
        .unwrap();
    log.append_sync("/private/ops", &Event::new().data("secret"))
        .unwrap();
    let layer = SseLayer::new()
        .replay(Arc::clone(&log))
        .authorize(private_needs_token());

    for headers in [
        vec![("last-event-id", first.id())],
        vec![],
        vec![("authorization", "Bearer wrong")],
    ] {
        let (status, _, body) = get(layer.clone(), "/private/ops", &headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(!body.contains("secret") && !body.contains("live"), "{body}");
    }
    let (status, _, body) = get(
        layer.clone(),
        "/private/ops",
        &[
            ("last-event-id", first.id()),
            ("authorization", "Bearer t0ken"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let data: Vec<String> = decode(body.as_bytes()).into_iter().map(|e| e.1).collect();
    assert_eq!(data, ["secret", "live"]);

    // Public streams, and responses that are not event streams, are not held up.
    let (status, _, _) = get(layer, "/public", &[]).await;
    assert_eq!(status, StatusCode::OK);
}

/// The next event of a live body: (event type, data, id).
async fn next_event<B>(
    body: &mut B,
    decoder: &mut tower_sse_core::Decoder,
) -> (String, String, String)
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    loop {
        if let Some(tower_sse_core::Decoded::Event(e)) = decoder.decode().unwrap() {
            return (
                e.event_type().into(),
                e.data().into(),
                e.last_event_id().into(),
            );
        }
        let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
            .await
            .expect("a frame in time")
            .expect("the body goes on")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            decoder.feed(&data);
        }
    }
}

#[tokio::test]
async fn a_layer_that_replays_leaves_a_multi_topic_cursor_to_the_hub() {
    let log = Arc::new(MemoryLog::new());
    let hub = tower_sse::Hub::with_log(Arc::clone(&log));
    let handler = {
        let hub = hub.clone();
        service_fn(move |request: Request<()>| {
            let hub = hub.clone();
            async move {
                let cursor = request
                    .extensions()
                    .get::<tower_sse::ClientCursor>()
                    .and_then(|c| c.log_cursor().map(str::to_owned));
                let sub = hub
                    .subscribe_topics(["a", "b"], cursor.as_deref())
                    .await
                    .unwrap();
                Ok::<_, Infallible>(sub.into_response())
            }
        })
    };
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().replay(Arc::clone(&log)))
        .service(handler);

    let response = service
        .clone()
        .oneshot(Request::get("/events").body(()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    let mut decoder = tower_sse_core::Decoder::new();
    hub.publish("a", &Event::new().data("a1")).await.unwrap();
    let (_, data, last) = next_event(&mut body, &mut decoder).await;
    assert_eq!(data, "a1");
    drop(body);
    hub.publish("b", &Event::new().data("b1")).await.unwrap();

    let request = Request::get("/events")
        .header("last-event-id", last.as_str())
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let mut body = response.into_body();
    let mut decoder = tower_sse_core::Decoder::new();
    let (event_type, data, id) = next_event(&mut body, &mut decoder).await;
    assert_eq!(
        (event_type.as_str(), data.as_str()),
        ("message", "b1"),
        "no sse-gap first"
    );
    assert!(id.starts_with("b "), "{id}");
}
