//! Headers, pass-through, coalescing, trailers and errors, through `service_fn` handlers.

mod common;

use std::io;

use bytes::Bytes;
use common::{channel, decode, event_stream, record, through};
use http::{
    HeaderMap, HeaderValue, Response, StatusCode,
    header::{CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE},
};
use http_body::Body;
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use tower_sse::SseLayer;

#[tokio::test]
async fn event_streams_get_headers_where_absent_and_lose_content_length() {
    let response = Response::builder()
        .header(CONTENT_TYPE, "Text/Event-Stream; charset=utf-8")
        .header(CONTENT_LENGTH, "9")
        .body(Full::new(Bytes::from_static(b"data: a\n\n")))
        .unwrap();
    let response = through(SseLayer::new(), response).await;
    let headers = response.headers();
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(!headers.contains_key(CONTENT_LENGTH));
    assert!(!headers.contains_key(CONNECTION));
    assert!(!headers.contains_key("keep-alive"));
    assert!(response.body().is_event_stream());
    // The length is no longer known, so servers do not announce one.
    assert_eq!(response.body().size_hint().exact(), None);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&bytes[..], b":\n\ndata: a\n\n");
}

#[tokio::test]
async fn handler_headers_win_and_headers_can_be_turned_off() {
    let response = Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .header(CACHE_CONTROL, "no-store")
        .header("x-accel-buffering", "yes")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = through(SseLayer::new(), response).await;
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()["x-accel-buffering"], "yes");

    let layer = SseLayer::new().cache_control(false).accel_buffering(false);
    let response = through(layer, event_stream(Full::new(Bytes::new()))).await;
    assert_eq!(response.headers().len(), 1, "{:?}", response.headers());
}

#[tokio::test]
async fn other_responses_pass_through_unchanged() {
    let mut trailers = HeaderMap::new();
    trailers.insert("x-checksum", HeaderValue::from_static("abc"));
    for content_type in [None, Some("text/plain"), Some("application/json")] {
        let (script, body) = channel();
        let mut builder = Response::builder()
            .status(StatusCode::CREATED)
            .header(CONTENT_LENGTH, "12")
            .header("x-custom", "1");
        if let Some(content_type) = content_type {
            builder = builder.header(CONTENT_TYPE, content_type);
        }
        let original = builder.body(()).unwrap();
        let response = through(SseLayer::new(), original.map(|()| body)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let expected = Response::builder()
            .status(StatusCode::CREATED)
            .header(CONTENT_LENGTH, "12")
            .header("x-custom", "1");
        let expected = match content_type {
            Some(content_type) => expected.header(CONTENT_TYPE, content_type),
            None => expected,
        };
        assert_eq!(response.headers(), expected.body(()).unwrap().headers());
        assert!(!response.body().is_event_stream());

        // Same frames, same chunking, same trailers: nothing joined, nothing added.
        script.data("data: a\n\n");
        script.data("data: b\n\n");
        script.trailers(trailers.clone());
        drop(script);
        let timeline = record(response.into_body(), Instant::now()).await;
        let frames: Vec<&[u8]> = timeline.frames.iter().map(|(_, b)| &b[..]).collect();
        assert_eq!(frames, [&b"data: a\n\n"[..], b"data: b\n\n"]);
        assert_eq!(timeline.trailers.as_ref(), Some(&trailers));
    }
}

#[tokio::test]
async fn pass_through_forwards_size_hint_and_end_of_stream() {
    let response = Response::new(Full::new(Bytes::from_static(b"hello")));
    let response = through(SseLayer::new(), response).await;
    assert_eq!(response.body().size_hint().exact(), Some(5));
    assert!(!response.body().is_end_stream());
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "hello");
    assert!(body.is_end_stream());
}

#[tokio::test(start_paused = true)]
async fn ready_frames_are_joined_into_one() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    let mut body = response.into_body();
    let priming = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(priming, ":\n\n");

    for _ in 0..3 {
        script.data("data: x\n\n");
    }
    let joined = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(joined, "data: x\n\ndata: x\n\ndata: x\n\n");

    // A single ready frame goes out on its own, at once.
    script.data("id: 1\ndata: y\n\n");
    let single = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(single, "id: 1\ndata: y\n\n");
}

#[tokio::test(start_paused = true)]
async fn joined_frames_respect_the_limit() {
    let (script, body) = channel();
    let layer = SseLayer::new().coalesce_limit(20);
    let response = through(layer, event_stream(body)).await;
    for _ in 0..5 {
        script.data("data: 12\n\n"); // 10 bytes
    }
    drop(script);
    let timeline = record(response.into_body(), Instant::now()).await;
    let sizes: Vec<usize> = timeline.frames.iter().map(|(_, b)| b.len()).collect();
    assert_eq!(sizes, [3, 20, 20, 10]);
    assert_eq!(decode(&timeline.bytes()).len(), 5);

    let (script, body) = channel();
    let layer = SseLayer::new().coalesce_limit(0);
    let response = through(layer, event_stream(body)).await;
    for _ in 0..3 {
        script.data("data: 12\n\n");
    }
    drop(script);
    let timeline = record(response.into_body(), Instant::now()).await;
    let sizes: Vec<usize> = timeline.frames.iter().map(|(_, b)| b.len()).collect();
    assert_eq!(sizes, [3, 10, 10, 10]);
}

#[tokio::test(start_paused = true)]
async fn trailers_follow_the_data_gathered_before_them() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    let mut trailers = HeaderMap::new();
    trailers.insert("x-end", HeaderValue::from_static("1"));
    script.data("data: a\n\n");
    script.data("data: b\n\n");
    script.trailers(trailers.clone());
    drop(script);
    let timeline = record(response.into_body(), Instant::now()).await;
    assert_eq!(timeline.bytes(), b":\n\ndata: a\n\ndata: b\n\n");
    assert_eq!(timeline.trailers, Some(trailers));
}

#[tokio::test(start_paused = true)]
async fn inner_errors_are_passed_on_with_their_type() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    let mut body = response.into_body();
    script.data("data: a\n\n");
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        ":\n\n"
    );
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        "data: a\n\n"
    );
    script.error(io::ErrorKind::BrokenPipe);
    let error: io::Error = body.frame().await.unwrap().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::BrokenPipe);
}

#[tokio::test(start_paused = true)]
async fn end_of_stream_is_reported_after_the_end() {
    let response = through(SseLayer::new(), event_stream(Full::new(Bytes::new()))).await;
    let mut body = response.into_body();
    assert!(!body.is_end_stream());
    assert_eq!(
        body.frame().await.unwrap().unwrap().into_data().unwrap(),
        ":\n\n"
    );
    assert!(body.frame().await.is_none());
    assert!(body.is_end_stream());
    assert_eq!(body.size_hint().exact(), Some(0));
}

/// A compression layer inside the `SseLayer` has encoded the stream: the layer adds its
/// buffering-off headers and passes the bytes through as they are, with no priming, heartbeat
/// or final event spliced into the compressed data.
#[tokio::test]
async fn encoded_event_streams_pass_through_untouched() {
    let gzip = Bytes::from_static(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03");
    let response = Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .header("content-encoding", "gzip")
        .body(Full::new(gzip.clone()))
        .unwrap();
    let layer = SseLayer::new().retry(std::time::Duration::from_secs(1));
    let response = through(layer, response).await;
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert!(!response.body().is_event_stream());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes, gzip);
}
