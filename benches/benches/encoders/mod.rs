//! The event shapes and the encoders that the `encode` and `alloc_count` benches share.
//!
//! Every encoder builds its framework's event from the same borrowed inputs on every call and
//! hands back the encoded bytes, exactly as that framework would put them on the wire.

use std::convert::Infallible;

use axum::response::IntoResponse as _;
use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt as _, stream};
use http_body_util::BodyExt as _;
use tower_sse_core::{Decoded, Decoder, Event};

mod large_data;

use large_data::large_data;

/// The fields of one benchmarked event.
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    pub(crate) name: &'static str,
    pub(crate) id: &'static str,
    pub(crate) event: &'static str,
    pub(crate) data: String,
}

/// The two shapes of the issue: a small JSON event and a 4 KiB one with 32 line breaks.
pub(crate) fn shapes() -> [Shape; 2] {
    let small = r#"{"type":"quote","sym":"ACME","bid":101.25,"ask":101.5,"seq":424}"#;
    assert_eq!(small.len(), 64);

    [
        Shape {
            name: "small",
            id: "12345",
            event: "update",
            data: small.to_owned(),
        },
        Shape {
            name: "large",
            id: "12345",
            event: "update",
            data: large_data(),
        },
    ]
}

/// The shape as a tower-sse-core event, every field borrowed.
pub(crate) fn event(shape: &Shape) -> Event<'_> {
    Event::new()
        .id(shape.id)
        .expect("valid id")
        .event(shape.event)
        .expect("valid event type")
        .data(shape.data.as_str())
}

/// tower-sse-core: builds the event (borrowing every field) and appends it to `buf`.
pub(crate) fn tower_sse_core(shape: &Shape, buf: &mut BytesMut) {
    event(shape).encode(buf);
}

/// tower-sse-core: builds the event and encodes it into its own `Bytes` with
/// `Event::to_bytes` (one allocation of exactly the event's length): an owned `Bytes` per
/// event, which is what a response body frame needs.
pub(crate) fn tower_sse_core_to_bytes(shape: &Shape) -> Bytes {
    event(shape).to_bytes()
}

/// The shape as axum's event.
pub(crate) fn axum_event(shape: &Shape) -> axum::response::sse::Event {
    axum::response::sse::Event::default()
        .id(shape.id)
        .event(shape.event)
        .data(&shape.data)
}

/// The next frame of an `Sse` body, which is ready at once for a stream that is.
fn next_frame(body: &mut axum::body::Body) -> Bytes {
    body.frame()
        .now_or_never()
        .expect("the stream is always ready")
        .expect("the stream never ends")
        .expect("the stream never fails")
        .into_data()
        .expect("an Sse body yields data frames")
}

/// axum 0.8 with the `Sse` response built once: a body over an endless stream that builds
/// one `axum::response::sse::Event` each time it is polled, so each frame costs one event's
/// construction and encoding (axum has no public encode function; the body is the only way
/// to get an event's bytes).
#[derive(Debug)]
pub(crate) struct AxumStream {
    body: axum::body::Body,
}

impl AxumStream {
    pub(crate) fn new(shape: &Shape) -> Self {
        let shape = shape.clone();
        let events = stream::repeat_with(move || Ok::<_, Infallible>(axum_event(&shape)));
        let body = axum::response::sse::Sse::new(events)
            .into_response()
            .into_body();
        Self { body }
    }

    pub(crate) fn next(&mut self) -> Bytes {
        next_frame(&mut self.body)
    }
}

/// axum 0.8 with a whole `Sse` response per event (a one-item stream), the worst case.
pub(crate) fn axum_response_per_event(shape: &Shape) -> Bytes {
    let event = axum_event(shape);
    let mut body = axum::response::sse::Sse::new(stream::iter([Ok::<_, Infallible>(event)]))
        .into_response()
        .into_body();
    next_frame(&mut body)
}

/// warp 0.4: `warp::sse::reply` turns each event into its body chunk with `to_string()`.
pub(crate) fn warp(shape: &Shape) -> Bytes {
    let event = warp::sse::Event::default()
        .id(shape.id)
        .event(shape.event)
        .data(shape.data.as_str());
    Bytes::from(event.to_string())
}

/// poem 3: `SSE::into_response` maps each event to `Bytes::from(event.to_string())`.
pub(crate) fn poem(shape: &Shape) -> Bytes {
    let event = poem::web::sse::Event::message(shape.data.as_str())
        .id(shape.id)
        .event_type(shape.event);
    Bytes::from(event.to_string())
}

/// The limit: copying bytes that are already encoded into a reused buffer.
pub(crate) fn memcpy(encoded: &[u8], buf: &mut BytesMut) {
    buf.clear();
    buf.extend_from_slice(encoded);
}

/// Checks that every encoder's bytes decode to the same one event, so that the benchmark
/// compares equal work. Panics otherwise.
pub(crate) fn check_equivalent(shape: &Shape) {
    let mut ours = BytesMut::new();
    tower_sse_core(shape, &mut ours);
    let outputs = [
        ("tower-sse-core", ours.freeze()),
        ("tower-sse-core (to_bytes)", tower_sse_core_to_bytes(shape)),
        ("axum", AxumStream::new(shape).next()),
        ("axum (Sse per event)", axum_response_per_event(shape)),
        ("warp", warp(shape)),
        ("poem", poem(shape)),
    ];
    for (name, bytes) in outputs {
        let mut decoder = Decoder::new();
        decoder.feed(&bytes);
        let Ok(Some(Decoded::Event(event))) = decoder.decode() else {
            panic!("{name}: no event in {bytes:?}");
        };
        assert_eq!(
            (event.event_type(), event.data(), event.last_event_id()),
            (shape.event, shape.data.as_str(), shape.id),
            "{name}"
        );
        assert!(
            matches!(decoder.decode(), Ok(None)),
            "{name}: trailing bytes"
        );
    }
}
