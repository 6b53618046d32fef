//! [`Events`]: a stream of your own [`Event`]s as a poem response.

use std::fmt;

use bytes::BytesMut;
use futures_util::{Stream, StreamExt};
use poem::{Body, IntoResponse, Response};
use tower_sse_core::{Event, EventItem};

/// A stream of [`Event`]s (or of `Result<Event, E>`) as a poem response: `200 OK`,
/// `Content-Type: text/event-stream`, `Cache-Control: no-cache`, and every event encoded by
/// the core's encoder as it comes.
///
/// The counterpart of poem's `SSE`, for events of [`tower_sse_core`]: behind
/// [`SseMiddleware`](crate::SseMiddleware) it gets priming, heartbeats, the retry hint and
/// shutdown.
///
/// # Errors end the stream
///
/// An event cannot fail to encode: [`Event`]'s builders reject what the wire format cannot
/// carry. An `Err` item ends the response body with that error, and the server drops the
/// connection without the body's normal end: the client sees the stream fail (an
/// `EventSource` reconnects, with its `Last-Event-ID`) instead of an event silently missing.
///
/// ```
/// use futures_util::{Stream, StreamExt};
/// use poem::handler;
/// use tower_sse_poem::{Event, Events};
///
/// #[handler]
/// fn ticks() -> Events<impl Stream<Item = Event<'static>>> {
///     let ticks = futures_util::stream::iter(1..=3)
///         .map(|n| Event::new().id(n.to_string()).unwrap().data("tick"));
///     Events::new(ticks)
/// }
/// # let _ = poem::Route::new().at("/", poem::get(ticks));
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
    <S::Item as EventItem>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn into_response(self) -> Response {
        let mut buf = BytesMut::new();
        let frames = self.stream.map(move |item| {
            let event: Event<'static> = item.into_event().map_err(std::io::Error::other)?;
            event.encode(&mut buf);
            Ok::<_, std::io::Error>(buf.split().freeze())
        });
        Response::builder()
            .content_type("text/event-stream")
            .header(http::header::CACHE_CONTROL, "no-cache")
            .body(Body::from_bytes_stream(frames))
    }
}
