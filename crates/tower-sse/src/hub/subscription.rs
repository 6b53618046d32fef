//! [`Subscription`]: one subscriber's replay-then-live feed of encoded frames.

use std::{
    collections::VecDeque,
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http::{HeaderValue, Response, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::broadcast::{self, error::RecvError};
use tower_sse_core::{EventLog, LoggedEvent, ReplayOutcome};

use super::{Inner, Replayed, Topic};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A subscriber's feed: the replayed frames, then live ones, as shared [`Bytes`].
///
/// It is a [`Stream`] of frames and an [`http_body::Body`], so it can be returned as a
/// response body as it is ([`into_response`](Self::into_response)) and wrapped by
/// [`SseLayer`](crate::SseLayer) for heartbeats and headers. Dropping it unsubscribes.
///
/// The feed ends only with an error: when catching up from the log fails (for example the
/// store went away), the error is yielded and the feed ends, so the client reconnects and
/// resumes from its last event id.
pub struct Subscription {
    outcome: Option<ReplayOutcome>,
    // One allocation per subscription: the state machine of an async loop.
    feed: Pin<Box<dyn Stream<Item = Result<Bytes, SubscriptionError>> + Send>>,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The log failed while a subscriber was catching up.
#[derive(Debug)]
pub struct SubscriptionError(BoxError);

impl fmt::Display for SubscriptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "subscription could not catch up from the event log: {}",
            self.0
        )
    }
}

impl std::error::Error for SubscriptionError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl Subscription {
    pub(super) fn new<L: EventLog>(
        inner: Arc<Inner<L>>,
        topic_name: Box<str>,
        topic: Arc<Topic>,
        receiver: broadcast::Receiver<LoggedEvent>,
        cursor: Option<Arc<str>>,
        replay: Option<Replayed>,
    ) -> Self {
        let (outcome, pending, last_id) = match replay {
            Some(replay) => {
                // An unknown cursor is no position: nothing to resume from, or to skip.
                let cursor =
                    cursor.filter(|_| !matches!(replay.outcome, ReplayOutcome::Unknown(_)));
                let last_id = replay.last_id.or(cursor);
                (Some(replay.outcome), replay.frames.into(), last_id)
            }
            None => (None, VecDeque::new(), None),
        };
        let state = Feed {
            inner,
            topic_name,
            topic,
            receiver: Some(receiver),
            pending,
            last_id,
        };
        let feed = stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let item = state.next().await;
            let keep = item.is_ok().then_some(state);
            Some((item, keep))
        });
        Self {
            outcome,
            feed: Box::pin(feed),
        }
    }

    /// How the cursor given to [`Hub::subscribe`](crate::Hub::subscribe) related to the log;
    /// `None` when no cursor was given.
    pub fn outcome(&self) -> Option<&ReplayOutcome> {
        self.outcome.as_ref()
    }

    /// A `200 OK` response with `Content-Type: text/event-stream` and this feed as its body.
    pub fn into_response(self) -> Response<Self> {
        let mut response = Response::new(self);
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        response
    }
}

impl Stream for Subscription {
    type Item = Result<Bytes, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.feed.poll_next_unpin(cx)
    }
}

impl Body for Subscription {
    type Data = Bytes;
    type Error = SubscriptionError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SubscriptionError>>> {
        self.feed
            .poll_next_unpin(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

struct Feed<L: EventLog> {
    inner: Arc<Inner<L>>,
    topic_name: Box<str>,
    topic: Arc<Topic>,
    /// Always `Some` but while dropping, so that the topic sees the receiver gone.
    receiver: Option<broadcast::Receiver<LoggedEvent>>,
    pending: VecDeque<Bytes>,
    last_id: Option<Arc<str>>,
}

impl<L: EventLog> Feed<L> {
    async fn next(&mut self) -> Result<Bytes, SubscriptionError> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(frame);
            }
            let receiver = self.receiver.as_mut().expect("present until drop");
            match receiver.recv().await {
                Ok(event) => {
                    if self
                        .inner
                        .already_delivered(event.id(), self.last_id.as_ref())
                    {
                        continue;
                    }
                    let (id, frame) = event.into_parts();
                    self.last_id = Some(id);
                    return Ok(frame);
                }
                // Lagged: the ring moved past this subscriber. Closed: a live log's tail
                // started again after the log lost events, and replaced the ring.
                Err(RecvError::Lagged(_) | RecvError::Closed) => self.catch_up().await?,
            }
        }
    }

    /// The ring moved past this subscriber: replay from the log after the last delivered id
    /// and rejoin the live feed, under the topic lock so nothing is missed or repeated.
    async fn catch_up(&mut self) -> Result<(), SubscriptionError> {
        let live = self.topic.live.lock().await;
        let upto = live.tail.as_ref().map(|tail| tail.position.clone());
        match self.last_id.clone() {
            Some(cursor) => {
                let replay = self
                    .inner
                    .replay(&self.topic_name, &cursor, upto.as_ref())
                    .await
                    .map_err(|e| SubscriptionError(Box::new(e)))?;
                self.pending.extend(replay.frames);
                if replay.last_id.is_some() {
                    self.last_id = replay.last_id;
                }
            }
            // Nothing delivered yet and no cursor: there is no position to resume from.
            None => self
                .pending
                .push_back(self.inner.gap.frame(crate::GapReason::TooFarBehind, None)),
        }
        let sender = live
            .sender
            .as_ref()
            .expect("a sender exists while a receiver does");
        self.receiver = Some(sender.subscribe());
        Ok(())
    }
}

impl<L: EventLog> Drop for Feed<L> {
    fn drop(&mut self) {
        drop(self.receiver.take());
        self.inner.release(&self.topic_name, &self.topic);
    }
}
