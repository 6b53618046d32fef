//! Graceful shutdown and the maximum lifetime.

mod common;

use std::time::Duration;

use common::{channel, decode, event_stream, record, secs, through};
use tokio::time::{Instant, sleep};
use tower_sse::{Event, ShutdownSignal, SseLayer};

fn final_event() -> Event<'static> {
    Event::new().event("bye").unwrap().data("reconnect")
}

#[tokio::test(start_paused = true)]
async fn between_events_the_stream_ends_at_once_after_the_final_event() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new()
        .shutdown(shutdown.clone())
        .final_event(final_event());
    let (script, body) = channel();
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        script.data("data: 1\n\n");
        sleep(secs(20)).await;
        shutdown.trigger();
        // The handler's body stays open: the layer ends the response, not the handler.
        sleep(secs(1000)).await;
        drop(script);
    });
    timeline.assert_is(&[
        (0, ":\n\n"),
        (0, "data: 1\n\n"),
        (15, ":\n\n"),
        (20, "event: bye\ndata: reconnect\n\n"),
    ]);
    assert_eq!(
        decode(&timeline.bytes()),
        [
            ("message".into(), "1".into(), "".into()),
            ("bye".into(), "reconnect".into(), "".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn mid_event_the_stream_ends_at_the_event_boundary() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new()
        .shutdown(shutdown.clone())
        .final_event(final_event());
    let (script, body) = channel();
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        script.data("id: 4\ndata: par");
        sleep(secs(5)).await;
        shutdown.trigger();
        sleep(secs(5)).await;
        // The rest of the event, and the start of one that must not be sent.
        script.data("tial\r\n\r\ndata: next\n\n");
        sleep(secs(1000)).await;
    });
    timeline.assert_is(&[
        (0, ":\n\n"),
        (0, "id: 4\ndata: par"),
        (10, "tial\r\n\r"),
        (10, "event: bye\ndata: reconnect\n\n"),
    ]);
    assert_eq!(
        decode(&timeline.bytes()),
        [
            ("message".into(), "partial".into(), "4".into()),
            ("bye".into(), "reconnect".into(), "4".into()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_handler_stalled_mid_event_is_cut_after_a_heartbeat_interval() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new()
        .shutdown(shutdown.clone())
        .final_event(final_event());
    let (script, body) = channel();
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let handler = tokio::spawn(async move {
        sleep(secs(2)).await;
        script.data("data: never finished");
        sleep(secs(3)).await;
        shutdown.trigger();
        sleep(secs(1000)).await;
    });
    let timeline = record(response.into_body(), start).await;
    // Silent inside an event since 2 s: cut at 17 s, with no final event glued to it.
    assert_eq!(start.elapsed(), secs(17));
    timeline.assert_is(&[(0, ":\n\n"), (2, "data: never finished")]);
    handler.abort();
    assert!(decode(&timeline.bytes()).is_empty());
}

#[tokio::test(start_paused = true)]
async fn without_a_final_event_the_stream_just_ends() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new().shutdown(shutdown.clone());
    let (_script, body) = channel();
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(3)).await;
        shutdown.trigger();
    });
    timeline.assert_is(&[(0, ":\n\n")]);
    assert_eq!(start.elapsed(), secs(3));
}

#[tokio::test(start_paused = true)]
async fn streams_started_after_the_trigger_end_after_priming() {
    let shutdown = ShutdownSignal::new();
    shutdown.trigger();
    let layer = SseLayer::new()
        .retry(secs(1))
        .shutdown(shutdown)
        .final_event(final_event());
    let (_script, body) = channel();
    let response = through(layer, event_stream(body)).await;
    let timeline = record(response.into_body(), Instant::now()).await;
    timeline.assert_is(&[
        (0, "retry: 1000\n\n"),
        (0, "event: bye\ndata: reconnect\n\n"),
    ]);
}

#[tokio::test(start_paused = true)]
async fn one_signal_ends_many_streams() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new().shutdown(shutdown.clone());
    let mut readers = Vec::new();
    let mut scripts = Vec::new();
    for _ in 0..3 {
        let (script, body) = channel();
        let response = through(layer.clone(), event_stream(body)).await;
        readers.push(tokio::spawn(record(response.into_body(), Instant::now())));
        scripts.push(script);
    }
    sleep(secs(1)).await;
    for reader in &readers {
        assert!(!reader.is_finished());
    }
    shutdown.trigger();
    for reader in readers {
        let timeline = reader.await.unwrap();
        timeline.assert_is(&[(0, ":\n\n")]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_busy_stream_notices_the_signal() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new().shutdown(shutdown.clone());
    let (script, body) = channel();
    let mut body = std::pin::pin!(through(layer, event_stream(body)).await.into_body());
    use http_body_util::BodyExt;
    body.frame().await.unwrap().unwrap();
    script.data("data: 1\n\n");
    shutdown.trigger();
    // The next frame is already ready, yet the stream ends at the boundary it is at.
    script.data("data: 2\n\n");
    assert!(body.frame().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn streams_end_after_their_lifetime() {
    let layer = SseLayer::new()
        .max_lifetime(secs(60), Duration::ZERO)
        .final_event(final_event());
    let (script, body) = channel();
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(50)).await;
        script.data("data: ");
        sleep(secs(20)).await;
        script.data("x\n\ndata: y\n\n");
        sleep(secs(1000)).await;
    });
    // Beats at 15, 30, 45; the lifetime ends at 60 inside an event, so the stream ends when
    // that event does.
    timeline.assert_is(&[
        (0, ":\n\n"),
        (15, ":\n\n"),
        (30, ":\n\n"),
        (45, ":\n\n"),
        (50, "data: "),
        (70, "x\n\n"),
        (70, "event: bye\ndata: reconnect\n\n"),
    ]);
}

#[tokio::test(start_paused = true)]
async fn lifetimes_are_jittered_within_bounds() {
    let layer = SseLayer::new()
        .no_heartbeat()
        .max_lifetime(secs(100), secs(20));
    let mut ends = Vec::new();
    for _ in 0..20 {
        let (_script, body) = channel();
        let response = through(layer.clone(), event_stream(body)).await;
        let start = Instant::now();
        let timeline = record(response.into_body(), start).await;
        assert_eq!(timeline.bytes(), b":\n\n");
        ends.push(start.elapsed());
    }
    let latest = secs(100) + Duration::from_millis(10); // the timer rounds up to the millisecond
    assert!(
        ends.iter().all(|end| (secs(80)..=latest).contains(end)),
        "{ends:?}"
    );
    let first = ends[0];
    assert!(ends.iter().any(|end| *end != first), "no jitter: {ends:?}");
}
