//! [`GenerationStream`]: one reader's view of a generation, ending after its terminal event,
//! writing tokens that arrive close together in one write, optionally padded.

use std::{
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, Response, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Interval, MissedTickBehavior, Sleep};

use super::{Padding, TERMINAL_EVENTS};
use crate::{Subscription, SubscriptionError};

/// Called by a stream while it is open, so that the producer knows a client reads.
pub(crate) type Touch = Arc<dyn Fn() + Send + Sync>;

/// One reader's event stream of a generation, from [`Generations::open`](super::Generations::open).
///
/// It yields the encoded events after the reader's position and ends right after the
/// terminal event (`done`, `error` or `cancelled`), so the response ends with it. Events
/// ready together are written together (up to the batch size), after waiting up to the
/// configured batch window for more; each event is padded when padding is configured.
pub struct GenerationStream {
    subscription: Subscription,
    /// Events with a sequence number at or below this one are skipped (`starting_after`).
    skip_through: Option<u64>,
    batch: BytesMut,
    max_batch: usize,
    window: Duration,
    linger: Option<Pin<Box<Sleep>>>,
    padding: Option<Padding>,
    /// The terminal event has been read: nothing follows it.
    finished: bool,
    /// The subscription ended or failed; the error is returned after the batch.
    error: Option<SubscriptionError>,
    ended: bool,
    presence: Option<(Interval, Touch)>,
}

impl fmt::Debug for GenerationStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerationStream")
            .field("skip_through", &self.skip_through)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl GenerationStream {
    pub(crate) fn new(
        subscription: Subscription,
        skip_through: Option<u64>,
        max_batch: usize,
        window: Duration,
        padding: Option<Padding>,
        presence: Option<(Duration, Touch)>,
    ) -> Self {
        let presence = presence.map(|(every, touch)| {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            (interval, touch)
        });
        Self {
            subscription,
            skip_through,
            batch: BytesMut::new(),
            max_batch: max_batch.max(1),
            window,
            linger: None,
            padding,
            finished: false,
            error: None,
            ended: false,
            presence,
        }
    }

    /// A `200 OK` response with `Content-Type: text/event-stream` and this stream as its body.
    pub fn into_response(self) -> Response<Self> {
        let mut response = Response::new(self);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response
    }

    /// Adds one event to the batch, unless it is skipped.
    fn push(&mut self, frame: &[u8]) {
        let info = FrameInfo::parse(frame);
        if let (Some(skip), Some(n)) = (self.skip_through, info.sequence_number) {
            if n <= skip && !info.terminal {
                return;
            }
        }
        if info.terminal {
            self.finished = true;
        }
        if let Some(padding) = &self.padding {
            let fill = padding.padded_len(frame.len()) - frame.len() - 2;
            self.batch.reserve(fill + 2 + frame.len());
            self.batch.put_u8(b':');
            self.batch.put_bytes(b' ', fill);
            self.batch.put_u8(b'\n');
        }
        self.batch.extend_from_slice(frame);
    }

    fn poll_presence(&mut self, cx: &mut Context<'_>) {
        if let Some((interval, touch)) = &mut self.presence {
            while interval.poll_tick(cx).is_ready() {
                touch();
            }
        }
    }
}

impl Stream for GenerationStream {
    type Item = Result<Bytes, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.poll_presence(cx);
        // Gather what is ready, up to the batch size.
        while !this.finished && !this.ended && this.batch.len() < this.max_batch {
            match this.subscription.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(frame))) => this.push(&frame),
                Poll::Ready(Some(Err(e))) => {
                    this.error = Some(e);
                    this.ended = true;
                }
                Poll::Ready(None) => this.ended = true,
                Poll::Pending => break,
            }
        }
        if !this.batch.is_empty() {
            let full = this.finished || this.ended || this.batch.len() >= this.max_batch;
            if !full && !this.window.is_zero() {
                let linger = this
                    .linger
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(this.window)));
                if linger.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            this.linger = None;
            return Poll::Ready(Some(Ok(this.batch.split().freeze())));
        }
        if let Some(e) = this.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        if this.finished || this.ended {
            this.presence = None;
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl Body for GenerationStream {
    type Data = Bytes;
    type Error = SubscriptionError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SubscriptionError>>> {
        self.poll_next(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        (self.finished || self.ended) && self.batch.is_empty() && self.error.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// What the stream needs to know of an encoded event: is it terminal, and its sequence number.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct FrameInfo {
    pub(crate) terminal: bool,
    pub(crate) sequence_number: Option<u64>,
}

impl FrameInfo {
    /// Reads the `event` field and the number after `data: {"sequence_number":` of one frame
    /// as the log stores it (written by this module's sink, so one field per line, LF only).
    pub(crate) fn parse(frame: &[u8]) -> Self {
        let mut info = Self::default();
        for line in frame.split(|&b| b == b'\n') {
            if let Some(name) = line.strip_prefix(b"event: ") {
                info.terminal = TERMINAL_EVENTS.iter().any(|t| t.as_bytes() == name);
            } else if let Some(rest) = line.strip_prefix(b"data: {\"sequence_number\":") {
                if info.sequence_number.is_none() {
                    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                    info.sequence_number = std::str::from_utf8(&rest[..digits])
                        .ok()
                        .and_then(|d| d.parse().ok());
                }
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_info_reads_the_type_and_the_sequence_number() {
        let token = b"id: 1-0\nevent: token\ndata: {\"sequence_number\":12,\"text\":\"a\"}\n\n";
        assert_eq!(
            FrameInfo::parse(token),
            FrameInfo {
                terminal: false,
                sequence_number: Some(12)
            }
        );
        let done = b"id: 1-1\nevent: done\ndata: {\"sequence_number\":13}\n\n";
        assert_eq!(
            FrameInfo::parse(done),
            FrameInfo {
                terminal: true,
                sequence_number: Some(13)
            }
        );
        // A token whose text looks like a terminal event is not one.
        let tricky =
            b"id: 1-2\nevent: token\ndata: {\"sequence_number\":1,\"text\":\"\\nevent: done\"}\n\n";
        assert!(!FrameInfo::parse(tricky).terminal);
        assert_eq!(FrameInfo::parse(b":gap\n\n"), FrameInfo::default());
    }

    #[test]
    fn padding_reaches_the_bucket() {
        let padding = Padding::buckets(vec![64, 128]);
        assert_eq!(padding.padded_len(10), 64);
        assert_eq!(padding.padded_len(62), 64);
        assert_eq!(padding.padded_len(63), 128);
        assert_eq!(padding.padded_len(127), 256);
        assert_eq!(padding.padded_len(300), 384);
    }
}
