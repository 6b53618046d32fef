//! The Hub behind the layer on a real axum server: a client reads, drops mid-stream, and
//! reconnects with the last id it decoded; it gets exactly what it missed, then live events.

use std::time::Duration;

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, Request},
    response::Response,
    routing::get,
};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower_sse::{Hub, SseLayer};
use tower_sse_core::MemoryLog;
use tower_sse_core::{Decoded, Decoder, Event};

async fn events(State(hub): State<Hub>, headers: HeaderMap) -> Response {
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let subscription = hub.subscribe("demo", cursor.as_deref()).await.unwrap();
    subscription.into_response().map(Body::new)
}

struct Client {
    body: hyper::body::Incoming,
    decoder: Decoder,
    headers: http::HeaderMap,
    _conn: tokio::task::JoinHandle<()>,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr, last_event_id: Option<&str>) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut request = Request::get("/events").header("host", "test");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = sender
            .send_request(
                request
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        let headers = response.headers().clone();
        Self {
            body: response.into_body(),
            decoder: Decoder::new(),
            headers,
            _conn: conn,
        }
    }

    /// The next dispatched event as (type, data, id).
    async fn next_event(&mut self) -> (String, String, String) {
        loop {
            if let Some(item) = self.decoder.decode().unwrap() {
                if let Decoded::Event(e) = item {
                    return (
                        e.event_type().into(),
                        e.data().into(),
                        e.last_event_id().into(),
                    );
                }
                continue;
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("a frame within 10 s")
                .expect("the stream goes on")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.decoder.feed(&data);
            }
        }
    }
}

#[tokio::test]
async fn drop_and_resume_through_layer_and_hub() {
    let hub = Hub::new();
    let app = Router::new()
        .route("/events", get(events))
        .with_state(hub.clone())
        .layer(SseLayer::new().retry(Duration::from_millis(1500)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    for i in 1..=3 {
        hub.publish("demo", &Event::new().data(format!("before {i}")))
            .await
            .unwrap();
    }
    // A fresh client starts live.
    let mut first = Client::connect(addr, None).await;
    assert_eq!(first.headers["content-type"], "text/event-stream");
    assert_eq!(first.headers["cache-control"], "no-cache");
    assert_eq!(first.headers["x-accel-buffering"], "no");
    hub.publish("demo", &Event::new().event("update").unwrap().data("four"))
        .await
        .unwrap();
    let (ty, data, last_id) = first.next_event().await;
    assert_eq!((ty.as_str(), data.as_str()), ("update", "four"));
    assert_eq!(first.decoder.retry(), Some(Duration::from_millis(1500)));
    drop(first); // the phone lost Wi-Fi

    for data in ["five", "six"] {
        hub.publish("demo", &Event::new().data(data)).await.unwrap();
    }
    let mut second = Client::connect(addr, Some(&last_id)).await;
    assert_eq!(second.next_event().await.1, "five");
    assert_eq!(second.next_event().await.1, "six");
    hub.publish("demo", &Event::new().data("seven"))
        .await
        .unwrap();
    assert_eq!(second.next_event().await.1, "seven");

    // A cursor from nowhere is not echoed and not an error: the client is told to refetch.
    let mut third = Client::connect(addr, Some("0000000000000000-1")).await;
    let (ty, data, _) = third.next_event().await;
    assert_eq!(ty, "sse-gap");
    assert!(data.starts_with(r#"{"reason":"unknown-cursor","#), "{data}");
}

/// The layer does the replay: the handler only streams live events, the layer reads the
/// Hub's log after the client's `Last-Event-ID` and drops the overlap.
async fn live_only(State(hub): State<Hub<std::sync::Arc<MemoryLog>>>) -> Response {
    let subscription = hub.subscribe("demo", None).await.unwrap();
    subscription.into_response().map(Body::new)
}

#[tokio::test]
async fn layer_replays_from_the_log_after_a_drop() {
    let log = std::sync::Arc::new(MemoryLog::new());
    let hub = Hub::with_log(std::sync::Arc::clone(&log));
    let app = Router::new()
        .route("/events", get(live_only))
        .with_state(hub.clone())
        .layer(
            SseLayer::new()
                .replay(log)
                .stream_key(|_| "demo".to_owned()),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let mut client = Client::connect(addr, None).await;
    for i in 1..=3 {
        hub.publish("demo", &Event::new().data(format!("e{i}")))
            .await
            .unwrap();
    }
    let mut last_id = String::new();
    for i in 1..=3 {
        let (_, data, id) = client.next_event().await;
        assert_eq!(data, format!("e{i}"));
        last_id = id;
    }
    drop(client);
    for i in 4..=6 {
        hub.publish("demo", &Event::new().data(format!("e{i}")))
            .await
            .unwrap();
    }
    let mut client = Client::connect(addr, Some(&last_id)).await;
    // Published while the client was away, and live after it came back: each exactly once.
    hub.publish("demo", &Event::new().data("e7")).await.unwrap();
    for i in 4..=7 {
        assert_eq!(client.next_event().await.1, format!("e{i}"));
    }
    hub.publish("demo", &Event::new().data("e8")).await.unwrap();
    assert_eq!(client.next_event().await.1, "e8");
}
