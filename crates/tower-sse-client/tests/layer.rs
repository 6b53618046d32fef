//! The client against the project's own `SseLayer` over real sockets (axum server): a stream
//! cut mid-event, the resume with `Last-Event-ID`, a 204 that stops it, HTTP/2; and the test
//! kit on a handler called in process.

use std::{convert::Infallible, time::Duration};

use axum::{Router, body::Body, http::HeaderMap, routing::get};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode, Version};
use tower::ServiceExt;
use tower_sse::SseLayer;
use tower_sse_client::{Error, Event, EventSource, ReadyState, RetryPolicy, testing};

fn sse(chunks: Vec<String>) -> Response<Body> {
    let body = futures_util::stream::iter(
        chunks
            .into_iter()
            .map(|c| Ok::<_, Infallible>(Bytes::from(c))),
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from_stream(body))
        .unwrap()
}

/// Events 1..=3 in order after the client's cursor; the first connection is cut in the
/// middle of event 3; once the client has everything, 204.
async fn numbered(headers: HeaderMap) -> Response<Body> {
    let after: u32 = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0);
    match after {
        0 => sse(vec![
            "id: 1\ndata: one\n\n".into(),
            "id: 2\ndata: two\n\n".into(),
            "id: 3\ndata: thr".into(), // cut mid-event
        ]),
        3.. => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap(),
        n => sse(((n + 1)..=3)
            .map(|i| format!("id: {i}\ndata: event {i}\n\n"))
            .collect()),
    }
}

async fn version(request: Request<Body>) -> Response<Body> {
    sse(vec![format!("data: {:?}\n\n", request.version())])
}

fn app() -> Router {
    Router::new()
        .route("/events", get(numbered))
        .route("/version", get(version))
        .layer(SseLayer::new().retry(Duration::from_millis(20)))
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn cut_mid_event_resumes_with_last_event_id_and_stops_on_204() {
    let base = serve().await;
    let mut source = EventSource::builder(format!("{base}/events"))
        .retry(RetryPolicy::default().max_delay(Duration::from_millis(100)))
        .build()
        .unwrap();
    let mut seen = Vec::new();
    let mut errors = Vec::new();
    let all = async {
        while let Some(item) = source.next().await {
            match item {
                Ok(Event::Message(m)) => {
                    seen.push((m.last_event_id().to_owned(), m.data().to_owned()))
                }
                Ok(_) => {}
                Err(e) => errors.push((e.to_string(), source.ready_state())),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .expect("the stream ended");
    let pairs: Vec<(&str, &str)> = seen.iter().map(|(i, d)| (i.as_str(), d.as_str())).collect();
    // the half-sent event 3 is discarded, then sent whole after the resume; nothing twice
    assert_eq!(pairs, [("1", "one"), ("2", "two"), ("3", "event 3")]);
    assert_eq!(errors.len(), 2, "{errors:?}"); // two clean ends, each reconnected
    assert!(
        errors
            .iter()
            .all(|(e, s)| e.contains("ended") && *s == ReadyState::Connecting)
    );
    assert_eq!(source.ready_state(), ReadyState::Closed);
    // the layer's `retry: 20` was honoured
    assert_eq!(source.reconnection_time(), Duration::from_millis(20));
}

#[tokio::test]
async fn http2_with_prior_knowledge() {
    let base = serve().await;
    let mut source = EventSource::builder(format!("{base}/version"))
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let event = loop {
        match source.next().await {
            Some(Ok(Event::Message(m))) => break m,
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(event.data(), format!("{:?}", Version::HTTP_2));
}

#[tokio::test]
async fn over_an_in_process_router_with_build_with() {
    // Any tower service works, here the router itself without a socket.
    let mut source = EventSource::builder("http://in-process/events")
        .last_event_id("1")
        .build_with(app())
        .unwrap();
    assert!(matches!(source.next().await, Some(Ok(Event::Open))));
    let Some(Ok(Event::Message(m))) = source.next().await else {
        panic!()
    };
    assert_eq!((m.last_event_id(), m.data()), ("2", "event 2"));
}

#[tokio::test]
async fn test_kit_in_three_lines() {
    let response = app()
        .oneshot(Request::get("/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let events = testing::events(response).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.data()).collect::<Vec<_>>(),
        ["one", "two"]
    );

    let request = Request::get("/events")
        .header("last-event-id", "1")
        .body(Body::empty())
        .unwrap();
    let events = testing::take_events(app().oneshot(request).await.unwrap(), 1)
        .await
        .unwrap();
    assert_eq!(events[0].last_event_id(), "2");

    let request = Request::get("/events")
        .header("last-event-id", "3")
        .body(Body::empty())
        .unwrap();
    let error = testing::events(app().oneshot(request).await.unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, Error::ContentType(None)), "{error}");
}
