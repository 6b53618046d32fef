//! [`Subscription`]: one subscriber's replay-then-live feed of encoded frames.

use std::{
    collections::VecDeque,
    fmt,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, Response, header::CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};
use tower_sse_core::{EventLog, LoggedEvent, ReplayOutcome};

use super::{Inner, REPLAY_PAGE, REPLAY_PAGE_BYTES, TopicRef};
use crate::{
    GapReason,
    telemetry::{self, ReplayKind, SubscriberGauge},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A subscriber's feed: the replayed frames, then live ones, as shared [`Bytes`].
///
/// It is a [`Stream`] of frames and an [`http_body::Body`], so it can be returned as a
/// response body as it is ([`into_response`](Self::into_response)) and wrapped by
/// [`SseLayer`](crate::SseLayer) for heartbeats and headers. Dropping it unsubscribes. As a
/// `Stream` each item is one event's frame (or the gap signal); as a `Body` the frames ready
/// at once are joined into one body frame of at most a page ([`REPLAY_PAGE`](crate::REPLAY_PAGE)
/// events, [`REPLAY_PAGE_BYTES`](crate::REPLAY_PAGE_BYTES)).
///
/// The replay is read from the log in pages as the feed is drained, so a subscriber holds
/// one page at most, whatever its cursor. The feed ends only with an error: when a later
/// replay page or a catch-up read fails (for example the store went away), the error is
/// yielded and the feed ends, so the client reconnects and resumes from its last event id.
pub struct Subscription {
    outcome: Option<ReplayOutcome>,
    // One allocation per subscription: the state machine of an async loop.
    feed: BoxFeed,
    /// As a body: an error met while joining frames, yielded after them.
    failed: Option<SubscriptionError>,
    /// As a body: the feed has ended (it must not be polled again).
    ended: bool,
}

pub(super) type BoxFeed = Pin<Box<dyn Stream<Item = Result<Bytes, SubscriptionError>> + Send>>;

/// Where a topic's feed starts.
#[derive(Clone, Copy, Debug)]
pub(super) enum Start<'a> {
    /// With the next live event.
    Live,
    /// After this cursor (a client's last event id): replayed from the log, then live.
    After(&'a str),
    /// From the topic's first retained event (a topic that held nothing when the client
    /// first subscribed).
    Beginning,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The log failed while a subscriber was replaying or catching up.
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

/// A log that said more events follow the cursor but returned none: reading again would
/// spin, so it is treated as a failed read.
#[derive(Debug)]
struct EmptyPage;

impl fmt::Display for EmptyPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the log reported more events after the cursor but returned none")
    }
}

impl std::error::Error for EmptyPage {}

impl Subscription {
    /// Reads the first page after `cursor` (the rest as the feed drains). The receiver has
    /// joined the ring already.
    pub(super) async fn start<L: EventLog>(
        inner: Arc<Inner<L>>,
        topic: TopicRef<L>,
        receiver: broadcast::Receiver<LoggedEvent>,
        start: Start<'_>,
    ) -> Self {
        let join = topic.topic.state().last_sent.clone();
        let mut feed = Feed {
            max_replay: inner.max_replay,
            inner,
            topic,
            receiver,
            // A fresh subscriber: what the ring carried before it joined is not its.
            last: join,
            pending: VecDeque::new(),
            replay: None,
            outcome: None,
            from_start: false,
            in_order: false,
            _gauge: SubscriberGauge::new(),
        };
        if matches!(start, Start::Live) && feed.last.is_none() {
            // The ring has carried nothing for this topic yet, so it gives no position. Take
            // the log's head, read after joining the ring: a subscriber that falls behind the
            // ring before its first event then catches up from there, rather than getting a
            // `too-far-behind` signal and losing what was published since it joined.
            match feed.inner.log.head(feed.topic.name()).await {
                Ok(Some(head)) => feed.last = Some(head),
                Ok(None) => feed.from_start = true,
                // No position known: a later lag is a visible gap signal, as before.
                Err(_) => {}
            }
        }
        let cursor = match start {
            Start::Live => None,
            Start::After(cursor) => Some(Some(Arc::from(cursor))),
            Start::Beginning => Some(None),
        };
        if let Some(cursor) = cursor {
            feed.last = None;
            feed.replay = Some(Replaying::new(cursor, feed.max_replay, true));
            // Errors of the first read become the `log-error` signal.
            let _ = feed.read_page().await;
        }
        let outcome = feed.outcome.take();
        let feed = Self::unfold(feed);
        Self {
            outcome,
            feed,
            failed: None,
            ended: false,
        }
    }

