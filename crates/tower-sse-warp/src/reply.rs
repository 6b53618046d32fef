//! [`EventStream`]: a warp reply that streams any body, and [`EventStreamService`], which
//! puts that body in place after `warp::service`.
//!
//! warp's reply body cannot stream an arbitrary body, so the reply carries it beside the
//! response, in a request-scoped slot in the response's extensions (warp keeps extensions of
//! an `http::Response`), and the service between `warp::service` and the layer swaps it in.
//! Nothing is re-encoded: a [`Hub`](tower_sse::Hub) subscription's shared frames go to the
//! client as they are.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt, TryStreamExt};
use http::{HeaderValue, Request, Response, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use pin_project_lite::pin_project;
use tower_service::Service;
use tower_sse::Subscription;
use tower_sse_core::{Decoded, Decoder, Event, EventItem};

use crate::BoxError;

type Boxed = UnsyncBoxBody<Bytes, BoxError>;

/// Where an [`EventStream`] leaves its body for [`EventStreamService`]. Extensions must be
/// `Clone + Sync`; the body is neither, so it sits behind a shared, taken-once slot.
#[derive(Clone)]
struct Slot(Arc<Mutex<Option<Boxed>>>);

/// A `text/event-stream` reply whose body is any [`http_body::Body`] or stream of bytes, for
/// example a [`Subscription`].
///
/// Through [`EventStreamService`] (which [`serve`](crate::serve) puts in place) the body
/// reaches the client as it is, byte for byte, behind [`SseLayer`](tower_sse::SseLayer).
/// Served any other way (plain `warp::serve`, `warp::service` without it), warp's reply body
/// cannot carry an arbitrary body, so the reply falls back to `warp::sse::reply`: the body is
/// decoded with the core's [`Decoder`] and each event re-encoded by warp. The client gets the
/// same events (type, data, last event id, `retry`); comments are dropped, and the frames are
/// parsed and encoded again per client. It works, but serve through
/// [`serve`](crate::serve) (or add [`EventStreamService`]) for the layer and the shared
/// frames.
///
/// ```
/// use std::convert::Infallible;
///
/// use tower_sse_warp::{EventStream, warp::Filter};
///
/// let route = warp::path("countdown").map(|| {
///     let events = ["data: 3\n\n", "data: 2\n\n", "data: 1\n\n"];
///     EventStream::from_stream(futures_util::stream::iter(events).map(Ok::<_, Infallible>))
/// });
/// # use futures_util::StreamExt;
/// # let _ = route;
/// ```
pub struct EventStream {
    body: Boxed,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream").finish_non_exhaustive()
    }
}

impl EventStream {
    /// A reply streaming `body`, which must already be event-stream text.
    pub fn new<B>(body: B) -> Self
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Self {
            body: body.map_err(Into::into).boxed_unsync(),
        }
    }

    /// A reply streaming `stream`'s chunks, which must already be event-stream text.
    pub fn from_stream<S, T, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        T: Into<Bytes> + 'static,
        E: Into<BoxError> + 'static,
    {
        let frames = stream
            .map_ok(|chunk| Frame::data(chunk.into()))
            .map_err(Into::into);
        Self::new(StreamBody::new(frames))
    }
}

impl EventStream {
    /// A reply streaming `stream`'s [`Event`](tower_sse_core::Event)s (or
    /// `Result<Event, E>`s), each encoded by the core's encoder as it comes: the counterpart
    /// of `warp::sse::reply` for events of [`tower_sse_core`].
    ///
    /// An event cannot fail to encode ([`Event`](tower_sse_core::Event)'s builders reject
    /// what the wire format cannot carry); an `Err` item ends the body with that error and the
    /// server drops the connection, so the client sees the stream fail (an `EventSource`
    /// reconnects with its `Last-Event-ID`) instead of an event silently missing.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use tower_sse_warp::{Event, EventStream, warp::Filter};
    ///
    /// let route = warp::path("ticks").map(|| {
    ///     let ticks = futures_util::stream::iter(1..=3)
    ///         .map(|n| Event::new().id(n.to_string()).unwrap().data("tick"));
    ///     EventStream::from_events(ticks)
    /// });
    /// # let _ = route;
    /// ```
    pub fn from_events<S>(stream: S) -> Self
    where
        S: Stream + Send + 'static,
        S::Item: EventItem,
        <S::Item as EventItem>::Error: Into<BoxError>,
    {
        let mut buf = BytesMut::new();
        let frames = stream.map(move |item| {
            let event: Event<'static> = item.into_event().map_err(Into::into)?;
            event.encode(&mut buf);
            Ok::<_, BoxError>(buf.split().freeze())
        });
        Self::from_stream(frames)
    }
}

impl From<Subscription> for EventStream {
    fn from(subscription: Subscription) -> Self {
        Self::new(subscription)
    }
}

