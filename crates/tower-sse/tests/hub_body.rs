//! A [`Subscription`] as an `http_body::Body`: the frames ready at once are joined into one
//! body frame of at most a page, in order, nothing lost or repeated; as a `Stream` it still
//! yields one event per item.

use std::time::Duration;

use futures_util::StreamExt;
use http_body_util::BodyExt;
use tower_sse::{Hub, REPLAY_PAGE, REPLAY_PAGE_BYTES, Subscription};
use tower_sse_core::{Decoded, Decoder, Event};

/// The data of every event in `frame`.
fn data(frame: &[u8]) -> Vec<String> {
    let mut decoder = Decoder::new();
    decoder.feed(frame);
    let mut out = Vec::new();
    while let Some(item) = decoder.decode().unwrap() {
        if let Decoded::Event(e) = item {
            out.push(e.data().to_owned());
        }
    }
    out
}

async fn body_frame(sub: &mut Subscription) -> bytes::Bytes {
    tokio::time::timeout(Duration::from_secs(10), sub.frame())
        .await
        .expect("a frame within 10 s")
        .expect("the feed does not end")
        .expect("no log error")
        .into_data()
        .expect("a data frame")
}

#[tokio::test]
async fn a_backlog_goes_out_in_page_sized_body_frames() {
    let hub = Hub::new().capacity(4096);
    let first = hub.publish("t", &Event::new().data("0")).await.unwrap();
    let total = 3 * REPLAY_PAGE + 10;
    for i in 1..=total {
        hub.publish("t", &Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    let mut seen = Vec::new();
    let mut frames = 0;
    while seen.len() < total {
        let frame = body_frame(&mut sub).await;
        let events = data(&frame);
        assert!(!events.is_empty(), "whole events only");
        assert!(events.len() <= REPLAY_PAGE, "{} events", events.len());
        assert!(
            frame.len() <= REPLAY_PAGE_BYTES + 64,
            "{} bytes",
            frame.len()
        );
        seen.extend(events);
        frames += 1;
    }
    let expected: Vec<String> = (1..=total).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
    // Joined, not one body frame per event (a page is at most REPLAY_PAGE events).
    assert!(frames <= 2 * total.div_ceil(REPLAY_PAGE), "{frames} frames");

    // Live: what was published while the subscriber was away comes in one frame.
    for i in 0..5 {
        hub.publish("t", &Event::new().data(format!("live {i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        data(&body_frame(&mut sub).await),
        ["live 0", "live 1", "live 2", "live 3", "live 4"]
    );
}

#[tokio::test]
async fn large_events_are_bounded_by_the_page_bytes() {
    let hub = Hub::new().capacity(64);
    let first = hub.publish("t", &Event::new().data("0")).await.unwrap();
    let big = "x".repeat(20 * 1024);
    for _ in 0..10 {
        hub.publish("t", &Event::new().data(big.as_str()))
            .await
            .unwrap();
    }
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    let mut seen = 0;
    while seen < 10 {
        let frame = body_frame(&mut sub).await;
        // A frame stops at the first event that reaches the page's bytes.
        assert!(
            frame.len() < REPLAY_PAGE_BYTES + 21 * 1024,
            "{} bytes",
            frame.len()
        );
        seen += data(&frame).len();
    }
    assert_eq!(seen, 10);
}

#[tokio::test]
async fn as_a_stream_each_item_is_one_event() {
    let hub = Hub::new();
    let first = hub.publish("t", &Event::new().data("0")).await.unwrap();
    for i in 1..=3 {
        hub.publish("t", &Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    let mut sub = hub.subscribe("t", Some(first.id())).await.unwrap();
    for i in 1..=3 {
        let frame = sub.next().await.unwrap().unwrap();
        assert_eq!(data(&frame), [i.to_string()]);
    }
}

/// A live backlog is drained a page per wake-up, not cut by tokio's cooperative budget (128
/// units per task turn, one per `recv`): a subscriber whose turn comes seldom (a storm) must
/// get more than 128 events per turn, or it falls further behind every turn while events
/// come faster than that.
#[tokio::test]
async fn a_live_backlog_fills_a_page_per_turn_not_the_tasks_budget() {
    let hub = Hub::new().capacity(4096);
    hub.publish("t", &Event::new().data("before"))
        .await
        .unwrap();
    let mut sub = hub.subscribe("t", None).await.unwrap();
    let total = 2 * REPLAY_PAGE + 44;
    for i in 0..total {
        hub.publish("t", &Event::new().data(i.to_string()))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    while seen.len() < total {
        // Each frame in a fresh task turn, with a full budget.
        let frame = tokio::spawn(async move {
            let frame = body_frame(&mut sub).await;
            (frame, sub)
        });
        let (frame, back) = frame.await.unwrap();
        sub = back;
        let events = data(&frame);
        sizes.push(events.len());
        seen.extend(events);
    }
    let expected: Vec<String> = (0..total).map(|i| i.to_string()).collect();
    assert_eq!(seen, expected);
    assert_eq!(
        sizes,
        [REPLAY_PAGE, REPLAY_PAGE, 44],
        "events per body frame"
    );
}
