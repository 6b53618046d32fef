//! The layer's replay under poem sees the whole request: a topic from a tenant header.

use std::sync::Arc;

use futures_util::stream;
use poem::{Endpoint, EndpointExt, IntoResponse, Request, get, handler};
use tower_sse_poem::{Event, Events, MemoryLog, SseLayer, SseMiddleware};

#[handler]
fn live() -> Events<futures_util::stream::Pending<Event<'static>>> {
    Events::new(stream::pending())
}

#[tokio::test]
async fn stream_key_reads_a_header() {
    let log = Arc::new(MemoryLog::new());
    let first = log
        .append_sync("tenant-a", &Event::new().data("a1"))
        .unwrap();
    log.append_sync("tenant-a", &Event::new().data("a2"))
        .unwrap();
    log.append_sync("tenant-b", &Event::new().data("b1"))
        .unwrap();
    let layer = SseLayer::new()
        .no_heartbeat()
        .replay(Arc::clone(&log))
        .stream_key(|parts| {
            let tenant = parts.headers.get("x-tenant").and_then(|v| v.to_str().ok());
            format!("tenant-{}", tenant.unwrap_or("none"))
        });
    let app = get(live).with(SseMiddleware::new(layer));
    let request = Request::builder()
        .header("x-tenant", "a")
        .header("last-event-id", first.id())
        .finish();
    let response = app.call(request).await.unwrap().into_response();
    assert_eq!(response.content_type(), Some("text/event-stream"));
    let mut body = response.into_body().into_bytes_stream();
    let mut received = Vec::new();
    // Priming, then the replay; the live stream never ends, so read what is there.
    while !String::from_utf8_lossy(&received).contains("a2") {
        use futures_util::StreamExt;
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), body.next())
            .await
            .expect("replayed in time")
            .expect("not ended")
            .unwrap();
        received.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(received).unwrap();
    assert!(text.contains("data: a2\n\n"), "{text:?}");
    // `data:` lines only: a random epoch in an id may contain "a1" too.
    assert!(
        !text.contains("data: a1") && !text.contains("data: b1"),
        "{text:?}"
    );
}