    /// The subscription's frames as a boxed stream that ends after the first error.
    fn unfold<L: EventLog>(feed: Feed<L>) -> BoxFeed {
        Box::pin(FeedStream {
            state: FeedState::Idle(Box::new(feed)),
        })
    }

    /// A subscription over `feed` (a stream of several topics), with no single outcome.
    pub(super) fn from_feed(feed: BoxFeed) -> Self {
        Self {
            outcome: None,
            feed,
            failed: None,
            ended: false,
        }
    }

    /// How the cursor given to [`Hub::subscribe`](crate::Hub::subscribe) related to the log;
    /// `None` when no cursor was given, or when the log failed to answer (the subscription
    /// then starts with the `log-error` gap signal).
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

    /// One event's frame (or the gap signal) per item.
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(error) = self.failed.take() {
            return Poll::Ready(Some(Err(error)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        let item = ready!(self.feed.poll_next_unpin(cx));
        self.ended = item.is_none();
        Poll::Ready(item)
    }
}

/// The most bytes of frames a body frame of a [`Subscription`] joins: a replay page's.
const BODY_FRAME_BYTES: usize = REPLAY_PAGE_BYTES;

/// The most frames a body frame of a [`Subscription`] joins: a replay page's.
const BODY_FRAME_EVENTS: usize = REPLAY_PAGE;

impl Body for Subscription {
    type Data = Bytes;
    type Error = SubscriptionError;

    /// Every frame ready now, up to a page ([`REPLAY_PAGE`] events, [`REPLAY_PAGE_BYTES`]),
    /// joined into one body frame: a replay page or a live backlog goes through the layer,
    /// the framework's body and hyper once, not once per event (per event, those layers
    /// cost more than the copy; in a reconnect storm they were most of the server's time).
    /// A single ready frame is passed on as it is.
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, SubscriptionError>>> {
        let first = match ready!(self.as_mut().poll_next(cx)) {
            Some(Ok(frame)) => frame,
            other => return Poll::Ready(other.map(|r| r.map(Frame::data))),
        };
        let mut joined: Option<BytesMut> = None;
        let mut len = first.len();
        let mut count = 1;
        while len < BODY_FRAME_BYTES && count < BODY_FRAME_EVENTS && !self.ended {
            let frame = match self.feed.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                // Sent after what was joined.
                Poll::Ready(Some(Err(error))) => {
                    self.failed = Some(error);
                    break;
                }
                Poll::Ready(None) => {
                    self.ended = true;
                    break;
                }
                Poll::Pending => break,
            };
            let buf = joined.get_or_insert_with(|| {
                let mut buf = BytesMut::with_capacity((len * 8).clamp(len, BODY_FRAME_BYTES));
                buf.extend_from_slice(&first);
                buf
            });
            buf.extend_from_slice(&frame);
            len += frame.len();
            count += 1;
        }
        let data = joined.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// A replay in progress: where it is, how many events it may still send, and how many to
/// ask for next.
struct Replaying {
    /// `None`: from the topic's start.
    cursor: Option<Arc<str>>,
    budget: usize,
    limit: usize,
    /// The next read is the first of this replay (its outcome matters).
    first: bool,
    /// This replay is the subscribe's: a failed first read becomes the `log-error` signal.
    on_subscribe: bool,
}

impl Replaying {
    fn new(cursor: Option<Arc<str>>, budget: usize, on_subscribe: bool) -> Self {
        Self {
            cursor,
            budget,
            limit: REPLAY_PAGE,
            first: true,
            on_subscribe,
        }
    }
}

/// A [`Feed`] as a stream. A frame of the page in hand is taken without a future
/// ([`Feed::ready`]); only a wait (for the ring or the log) goes through [`Feed::next`], in a
/// future that owns the feed until it yields. Building a future per frame, as
/// `stream::unfold` does, moved the feed and the future's state in and out of it for every
/// event (in a profile of a reconnect storm at 1,000 events/s, 28 % of the server's time was
/// that `memmove`).
struct FeedStream<L: EventLog> {
    state: FeedState<L>,
}

type Waiting<L> =
    Pin<Box<dyn Future<Output = (Result<Bytes, SubscriptionError>, Box<Feed<L>>)> + Send>>;

enum FeedState<L: EventLog> {
    /// Between frames.
    Idle(Box<Feed<L>>),
    /// Waiting for the ring or the log.
    Waiting(Waiting<L>),
    /// After an error.
    Ended,
}

impl<L: EventLog> Stream for FeedStream<L> {
    type Item = Result<Bytes, SubscriptionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match &mut self.state {
                FeedState::Idle(feed) => {
                    if let Some(frame) = feed.ready() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    let FeedState::Idle(mut feed) =
                        std::mem::replace(&mut self.state, FeedState::Ended)
                    else {
                        unreachable!("matched above");
                    };
                    self.state = FeedState::Waiting(Box::pin(async move {
                        let item = feed.next().await;
                        (item, feed)
                    }));
                }
                FeedState::Waiting(waiting) => {
                    let (item, feed) = ready!(waiting.as_mut().poll(cx));
                    self.state = match item {
                        Ok(_) => FeedState::Idle(feed),
                        Err(_) => FeedState::Ended,
                    };
                    return Poll::Ready(Some(item));
                }
                FeedState::Ended => return Poll::Ready(None),
            }
        }
    }
}

struct Feed<L: EventLog> {
    inner: Arc<Inner<L>>,
    max_replay: usize,
    receiver: broadcast::Receiver<LoggedEvent>,
    /// Holds the topic's entry in the table while the feed lives.
    topic: TopicRef<L>,
    /// The last id delivered, or the position a gap signal moved the client to: live events
    /// at or before it are dropped.
    last: Option<Arc<str>>,
    /// The frames of the current page (or a gap signal), at most a page.
    pending: VecDeque<Bytes>,
    replay: Option<Replaying>,
    /// The subscribe's outcome, taken by [`Subscription::start`].
    outcome: Option<ReplayOutcome>,
    /// With no `last`: the topic held nothing when this subscriber joined, so a catch-up
    /// replays it from its first event.
    from_start: bool,
    /// This receiver has delivered an event past `last`: the ring is in log order, so every
    /// later event it carries is past it too and needs no id comparison (parsing two ids
    /// per delivery was the hub's largest cost in a 10,000-subscriber fan-out). Reset when
    /// the receiver is replaced.
    in_order: bool,
    /// In `sse_hub_subscribers` while the feed lives.
    _gauge: SubscriberGauge,
}

impl<L: EventLog> Feed<L> {
    /// The next frame of the page in hand, if any: taken with no wait and no future.
    #[inline]
    fn ready(&mut self) -> Option<Bytes> {
        self.pending.pop_front()
    }

