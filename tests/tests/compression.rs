//! tower-http's `CompressionLayer` with the `SseLayer`, as axum users set it up, read by
//! curl-like requests (`Accept-Encoding: gzip` and no `Accept` header, as `curl --compressed`,
//! Python's `requests` and most server-side clients send), over real loopback sockets.
//!
//! - With tower-http's `DefaultPredicate` (which skips `text/event-stream`), on either side of
//!   the layer, event streams are sent uncompressed, with everything the layer adds, and each
//!   event arrives before the next is published; other responses are still compressed.
//! - With a predicate that compresses event streams, outside the layer (the supported order),
//!   the stream is gzip, the layer's priming and heartbeats are inside it, and every event
//!   arrives before the next is published: the encoder flushes whenever the body pauses.
//! - With such a predicate inside the layer, the already-compressed stream is passed through
//!   untouched (valid gzip, nothing spliced into it), and its events are not held back either.

use std::{io::Write, net::SocketAddr};

use axum::{Router, extract::State, http::StatusCode, routing::get};
use flate2::write::GzDecoder;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tower_http::compression::{
    CompressionLayer,
    predicate::{NotForContentType, Predicate},
};
use tower_sse_axum::{Event, Hub, HubStream, LastEventId, ShutdownSignal};
use tower_sse_conformance::{Client, HEARTBEAT, NETWORK, TOPIC};
use tower_sse_core::{Decoded, Decoder};

/// Where `CompressionLayer` sits relative to the `SseLayer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// `.layer(SseLayer).layer(CompressionLayer)`: compression sees what the layer sends.
    Outside,
    /// `.layer(CompressionLayer).layer(SseLayer)`: the layer sees what compression sends.
    Inside,
}

/// A predicate that compresses everything but gRPC, event streams included.
fn compress_event_streams() -> NotForContentType {
    NotForContentType::GRPC
}

/// 2 KiB of text: compressible, and over tower-http's 32-byte minimum.
const TEXT: &str = "tower-sse compresses what it can and never holds an event back. ";

async fn hub(State(hub): State<Hub>, last: LastEventId) -> Result<HubStream, StatusCode> {
    let subscription = hub.subscribe(TOPIC, last.log_cursor()).await;
    subscription
        .map(HubStream)
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

/// Serves `/hub` (the hub's topic) and `/text` (plain text) behind the suite's `SseLayer` and
/// `compression` at `placement`.
async fn serve<P>(compression: CompressionLayer<P>, placement: Placement) -> (SocketAddr, Hub)
where
    P: Predicate + Send + Sync + 'static,
{
    let hub = Hub::new();
    // Never triggered: the server goes with the test's runtime.
    let shutdown = ShutdownSignal::new();
    let routes = Router::new()
        .route("/hub", get(self::hub))
        .route("/text", get(|| async { TEXT.repeat(32) }))
        .with_state(hub.clone());
    let sse = tower_sse_conformance::layer(&shutdown);
    let app = match placement {
        Placement::Outside => routes.layer(sse).layer(compression),
        Placement::Inside => routes.layer(compression).layer(sse),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hub)
}

/// A curl-like request: gzip accepted, no `Accept`.
const CURL_LIKE: [(&str, &str); 1] = [("accept-encoding", "gzip")];

/// An event-stream body read as it arrives, inflated when it is gzip.
struct Stream {
    _client: Client,
    body: Incoming,
    gzip: Option<GzDecoder<Vec<u8>>>,
    /// Every byte as received (compressed or not).
    raw: Vec<u8>,
    /// Every byte after inflating.
    plain: Vec<u8>,
}

impl Stream {
    async fn open(addr: SocketAddr) -> (Stream, http::HeaderMap) {
        let mut client = Client::connect(addr).await;
        let response = client.get("/hub", &CURL_LIKE).await;
        assert_eq!(response.status(), 200);
        let (parts, body) = response.into_parts();
        let gzip = match parts.headers.get("content-encoding") {
            Some(value) if value == "gzip" => Some(GzDecoder::new(Vec::new())),
            Some(other) => panic!("unexpected content-encoding {other:?}"),
            None => None,
        };
        let stream = Stream {
            _client: client,
            body,
            gzip,
            raw: Vec::new(),
            plain: Vec::new(),
        };
        (stream, parts.headers)
    }

    /// Reads until the inflated text contains `expected`; panics after [`NETWORK`].
    async fn until(&mut self, expected: &str) {
        let deadline = tokio::time::Instant::now() + NETWORK;
        while !String::from_utf8_lossy(&self.plain).contains(expected) {
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{expected:?} held back; so far {:?}",
                        String::from_utf8_lossy(&self.plain)
                    )
                })
                .expect("the stream does not end")
                .expect("no body error");
            let Ok(data) = frame.into_data() else {
                continue;
            };
            self.raw.extend_from_slice(&data);
            match &mut self.gzip {
                Some(gzip) => {
                    gzip.write_all(&data).expect("valid gzip");
                    gzip.flush().expect("valid gzip");
                    self.plain = gzip.get_ref().clone();
                }
                None => self.plain.extend_from_slice(&data),
            }
        }
    }

    /// Publishes three events one by one, each read before the next is published, and checks
    /// that the text decodes to exactly them.
    async fn three_events_each_prompt(&mut self, hub: &Hub) {
        for n in 1..=3 {
            let data = format!("event {n}");
            hub.publish(TOPIC, &Event::new().data(data.as_str()))
                .await
                .unwrap();
            self.until(&format!("data: {data}\n\n")).await;
        }
        let mut decoder = Decoder::new();
        decoder.feed(&self.plain);
        let mut data = Vec::new();
        while let Some(decoded) = decoder.decode().expect("a well-formed stream") {
            if let Decoded::Event(event) = decoded {
                data.push(event.data().to_owned());
            }
        }
        assert_eq!(data, ["event 1", "event 2", "event 3"]);
    }
}

