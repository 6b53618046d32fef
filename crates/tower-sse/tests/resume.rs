//! Last-Event-ID resumption in the layer: replay from the log, then the live body without the
//! events already replayed; every outcome, the cap, the gap policies, hostile header values.

mod common;

use std::{convert::Infallible, sync::Arc};

use bytes::Bytes;
use common::{decode, event_stream};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sse::{ClientCursor, GapPolicy, SSE_GAP, SSE_REPLAY_FROM, SseLayer};
use tower_sse_core::{Event, LoggedEvent, MemoryLog, Retention};

fn log_with(retention: Retention, n: usize) -> (Arc<MemoryLog>, Vec<LoggedEvent>) {
    let log = Arc::new(MemoryLog::builder().retention(retention).build());
    let events = (1..=n)
        .map(|i| {
            log.append_sync("/events", &Event::new().data(i.to_string()))
                .unwrap()
        })
        .collect();
    (log, events)
}

/// Sends a request with `last_event_id` through `layer` to a handler whose live body is
/// `live`; returns the response head and the data of every dispatched event.
async fn run(
    layer: SseLayer,
    uri: &str,
    last_event_id: Option<&[u8]>,
    live: Vec<Bytes>,
) -> (
    Response<()>,
    Vec<(String, String, String)>,
    Option<ClientCursor>,
) {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let seen2 = Arc::clone(&seen);
    let handler = service_fn(move |request: Request<()>| {
        *seen2.lock().unwrap() = request.extensions().get::<ClientCursor>().cloned();
        let live = live.concat();
        async move { Ok::<_, Infallible>(event_stream(Full::new(Bytes::from(live)))) }
    });
    let service = ServiceBuilder::new().layer(layer).service(handler);
    let mut request = Request::get(uri);
    if let Some(value) = last_event_id {
        request = request.header("last-event-id", HeaderValue::from_bytes(value).unwrap());
    }
    let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let cursor = seen.lock().unwrap().clone();
    (Response::from_parts(parts, ()), decode(&bytes), cursor)
}

fn data(events: &[(String, String, String)]) -> Vec<&str> {
    events.iter().map(|(_, d, _)| d.as_str()).collect()
}

#[tokio::test]
async fn replays_then_live_without_duplicates() {
    let (log, events) = log_with(Retention::default(), 6);
    let layer = SseLayer::new().replay(Arc::clone(&log));
    // The live source already holds 4, 5 (the overlap window) and then 6.
    let live = events[3..].iter().map(|e| e.frame().clone()).collect();
    let (response, got, cursor) =
        run(layer, "/events", Some(events[1].id().as_bytes()), live).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(data(&got), ["3", "4", "5", "6"]);
    // Ids are the log's, so the client's next Last-Event-ID is right.
    assert_eq!(got[3].2, events[5].id());
    assert_eq!(
        cursor.and_then(|c| c.last_event_id().map(|id| id.to_string())),
        Some(events[1].id().to_owned())
    );
}

#[tokio::test]
async fn live_events_after_the_replay_pass_untouched() {
    let (log, events) = log_with(Retention::default(), 3);
    let layer = SseLayer::new().replay(Arc::clone(&log));
    let live = vec![Bytes::from_static(b":comment\n\ndata: fresh\n\n")];
    let (_, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), live).await;
    assert_eq!(data(&got), ["2", "3", "fresh"]);
}

#[tokio::test]
async fn no_cursor_no_replay() {
    let (log, _) = log_with(Retention::default(), 3);
    let layer = SseLayer::new().replay(log);
    let (_, got, cursor) = run(
        layer,
        "/events",
        None,
        vec![Bytes::from_static(b"data: live\n\n")],
    )
    .await;
    assert_eq!(data(&got), ["live"]);
    // Stored on every request, so that extractors see the layer's decision.
    assert_eq!(cursor, Some(ClientCursor::Absent));
}

