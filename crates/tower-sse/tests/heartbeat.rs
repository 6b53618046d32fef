//! Priming, heartbeats and the retry hint, on a paused clock.

mod common;

use std::time::Duration;

use common::{channel, decode, event_stream, record, secs, through};
use tokio::time::{Instant, sleep};
use tower_sse::{HeartbeatStyle, SseLayer};

#[tokio::test(start_paused = true)]
async fn primes_then_beats_when_idle_and_the_timer_restarts_on_each_frame() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(50)).await;
        script.data("data: a\n\n");
        sleep(secs(20)).await;
        // dropped at 70 s: the body ends
    });
    timeline.assert_is(&[
        (0, ":\n\n"),
        (15, ":\n\n"),
        (30, ":\n\n"),
        (45, ":\n\n"),
        (50, "data: a\n\n"),
        (65, ":\n\n"),
    ]);
    assert_eq!(
        decode(&timeline.bytes()),
        [("message".into(), "a".into(), "".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn no_heartbeat_inside_an_event_split_over_three_frames() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(1)).await;
        script.data("event: update\n");
        sleep(secs(30)).await;
        script.data("data: {\"a\":");
        sleep(secs(30)).await;
        script.data("1}\n");
        sleep(secs(30)).await;
        script.data("\n");
        sleep(secs(20)).await;
    });
    // Beats at 16, 31, 46, ... all fall inside the event and are skipped; the first one after
    // it ends (at 91 s) is due 15 s later.
    timeline.assert_is(&[
        (0, ":\n\n"),
        (1, "event: update\n"),
        (31, "data: {\"a\":"),
        (61, "1}\n"),
        (91, "\n"),
        (106, ":\n\n"),
    ]);
    assert_eq!(
        decode(&timeline.bytes()),
        [("update".into(), "{\"a\":1}".into(), "".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_may_follow_a_comment_line_but_not_a_field_line() {
    let (script, body) = channel();
    let layer = SseLayer::new().heartbeat(secs(10));
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        script.data(": just a comment\n");
        sleep(secs(12)).await;
        script.data("id: 7\n");
        sleep(secs(12)).await;
        script.data("data: x\n\n");
        sleep(secs(5)).await;
    });
    timeline.assert_is(&[
        (0, ":\n\n"),
        (0, ": just a comment\n"),
        (10, ":\n\n"),
        (12, "id: 7\n"),
        (24, "data: x\n\n"),
    ]);
    assert_eq!(
        decode(&timeline.bytes()),
        [("message".into(), "x".into(), "7".into())]
    );
}

#[tokio::test(start_paused = true)]
async fn interval_and_comment_are_configurable() {
    let (script, body) = channel();
    let layer = SseLayer::new()
        .heartbeat(Duration::from_millis(2500))
        .heartbeat_comment("ping");
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(Duration::from_millis(5100)).await;
        drop(script);
    });
    let times: Vec<u128> = timeline.frames.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(timeline.bytes(), b":ping\n\n:ping\n\n:ping\n\n");
    assert!(
        times[0] < 10 && times[1].abs_diff(2500) < 10 && times[2].abs_diff(5000) < 10,
        "{times:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_can_be_turned_off() {
    let (script, body) = channel();
    let layer = SseLayer::new().no_heartbeat();
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(100)).await;
        script.data("data: late\n\n");
        sleep(secs(100)).await;
    });
    timeline.assert_is(&[(0, ":\n\n"), (100, "data: late\n\n")]);
}

#[tokio::test(start_paused = true)]
async fn retry_hint_is_the_first_frame_and_is_sent_once() {
    let (script, body) = channel();
    let layer = SseLayer::new().retry(Duration::from_millis(3500));
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        script.data("data: a\n\n");
        sleep(secs(16)).await;
    });
    timeline.assert_is(&[(0, "retry: 3500\n\n"), (0, "data: a\n\n"), (15, ":\n\n")]);

    let mut decoder = tower_sse_core::Decoder::new();
    decoder.feed(&timeline.bytes());
    while decoder.decode().unwrap().is_some() {}
    assert_eq!(decoder.retry(), Some(Duration::from_millis(3500)));
}

