//! The same scenarios against every framework, over real loopback sockets.
//!
//! Each scenario is a function of the [`Framework`]; the macro at the end runs each of them
//! against each framework as its own test, so a failure names both.

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;
use tower_sse_conformance::{
    Framework, HEARTBEAT, KeyedServer, NETWORK, RETRY, TENANT_HEADER, TOPIC, TestServer,
};
use tower_sse_core::{Decoded, Event};

/// Headers, priming with the retry hint, and heartbeats on an idle stream.
async fn headers_priming_retry_and_heartbeat(framework: Framework) {
    let server = TestServer::start(framework).await;
    let mut client = server.client().await;
    let mut stream = client.events("/hub", &[]).await;
    let headers = &stream.headers;
    assert_eq!(headers[CONTENT_TYPE], "text/event-stream");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(!headers.contains_key(CONTENT_LENGTH), "{headers:?}");
    assert!(!headers.contains_key("connection"), "{headers:?}");
    // Asked with `Accept-Encoding: gzip`, the stream is still sent as is: a compressor would
    // hold events back.
    assert!(!headers.contains_key("content-encoding"), "{headers:?}");

    // Primed at once with the retry hint, before any event exists.
    let first = stream.frame_within(HEARTBEAT / 2).await.unwrap();
    assert_eq!(&first[..], b"retry: 1500\n\n");
    assert_eq!(
        stream.decoder.decode().unwrap(),
        Some(Decoded::Retry(RETRY))
    );
    // Idle: heartbeats, each a bare comment.
    for _ in 0..2 {
        assert_eq!(&stream.frame().await.unwrap()[..], b":\n\n");
    }
    // An event still gets through between them.
    server
        .hub
        .publish(TOPIC, &Event::new().data("live"))
        .await
        .unwrap();
    assert_eq!(stream.event().await.unwrap().data(), "live");
}

/// A handler that pauses inside an event gets no heartbeat there, only between events.
async fn heartbeats_only_between_events(framework: Framework) {
    let server = TestServer::start(framework).await;
    let mut client = server.client().await;
    let mut stream = client.events("/parts", &[]).await;
    let events = stream.rest().await;
    let data: Vec<_> = events.iter().map(|e| e.data()).collect();
    assert_eq!(data, ["hello", "end"]);

    let raw = String::from_utf8(stream.raw.clone()).unwrap();
    let rest = raw.strip_prefix("retry: 1500\n\n").expect(&raw);
    // Beats may come before the first byte of the handler (on a slow machine), never inside
    // `data: hello`, and at least one in the pause between the two events.
    let rest = rest.trim_start_matches(":\n\n");
    let rest = rest.strip_prefix("data: hello\n\n").expect(&raw);
    let beats = rest.matches(":\n\n").count();
    assert!(beats >= 1, "no heartbeat between events: {raw:?}");
    assert_eq!(rest.trim_start_matches(":\n\n"), "data: end\n\n", "{raw:?}");
}

