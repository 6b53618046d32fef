//! [`Events`]: a stream of your own [`Event`]s as an axum response.

use std::fmt;

use axum::{
    BoxError,
    body::Body,
    http::{
        HeaderValue,
        header::{CACHE_CONTROL, CONTENT_TYPE},
    },
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use tower_sse_core::{Event, EventItem};

/// A stream of [`Event`]s (or of `Result<Event, E>`) as an axum response: `200 OK`,
/// `Content-Type: text/event-stream`, `Cache-Control: no-cache`, and every event encoded by
/// the core's encoder as it comes.
///
/// The counterpart of axum's `Sse`, for events of [`tower_sse_core`]: behind
/// [`SseLayer`](tower_sse::SseLayer) it gets priming, heartbeats, the retry hint and shutdown,
/// so it has no keep-alive of its own.
///
/// # Errors end the stream
///
/// An event cannot fail to encode: [`Event`]'s builders reject what the wire format cannot
/// carry. An `Err` item ends the response body with that error, and the server drops the
/// connection without the body's normal end: the client sees the stream fail (an
/// `EventSource` reconnects, with its `Last-Event-ID`) instead of an event silently missing.
///
/// ```
/// use std::time::Duration;
///
/// use futures_util::{Stream, StreamExt};
/// use tower_sse_axum::{Event, Events};
///
/// async fn ticks() -> Events<impl Stream<Item = Event<'static>>> {
///     let ticks = futures_util::stream::iter(1..=3)
///         .map(|n| Event::new().id(n.to_string()).unwrap().data("tick"));
///     Events::new(ticks)
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(ticks));
/// ```
pub struct Events<S> {
    stream: S,
}

impl<S> Events<S> {
    /// A response streaming `stream`'s events.
    pub fn new(stream: S) -> Self
    where
        S: Stream,
        S::Item: EventItem,
    {
        Self { stream }
    }
}

impl<S> fmt::Debug for Events<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl<S> IntoResponse for Events<S>
where
    S: Stream + Send + 'static,
    S::Item: EventItem,
    <S::Item as EventItem>::Error: Into<BoxError>,
{
    fn into_response(self) -> Response {
        let mut buf = BytesMut::new();
        let frames = self.stream.map(move |item| {
            let event: Event<'static> = item.into_event()?;
            event.encode(&mut buf);
            Ok::<_, <S::Item as EventItem>::Error>(buf.split().freeze())
        });
        let mut response = Body::from_stream(frames).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}