impl warp::Reply for EventStream {
    fn into_response(self) -> warp::reply::Response {
        let slot = Slot(Arc::new(Mutex::new(Some(self.body))));
        // The body warp serves when no `EventStreamService` takes the slot first: it takes the
        // body on its first poll and re-encodes its events (see the type's documentation).
        let fallback = Fallback {
            slot: slot.clone(),
            decoder: Decoder::new().max_event_size(usize::MAX),
            ended: false,
        };
        let mut response = warp::Reply::into_response(warp::sse::reply(fallback.into_stream()));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response.extensions_mut().insert(slot);
        response
    }
}

/// The body's error, as `warp::sse::reply` needs a sized error type.
#[derive(Debug)]
struct FallbackError(BoxError);

impl fmt::Display for FallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for FallbackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// Decodes the body left in the slot into warp's events, for a reply served without
/// [`EventStreamService`].
struct Fallback {
    slot: Slot,
    decoder: Decoder,
    ended: bool,
}

impl Fallback {
    fn into_stream(
        self,
    ) -> impl Stream<Item = Result<warp::sse::Event, FallbackError>> + Send + Sync + 'static {
        futures_util::stream::unfold(self, |mut state| async move {
            let item = std::future::poll_fn(|cx| state.poll_event(cx)).await?;
            Some((item.map_err(FallbackError), state))
        })
    }

    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<warp::sse::Event, BoxError>>> {
        loop {
            match self.decoder.decode() {
                Ok(Some(Decoded::Event(event))) => {
                    let mut out = warp::sse::Event::default().data(event.data());
                    if event.event_type() != "message" {
                        out = out.event(event.event_type());
                    }
                    if !event.last_event_id().is_empty() {
                        out = out.id(event.last_event_id());
                    }
                    return Poll::Ready(Some(Ok(out)));
                }
                Ok(Some(Decoded::Retry(delay))) => {
                    return Poll::Ready(Some(Ok(warp::sse::Event::default().retry(delay))));
                }
                Ok(Some(_)) => continue,
                // No size limit is set, so this is unreachable; end the stream if not.
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(None) if self.ended => return Poll::Ready(None),
                Ok(None) => {}
            }
            let mut slot = self.slot.0.lock().unwrap_or_else(|e| e.into_inner());
            let Some(body) = slot.as_mut() else {
                // Taken by `EventStreamService`: this body is not the one served.
                return Poll::Ready(None);
            };
            match std::task::ready!(Pin::new(body).poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.feed(&data);
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    self.decoder.finish();
                    self.ended = true;
                }
            }
        }
    }
}

/// Middleware between `warp::service(filter)` and [`SseLayer`](tower_sse::SseLayer) that
/// streams the body of every [`EventStream`] reply; other responses pass through.
///
/// [`serve`](crate::serve) uses it; add it yourself when you build your own hyper stack:
/// `layer.layer(EventStreamService::new(warp::service(filter)))`.
#[derive(Clone, Debug)]
pub struct EventStreamService<S> {
    inner: S,
}

impl<S> EventStreamService<S> {
    /// Wraps `inner`, usually `warp::service(filter)`.
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for EventStreamService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<EventStreamBody<ResBody>>;
    type Error = S::Error;
    type Future = EventStreamFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        EventStreamFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`EventStreamService`].
    #[derive(Debug)]
    pub struct EventStreamFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for EventStreamFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<EventStreamBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let response = std::task::ready!(self.project().inner.poll(cx))?;
        let (mut parts, body) = response.into_parts();
        let stream = parts
            .extensions
            .remove::<Slot>()
            .and_then(|slot| slot.0.lock().unwrap_or_else(|e| e.into_inner()).take());
        let body = match stream {
            Some(body) => Kind::Stream { body },
            None => Kind::Reply { body },
        };
        Poll::Ready(Ok(Response::from_parts(
            parts,
            EventStreamBody { kind: body },
        )))
    }
}

pin_project! {
    /// The response body of [`EventStreamService`]: warp's own, or an [`EventStream`]'s.
    pub struct EventStreamBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Reply {
            #[pin]
            body: B,
        },
        Stream {
            body: Boxed,
        },
    }
}

impl<B> EventStreamBody<B> {
    /// Whether this is the body of an [`EventStream`] reply.
    pub fn is_event_stream(&self) -> bool {
        matches!(self.kind, Kind::Stream { .. })
    }
}

impl<B> fmt::Debug for EventStreamBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStreamBody")
            .field("is_event_stream", &self.is_event_stream())
            .finish_non_exhaustive()
    }
}

impl<B> Body for EventStreamBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Reply { body } => body.poll_frame(cx).map_err(Into::into),
            KindProj::Stream { body } => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Reply { body } => body.is_end_stream(),
            Kind::Stream { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Reply { body } => body.size_hint(),
            Kind::Stream { body } => body.size_hint(),
        }
    }
}