async fn text_is_compressed(addr: SocketAddr) {
    let mut client = Client::connect(addr).await;
    let response = client.get("/text", &CURL_LIKE).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

/// The default predicate, on either side: the stream is sent as is, primed, with heartbeats.
async fn default_predicate(placement: Placement) {
    let (addr, hub) = serve(CompressionLayer::new(), placement).await;
    text_is_compressed(addr).await;
    let (mut stream, headers) = Stream::open(addr).await;
    assert!(!headers.contains_key("content-encoding"), "{headers:?}");
    assert_eq!(headers["content-type"], "text/event-stream");
    stream.until("retry: 1500\n\n").await;
    assert!(stream.plain.starts_with(b"retry: 1500\n\n"));
    stream.three_events_each_prompt(&hub).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_predicate_outside_sends_event_streams_as_they_are() {
    default_predicate(Placement::Outside).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_predicate_inside_sends_event_streams_as_they_are() {
    default_predicate(Placement::Inside).await;
}

/// Compression outside the layer, with a predicate that compresses event streams: gzip, with
/// the layer's priming and heartbeats inside, and every event flushed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressing_outside_flushes_every_event() {
    let compression = CompressionLayer::new().compress_when(compress_event_streams());
    let (addr, hub) = serve(compression, Placement::Outside).await;
    let (mut stream, headers) = Stream::open(addr).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(!headers.contains_key("content-length"), "{headers:?}");
    assert_eq!(headers["x-accel-buffering"], "no");
    stream.until("retry: 1500\n\n").await;
    assert!(stream.plain.starts_with(b"retry: 1500\n\n"));
    // Idle: the heartbeat gets through the compressor too.
    stream.until("\n\n:\n\n").await;
    assert!(HEARTBEAT < NETWORK);
    stream.three_events_each_prompt(&hub).await;
    assert_eq!(&stream.raw[..2], [0x1f, 0x8b], "gzip from the first byte");
}

/// Compression inside the layer, with a predicate that compresses event streams: the layer
/// passes the compressed stream through untouched (no plain text spliced into gzip), and each
/// event still arrives before the next is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressing_inside_is_passed_through_untouched() {
    let compression = CompressionLayer::new().compress_when(compress_event_streams());
    let (addr, hub) = serve(compression, Placement::Inside).await;
    let (mut stream, headers) = Stream::open(addr).await;
    assert_eq!(headers["content-encoding"], "gzip");
    stream.three_events_each_prompt(&hub).await;
    assert_eq!(&stream.raw[..2], [0x1f, 0x8b], "gzip from the first byte");
    let text = String::from_utf8(stream.plain.clone()).unwrap();
    assert!(
        !text.contains("retry:"),
        "the layer wrote into it: {text:?}"
    );
}