#[tokio::test]
async fn query_fallback() {
    let (log, events) = log_with(Retention::default(), 3);
    let layer = SseLayer::new().replay(log);
    let uri = format!("/events?lastEventId={}", events[1].id());
    let (_, got, _) = run(layer, &uri, None, vec![]).await;
    assert_eq!(data(&got), ["3"]);
    // Turned off, the query is ignored.
    let (log, events) = log_with(Retention::default(), 3);
    let layer = SseLayer::new().replay(log).last_event_id_query(None);
    let uri = format!("/events?lastEventId={}", events[1].id());
    assert_eq!(run(layer, &uri, None, vec![]).await.1, vec![]);
}

#[tokio::test]
async fn gap_sends_the_signal_at_the_head_and_nothing_older() {
    let (log, events) = log_with(Retention::default().max_events(3), 10);
    let layer = SseLayer::new().replay(log);
    let live = vec![
        events[9].frame().clone(),
        Bytes::from_static(b"data: fresh\n\n"),
    ];
    let (_, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), live).await;
    // The retained 8, 9, 10 are older than the signal's position: not sent after it.
    let head = events[9].id();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].0, "sse-gap");
    assert_eq!(
        got[0].1,
        format!(r#"{{"reason":"gap","resume_from":"{head}"}}"#)
    );
    assert_eq!(got[0].2, head);
    assert_eq!(data(&got[1..]), ["fresh"]);
}

#[tokio::test]
async fn unknown_and_invalid_cursors_are_reported_never_echoed() {
    for value in [&b"not-an-id"[..], b"\xff\xfe", &[b'x'; 300][..]] {
        let (log, _) = log_with(Retention::default(), 3);
        let layer = SseLayer::new().replay(log);
        let (response, got, _) = run(layer, "/events", Some(value), vec![]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(
            got[0].1.starts_with(r#"{"reason":"unknown-cursor","#),
            "{:?}",
            got[0]
        );
        for header in response.headers().values() {
            assert!(!header.as_bytes().windows(value.len()).any(|w| w == value));
        }
    }
}

#[tokio::test]
async fn header_policy() {
    let (log, events) = log_with(Retention::default().max_events(3), 10);
    let layer = SseLayer::new().replay(log).gap_policy(GapPolicy::Header);
    let (response, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), vec![]).await;
    assert_eq!(response.headers()[SSE_GAP], "gap");
    // The position the stream continues from: the head, nothing older follows.
    assert_eq!(response.headers()[SSE_REPLAY_FROM], events[9].id());
    assert!(got.is_empty(), "{got:?}");

    let (log, events) = log_with(Retention::default(), 1);
    let layer = SseLayer::new().replay(log).gap_policy(GapPolicy::Header);
    let (response, got, _) = run(layer, "/events", Some(b"nope"), vec![]).await;
    assert_eq!(response.headers()[SSE_GAP], "unknown-cursor");
    assert_eq!(response.headers()[SSE_REPLAY_FROM], events[0].id());
    assert!(got.is_empty());

    // Beyond the cap: the contiguous events, then the stream ends (the client reconnects
    // from the last one and continues); no header, nothing missed.
    let (log, events) = log_with(Retention::default(), 10);
    let layer = SseLayer::new()
        .replay(log)
        .max_replay(3)
        .gap_policy(GapPolicy::Header);
    let live = vec![Bytes::from_static(b"data: live\n\n")];
    let (response, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), live).await;
    assert!(!response.headers().contains_key(SSE_GAP));
    assert_eq!(data(&got), ["2", "3", "4"]);

    let (log, events) = log_with(Retention::default().max_events(3), 10);
    let layer = SseLayer::new().replay(log).gap_policy(GapPolicy::Ignore);
    let live = vec![
        events[9].frame().clone(),
        Bytes::from_static(b"data: fresh\n\n"),
    ];
    let (response, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), live).await;
    assert!(!response.headers().contains_key(SSE_GAP));
    assert_eq!(data(&got), ["fresh"]);
}