/// A client that reconnects with `Last-Event-ID` (or the `lastEventId` query parameter) gets
/// exactly what it missed from the Hub, then live events; an invalid id gets the gap signal.
async fn resumes_from_the_hub(framework: Framework) {
    let server = TestServer::start(framework).await;
    let hub = &server.hub;
    let mut ids = Vec::new();
    for data in ["one", "two", "three"] {
        let logged = hub.publish(TOPIC, &Event::new().data(data)).await.unwrap();
        ids.push(logged.id().to_owned());
    }

    let mut by_header = server.client().await;
    let mut stream = by_header
        .events("/hub", &[("last-event-id", ids[0].as_str())])
        .await;
    let two = stream.event().await.unwrap();
    assert_eq!((two.data(), two.last_event_id()), ("two", ids[1].as_str()));
    assert_eq!(stream.event().await.unwrap().data(), "three");

    let path = format!("/hub?lastEventId={}", ids[1]);
    let mut by_query = server.client().await;
    let mut by_query = by_query.events(&path, &[]).await;
    assert_eq!(by_query.event().await.unwrap().data(), "three");

    hub.publish(TOPIC, &Event::new().data("four"))
        .await
        .unwrap();
    assert_eq!(stream.event().await.unwrap().data(), "four");
    assert_eq!(by_query.event().await.unwrap().data(), "four");

    let mut invalid = server.client().await;
    let mut invalid = invalid
        .events("/hub", &[("last-event-id", "nobody-issued-this")])
        .await;
    let gap = invalid.event().await.unwrap();
    assert_eq!(gap.event_type(), "sse-gap");
    assert!(
        gap.data().starts_with(r#"{"reason":"unknown-cursor","#),
        "{}",
        gap.data()
    );
}

/// The layer's own replay ([`SseLayer::replay`](tower_sse::SseLayer::replay)) under a stream
/// key derived from a request header: with events of two tenants interleaved in one log, a
/// client resuming with `X-Tenant: a` gets exactly tenant a's missed events, in order with
/// their ids, then a's live events and never b's; the same cursor under the other tenant's
/// key is unknown there (the gap signal), which shows that the key decides the replay.
async fn layer_replay_keyed_by_header(framework: Framework) {
    let server = KeyedServer::start(framework).await;
    let a1 = server.publish("a", "a1").await;
    let _b1 = server.publish("b", "b1").await;
    let a2 = server.publish("a", "a2").await;
    let b2 = server.publish("b", "b2").await;
    let a3 = server.publish("a", "a3").await;

    let mut client = server.client().await;
    let mut stream = client
        .events(
            "/feed",
            &[(TENANT_HEADER, "a"), ("last-event-id", a1.as_str())],
        )
        .await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let event = stream.event().await.unwrap();
        seen.push((
            String::from(event.data()),
            String::from(event.last_event_id()),
        ));
    }
    assert_eq!(seen, [("a2".to_owned(), a2), ("a3".to_owned(), a3.clone())]);
    // Live now: b's event is not for this stream, a's is.
    server.publish("b", "b3").await;
    let a4 = server.publish("a", "a4").await;
    let live = stream.event().await.unwrap();
    assert_eq!((live.data(), live.last_event_id()), ("a4", a4.as_str()));

    // Tenant b resumes from its own cursor: its missed events only.
    let mut other = server.client().await;
    let mut other = other
        .events(
            "/feed",
            &[(TENANT_HEADER, "b"), ("last-event-id", b2.as_str())],
        )
        .await;
    assert_eq!(other.event().await.unwrap().data(), "b3");

    // a's cursor under b's key: a position of another topic, reported, nothing replayed.
    let mut crossed = server.client().await;
    let mut crossed = crossed
        .events(
            "/feed",
            &[(TENANT_HEADER, "b"), ("last-event-id", a3.as_str())],
        )
        .await;
    let gap = crossed.event().await.unwrap();
    assert_eq!(gap.event_type(), "sse-gap", "{gap:?}");
    assert!(
        gap.data().starts_with(r#"{"reason":"unknown-cursor","#),
        "{}",
        gap.data()
    );
}

/// A handler streaming its own `Event`s with the adapter's response type: the right
/// headers, every event encoded, then the end.
async fn own_events_response(framework: Framework) {
    let server = TestServer::start(framework).await;
    let mut client = server.client().await;
    let mut stream = client.events("/events", &[]).await;
    assert_eq!(stream.headers[CONTENT_TYPE], "text/event-stream");
    assert_eq!(stream.headers[CACHE_CONTROL], "no-cache");
    let events = stream.rest().await;
    let got: Vec<_> = events
        .iter()
        .map(|e| (e.data(), e.last_event_id()))
        .collect();
    assert_eq!(got, [("tick 1", "1"), ("tick 2", "2"), ("tick 3", "3")]);
    let raw = String::from_utf8(stream.raw.clone()).unwrap();
    assert!(raw.ends_with("id: 3\ndata: tick 3\n\n"), "{raw:?}");
}

/// A response that is not an event stream passes through the layer untouched.
async fn plain_route_untouched(framework: Framework) {
    let server = TestServer::start(framework).await;
    let mut client = server.client().await;
    let response = client.get("/plain", &[]).await;
    let headers = response.headers().clone();
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain"),
        "{headers:?}"
    );
    assert_eq!(headers[CONTENT_LENGTH], "5");
    assert!(!headers.contains_key(CACHE_CONTROL), "{headers:?}");
    assert!(!headers.contains_key("x-accel-buffering"), "{headers:?}");
    let body = tokio::time::timeout(NETWORK, response.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"hello");
}

