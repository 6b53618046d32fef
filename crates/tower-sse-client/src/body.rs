//! [`BodyEvents`]: the events of one response body, without reconnection.

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::Buf;
use futures_util::Stream;
use http_body::Body;
use tower_sse_core::{DecodeError, Decoded, Decoder};

use crate::{BoxError, Error, Event};

/// The events of one `http_body::Body`, decoded incrementally as frames arrive: for a
/// response you already have (a test, or a client of your own). It does not reconnect; the
/// stream ends with the body. An unterminated last event is discarded, as browsers do.
///
/// Items are `Event::Message` (and `Event::Comment` with
/// [`comments`](Self::comments)), or `Error::Body` / `Error::EventTooLarge`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use futures_util::StreamExt;
/// use http_body_util::Full;
/// use tower_sse_client::{BodyEvents, Event};
///
/// let body = Full::new(bytes::Bytes::from("id: 1\ndata: hi\n\n"));
/// let mut events = BodyEvents::new(body);
/// let Some(Ok(Event::Message(event))) = events.next().await else { panic!() };
/// assert_eq!((event.data(), event.last_event_id()), ("hi", "1"));
/// assert!(events.next().await.is_none());
/// # }
/// ```
pub struct BodyEvents<B> {
    body: Pin<Box<B>>,
    decoder: Decoder,
    comments: bool,
    done: bool,
}

impl<B> fmt::Debug for BodyEvents<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyEvents")
            .field("decoder", &self.decoder)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<B> BodyEvents<B> {
    /// Decodes `body` with the client's default maximum event size (16 MiB).
    pub fn new(body: B) -> Self {
        Self {
            body: Box::pin(body),
            decoder: Decoder::new().max_event_size(crate::DEFAULT_MAX_EVENT_SIZE),
            comments: false,
            done: false,
        }
    }

    /// Sets the largest event held in memory. Call before polling.
    #[must_use]
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.decoder = Decoder::new()
            .max_event_size(bytes)
            .report_comments(self.comments);
        self
    }

    /// Yields comment lines as [`Event::Comment`] (default: skipped). Call before polling.
    #[must_use]
    pub fn comments(mut self, on: bool) -> Self {
        self.comments = on;
        self.decoder = std::mem::take(&mut self.decoder).report_comments(on);
        self
    }

    /// The last event id so far.
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }
}

impl<B> Stream for BodyEvents<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.decoder.decode() {
                Ok(Some(Decoded::Event(event))) => {
                    return Poll::Ready(Some(Ok(Event::Message(event))));
                }
                Ok(Some(Decoded::Comment(c))) => return Poll::Ready(Some(Ok(Event::Comment(c)))),
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(DecodeError::EventTooLarge { limit }) => {
                    return Poll::Ready(Some(Err(Error::EventTooLarge { limit })));
                }
                Err(_) => continue,
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(this.body.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            let n = chunk.len();
                            this.decoder.feed(chunk);
                            data.advance(n);
                        }
                    }
                }
                Some(Err(e)) => {
                    this.done = true;
                    this.decoder.finish();
                    return Poll::Ready(Some(Err(Error::Body(e.into()))));
                }
                None => {
                    this.done = true;
                    this.decoder.finish();
                }
            }
        }
    }
}