#[tokio::test]
async fn replay_is_capped() {
    let (log, events) = log_with(Retention::default(), 10);
    let layer = SseLayer::new().replay(log).max_replay(3);
    let live = vec![
        events[9].frame().clone(),
        Bytes::from_static(b"data: fresh\n\n"),
    ];
    let (_, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), live).await;
    // The contiguous events first, then the signal at the head, then only newer events.
    assert_eq!(data(&got[..3]), ["2", "3", "4"]);
    let head = events[9].id();
    assert_eq!(got[3].0, "sse-gap");
    assert_eq!(
        got[3].1,
        format!(r#"{{"reason":"too-far-behind","resume_from":"{head}"}}"#)
    );
    assert_eq!(got[3].2, head);
    assert_eq!(data(&got[4..]), ["fresh"]);
    // Exactly at the cap is not a gap.
    let (log, events) = log_with(Retention::default(), 4);
    let layer = SseLayer::new().replay(log).max_replay(3);
    let (_, got, _) = run(layer, "/events", Some(events[0].id().as_bytes()), vec![]).await;
    assert_eq!(data(&got), ["2", "3", "4"]);
}

#[tokio::test]
async fn stream_key_picks_the_topic() {
    let log = Arc::new(MemoryLog::new());
    let a = log.append_sync("room-a", &Event::new().data("a1")).unwrap();
    log.append_sync("room-a", &Event::new().data("a2")).unwrap();
    log.append_sync("room-b", &Event::new().data("b1")).unwrap();
    let layer = SseLayer::new()
        .replay(Arc::clone(&log))
        .stream_key(|parts| {
            parts
                .uri
                .query()
                .unwrap_or_default()
                .trim_start_matches("room=")
                .to_owned()
        });
    let (_, got, _) = run(
        layer,
        "/events?room=room-a",
        Some(a.id().as_bytes()),
        vec![],
    )
    .await;
    assert_eq!(data(&got), ["a2"]);
}

#[tokio::test]
async fn non_event_streams_are_not_replayed() {
    let (log, events) = log_with(Retention::default(), 3);
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().replay(log))
        .service(service_fn(|_req: Request<()>| async {
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"plain"))))
        }));
    let request = Request::get("/events")
        .header("last-event-id", events[0].id())
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"plain");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes a client can put in the header (HTTP allows tab, visible ASCII and any byte
    /// above 0x7f): no panic, never a 5xx, never echoed.
    #[test]
    fn hostile_last_event_id(
        value in prop::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..=0x7e, 0x80u8..=0xff], 0..400)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (response, _, _) = runtime.block_on(async {
            let (log, _) = log_with(Retention::default(), 3);
            run(SseLayer::new().replay(log), "/events", Some(&value), vec![]).await
        });
        prop_assert_eq!(response.status(), StatusCode::OK);
        if value.len() > 3 {
            for header in response.headers().values() {
                prop_assert!(!header.as_bytes().windows(value.len()).any(|w| w == &value[..]));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes at all through the query fallback (percent-encoded: NUL, CR, LF included).
    #[test]
    fn hostile_query_cursor(value in prop::collection::vec(any::<u8>(), 0..300)) {
        let encoded: String = value.iter().map(|b| format!("%{b:02X}")).collect();
        let uri = format!("/events?lastEventId={encoded}");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let (response, got, cursor) = runtime.block_on(async {
            let (log, _) = log_with(Retention::default(), 3);
            run(SseLayer::new().replay(log), &uri, None, vec![]).await
        });
        prop_assert_eq!(response.status(), StatusCode::OK);
        // Nothing this log issued can match random bytes: either no cursor (empty) or the
        // client is told to refetch.
        if !value.is_empty() {
            prop_assert!(cursor.is_some());
            prop_assert_eq!(got.len(), 1);
            prop_assert_eq!(got[0].0.as_str(), "sse-gap");
        }
    }
}