    async fn next(&mut self) -> Result<Bytes, SubscriptionError> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Ok(frame);
            }
            if self.replay.is_some() {
                self.read_page().await?;
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) => {
                    if let Some(frame) = self.live(event) {
                        self.drain();
                        return Ok(frame);
                    }
                }
                // Lagged: the ring moved past this subscriber. Closed: the ring was replaced
                // (a cancelled publish, or a live log that lost events).
                Err(RecvError::Lagged(missed)) => self.lagged(missed),
                Err(RecvError::Closed) => self.catch_up(),
            }
        }
    }

    /// A live event's frame, or `None` when it is at or before the last one delivered.
    #[inline]
    fn live(&mut self, event: LoggedEvent) -> Option<Bytes> {
        if !self.in_order {
            if self.inner.at_or_before(event.id(), self.last.as_ref()) {
                return None;
            }
            self.in_order = true;
        }
        let (id, frame) = event.into_parts();
        self.last = Some(id);
        Some(frame)
    }

    /// Moves what the ring holds now into the page in hand, up to a page ([`REPLAY_PAGE`]
    /// events, [`REPLAY_PAGE_BYTES`]), after a `recv` that woke this subscriber: a wake-up
    /// spends one unit of the task's cooperative budget, not one per event, as a hand-rolled
    /// `recv` + `try_recv` loop does. With a unit per event a subscriber got at most 128
    /// events per turn of the runtime (tokio's budget), and where a turn of every connection
    /// takes longer than 128 events take to be published, it fell further behind each turn.
    fn drain(&mut self) {
        let mut bytes = 0;
        while self.pending.len() < REPLAY_PAGE && bytes < REPLAY_PAGE_BYTES {
            match self.receiver.try_recv() {
                Ok(event) => {
                    if let Some(frame) = self.live(event) {
                        bytes += frame.len();
                        self.pending.push_back(frame);
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(missed)) => {
                    self.lagged(missed);
                    break;
                }
                Err(TryRecvError::Closed) => {
                    self.catch_up();
                    break;
                }
            }
        }
    }

    /// The ring moved `missed` events past this subscriber: catch up from the log.
    fn lagged(&mut self, missed: u64) {
        telemetry::lagged(self.topic.name(), missed);
        self.catch_up();
    }

    /// Rejoins the ring first, then replays from the log after the last delivered id, page by
    /// page as the client drains.
    fn catch_up(&mut self) {
        let state = self.topic.topic.state();
        self.receiver = state.sender.subscribe();
        self.in_order = false;
        let join = state.last_sent.clone();
        drop(state);
        match self.last.clone() {
            Some(cursor) => {
                self.replay = Some(Replaying::new(Some(cursor), self.max_replay, false));
            }
            None if self.from_start => {
                self.replay = Some(Replaying::new(None, self.max_replay, false));
            }
            // Nothing delivered and no position: nothing to resume from.
            None => self.signal(GapReason::TooFarBehind, join),
        }
    }

    /// Reads the next page of the replay in progress. No lock is held while the log reads.
    async fn read_page(&mut self) -> Result<(), SubscriptionError> {
        let Some(replay) = self.replay.as_mut() else {
            return Ok(());
        };
        let limit = replay.budget.min(replay.limit);
        // A recent cursor is answered from the topic's history (live logs only), no I/O.
        let kept = replay.cursor.as_ref().and_then(|cursor| {
            self.topic.topic.state().history.page_after(
                &self.inner.log,
                cursor,
                limit,
                REPLAY_PAGE_BYTES,
            )
        });
        let read = match kept {
            Some(page) => Ok(page),
            None => {
                telemetry::timed_read(self.inner.log.read_after(
                    self.topic.name(),
                    replay.cursor.as_deref(),
                    limit,
                ))
                .await
            }
        };
        let page = match read {
            Ok(page) if limit > 0 && page.events.is_empty() && page.has_more => {
                Err(SubscriptionError(Box::new(EmptyPage)))
            }
            Ok(page) => Ok(page),
            Err(error) => Err(SubscriptionError(Box::new(error))),
        };
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                let on_subscribe = replay.first && replay.on_subscribe;
                self.replay = None;
                if on_subscribe {
                    telemetry::replay(ReplayKind::LogError, "hub", self.topic.name());
                    let join = self.join_point();
                    self.signal(GapReason::LogError, join);
                    return Ok(());
                }
                return Err(error);
            }
        };
        if replay.first {
            replay.first = false;
            if replay.on_subscribe {
                telemetry::replay(
                    ReplayKind::from_outcome(&page.outcome),
                    "hub",
                    self.topic.name(),
                );
                self.outcome = Some(page.outcome.clone());
            }
            let reason = match page.outcome {
                ReplayOutcome::Gap { .. } => Some(GapReason::Gap),
                ReplayOutcome::Unknown(_) => Some(GapReason::UnknownCursor),
                _ => None,
            };
            if let Some(reason) = reason {
                // Nothing contiguous to replay: the signal, then live from the join point.
                // Retained events before it are not sent (the client refetches its state).
                self.replay = None;
                let join = self.join_point();
                self.signal(reason, join);
                return Ok(());
            }
            // A position of this topic: live events at or before it were delivered already
            // (a cursor ahead of a live log's tail, read from another server's).
            self.last = replay.cursor.clone();
        }
        let count = page.events.len();
        let bytes: usize = page.events.iter().map(|e| e.frame().len()).sum();
        if count > 0 && bytes > REPLAY_PAGE_BYTES {
            replay.limit = (count * REPLAY_PAGE_BYTES / bytes).max(1);
        } else if bytes < REPLAY_PAGE_BYTES / 2 {
            replay.limit = (replay.limit * 2).min(REPLAY_PAGE);
        }
        for event in page.events {
            let (id, frame) = event.into_parts();
            self.pending.push_back(frame);
            replay.cursor = Some(Arc::clone(&id));
            self.last = Some(id);
        }
        replay.budget = replay.budget.saturating_sub(count);
        telemetry::replayed(count);
        if !page.has_more {
            // Caught up with the log: the ring carries everything after `last`.
            self.replay = None;
        } else if replay.budget == 0 {
            self.replay = None;
            // Too far behind. When the ring has not carried anything past the replay's end,
            // every later event still comes through it: nothing is skipped.
            let join = self.join_point();
            let skipped = match &join {
                Some(join) => !self.inner.at_or_before(join, self.last.as_ref()),
                None => true,
            };
            if skipped {
                telemetry::late_gap(self.topic.name(), GapReason::TooFarBehind);
                self.signal(GapReason::TooFarBehind, join);
            }
        }
        Ok(())
    }

    /// The id of the last event the ring carried: every later event still reaches it.
    fn join_point(&self) -> Option<Arc<str>> {
        self.topic.topic.state().last_sent.clone()
    }

    /// Queues the gap signal: the stream continues after `resume_from`, and nothing at or
    /// before it is sent afterwards.
    fn signal(&mut self, reason: GapReason, resume_from: Option<Arc<str>>) {
        self.pending
            .push_back(self.inner.gap.frame(reason, resume_from.as_deref()));
        if resume_from.is_some() {
            self.last = resume_from;
        }
    }
}
