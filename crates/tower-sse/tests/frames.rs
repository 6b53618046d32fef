//! How the layer joins the frames a handler has ready: large events are passed on without a
//! copy, small ones are joined up to the limit, every byte in order.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::{event_stream, through};
use futures_util::stream;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tower_sse::{DEFAULT_COALESCE_LIMIT, SseLayer};
use tower_sse_core::Event;

/// A body whose frames are all ready at once.
fn ready(
    frames: Vec<Bytes>,
) -> StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>> {
    StreamBody::new(stream::iter(frames.into_iter().map(|b| Ok(Frame::data(b)))))
}

/// Every data frame of the layer's body, the priming frame first.
async fn frames(layer: SseLayer, input: Vec<Bytes>) -> Vec<Bytes> {
    let response = through(layer, event_stream(ready(input))).await;
    let mut body = response.into_body();
    let mut out = Vec::new();
    while let Some(frame) = body.frame().await {
        out.push(frame.unwrap().into_data().unwrap());
    }
    out
}

fn large_event(n: usize) -> Bytes {
    let data = format!("{n:04}{}\n", "x".repeat(127)).repeat(33);
    Event::new()
        .id(n.to_string())
        .unwrap()
        .data(data)
        .to_bytes()
}

fn small_event(n: usize) -> Bytes {
    Event::new().data(format!("{{\"n\":{n}}}")).to_bytes()
}

#[tokio::test]
async fn large_events_ready_together_are_passed_on_uncopied() {
    assert_eq!(DEFAULT_COALESCE_LIMIT, 4096);
    let input: Vec<Bytes> = (0..5).map(large_event).collect();
    assert!(input.iter().all(|e| e.len() >= DEFAULT_COALESCE_LIMIT));
    let out = frames(SseLayer::new(), input.clone()).await;
    assert_eq!(out.len(), 1 + input.len(), "one frame per large event");
    for (sent, got) in input.iter().zip(&out[1..]) {
        assert_eq!(
            got.as_ptr(),
            sent.as_ptr(),
            "the handler's bytes, not a copy"
        );
        assert_eq!(got.len(), sent.len());
    }
}

#[tokio::test]
async fn small_events_are_joined_up_to_the_limit_in_order() {
    let input: Vec<Bytes> = (0..1000).map(small_event).collect();
    let longest = input.iter().map(Bytes::len).max().unwrap();
    let out = frames(SseLayer::new(), input.clone()).await;
    let joined = &out[1..];
    // Joined, past the handful of frames whose handles wait before the copy, too.
    assert!(joined.len() < input.len() / 20, "{} frames", joined.len());
    for frame in &joined[..joined.len() - 1] {
        assert!(frame.len() >= DEFAULT_COALESCE_LIMIT);
        assert!(frame.len() < DEFAULT_COALESCE_LIMIT + longest);
    }
    assert_eq!(joined.concat(), input.concat());
}

#[tokio::test]
async fn a_large_event_after_small_ones_ends_their_frame() {
    let mut input = vec![small_event(1), small_event(2)];
    input.push(large_event(3));
    input.push(small_event(4));
    let out = frames(SseLayer::new(), input.clone()).await;
    let sizes: Vec<usize> = out[1..].iter().map(Bytes::len).collect();
    assert_eq!(
        sizes,
        [
            input[0].len() + input[1].len() + input[2].len(),
            input[3].len()
        ]
    );
    assert_eq!(out[1..].concat(), input.concat());
}

#[tokio::test]
async fn a_larger_limit_joins_large_events() {
    let input: Vec<Bytes> = (0..20).map(large_event).collect();
    let out = frames(SseLayer::new().coalesce_limit(32 * 1024), input.clone()).await;
    let sizes: Vec<usize> = out[1..].iter().map(Bytes::len).collect();
    assert!(sizes.len() < input.len() / 4, "{sizes:?}");
    assert_eq!(out[1..].concat(), input.concat());
}