/// Shutdown ends open streams at an event boundary, after the final event, and the server
/// exits.
async fn shutdown_ends_streams_and_server(framework: Framework) {
    let server = TestServer::start(framework).await;
    let mut client = server.client().await;
    let mut stream = client.events("/hub", &[]).await;
    stream.frame().await.unwrap();
    server
        .hub
        .publish(TOPIC, &Event::new().data("before"))
        .await
        .unwrap();
    assert_eq!(stream.event().await.unwrap().data(), "before");

    let stopping = tokio::spawn(server.stop());
    let rest = stream.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(
        (rest[0].event_type(), rest[0].data()),
        ("bye", "server shutting down")
    );
    assert!(stopping.await.unwrap(), "the server did not exit in time");
}

/// poem's `Compression` (inside `SseMiddleware`) still compresses other responses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poem_compression_still_applies_to_other_routes() {
    let server = TestServer::start(Framework::Poem).await;
    let mut client = server.client().await;
    let response = client.get("/plain", &[("accept-encoding", "gzip")]).await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

/// A curl-like request (`Accept: */*`, `Accept-Encoding: gzip`, as `curl --compressed`,
/// Python's `requests` and most server-side clients send) through poem's `Compression`: the
/// stream is compressed, stays valid gzip (nothing spliced into it), and each event arrives
/// before the next is published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poem_compressed_curl_like_stream_is_valid_and_prompt() {
    use std::io::Write;

    let server = TestServer::start(Framework::Poem).await;
    let mut client = server.client().await;
    let response = client
        .get("/hub", &[("accept", "*/*"), ("accept-encoding", "gzip")])
        .await;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let mut body = response.into_body();
    let mut gunzip = flate2::write::GzDecoder::new(Vec::new());
    for n in 0..3 {
        let data = format!("event {n}");
        server
            .hub
            .publish(TOPIC, &Event::new().data(data.as_str()))
            .await
            .unwrap();
        let expected = format!("data: {data}\n\n");
        loop {
            let text = String::from_utf8_lossy(gunzip.get_ref()).into_owned();
            if text.contains(&expected) {
                break;
            }
            let frame = tokio::time::timeout(NETWORK, body.frame())
                .await
                .expect("the event before the next is published")
                .expect("not ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                gunzip.write_all(&data).unwrap();
                gunzip.flush().unwrap();
            }
        }
    }
}

macro_rules! conformance {
    ($($module:ident => $framework:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn headers_priming_retry_and_heartbeat() {
                super::headers_priming_retry_and_heartbeat($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn heartbeats_only_between_events() {
                super::heartbeats_only_between_events($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn resumes_from_the_hub() {
                super::resumes_from_the_hub($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn layer_replay_keyed_by_header() {
                super::layer_replay_keyed_by_header($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn own_events_response() {
                super::own_events_response($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn plain_route_untouched() {
                super::plain_route_untouched($framework).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn shutdown_ends_streams_and_server() {
                super::shutdown_ends_streams_and_server($framework).await;
            }
        }
    )*};
}

conformance! {
    axum => Framework::Axum,
    warp => Framework::Warp,
    poem => Framework::Poem,
}