#[tokio::test(start_paused = true)]
async fn the_timer_stops_when_the_body_ends() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    script.data("data: only\n\n");
    drop(script);
    let start = Instant::now();
    let timeline = record(response.into_body(), start).await;
    // Priming, then the event; the end comes at once, not after a heartbeat.
    timeline.assert_is(&[(0, ":\n\n"), (0, "data: only\n\n")]);
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_leading_bom_is_dropped_even_when_split() {
    let (script, body) = channel();
    let response = through(SseLayer::new(), event_stream(body)).await;
    script.bytes(b"\xEF\xBB");
    script.bytes(b"\xBFdata: after bom\n\n");
    drop(script);
    let timeline = record(response.into_body(), Instant::now()).await;
    assert_eq!(timeline.bytes(), b":\n\ndata: after bom\n\n");
    assert_eq!(
        decode(&timeline.bytes()),
        [("message".into(), "after bom".into(), "".into())]
    );
}

/// Single-line heartbeats: priming and beats are comment lines with no blank line, so a
/// parser that dispatches on every blank line (as older LLM SDKs do) sees exactly the events;
/// a retry hint stays a block of its own and does not hold heartbeats back.
#[tokio::test(start_paused = true)]
async fn line_heartbeats_never_add_a_blank_line() {
    let (script, body) = channel();
    let layer = SseLayer::new()
        .heartbeat_style(HeartbeatStyle::Line)
        .retry(Duration::from_micros(1500));
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(20)).await;
        script.data("id: 1\ndata: a\n\n");
        sleep(secs(31)).await;
        script.data("data: b");
        sleep(secs(20)).await;
        script.data("\n\n");
        sleep(secs(5)).await;
    });
    timeline.assert_is(&[
        // A sub-millisecond remainder rounds up.
        (0, "retry: 2\n\n"),
        (15, ":\n"),
        (20, "id: 1\ndata: a\n\n"),
        (35, ":\n"),
        (50, ":\n"),
        (51, "data: b"),
        // No beat inside the event, even at 66 s.
        (71, "\n\n"),
    ]);
    let bytes = timeline.bytes();
    assert_eq!(
        decode(&bytes),
        [
            ("message".into(), "a".into(), "1".into()),
            ("message".into(), "b".into(), "1".into())
        ]
    );
    // Besides the hint's, every blank line ends one of the two events.
    let text = String::from_utf8(bytes).unwrap();
    assert_eq!(text.matches("\n\n").count(), 3, "{text:?}");
    let mut decoder = tower_sse_core::Decoder::new();
    decoder.feed(text.as_bytes());
    while decoder.decode().unwrap().is_some() {}
    assert_eq!(decoder.retry(), Some(Duration::from_millis(2)));
}

/// Without a retry hint, a line-style stream holds no blank line but the events' own.
#[tokio::test(start_paused = true)]
async fn line_heartbeats_prime_with_a_comment_line() {
    let (script, body) = channel();
    let layer = SseLayer::new()
        .heartbeat_style(HeartbeatStyle::Line)
        .heartbeat_comment("ping");
    let response = through(layer, event_stream(body)).await;
    let start = Instant::now();
    let (timeline, ()) = tokio::join!(record(response.into_body(), start), async move {
        sleep(secs(16)).await;
        script.data("id: 1\ndata: a\n\n");
        sleep(secs(16)).await;
    });
    timeline.assert_is(&[
        (0, ":ping\n"),
        (15, ":ping\n"),
        (16, "id: 1\ndata: a\n\n"),
        (31, ":ping\n"),
    ]);
    let text = String::from_utf8(timeline.bytes()).unwrap();
    assert_eq!(text.matches("\n\n").count(), 1, "{text:?}");
}
