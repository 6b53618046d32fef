//! Last-Event-ID resumption inside the layer: read the log in pages as the client drains,
//! then the handler's live body, joined without a lock, a gap or a duplicate.
//!
//! # How the replay joins the live body
//!
//! The log is read *after* the handler has produced its response, page by page (at most
//! [`PAGE_EVENTS`] events, written out in frames of at most [`PAGE_BYTES`]), each page only
//! once the previous one has been taken by the connection: a reconnecting client costs one page
//! of memory, whatever [`max_replay`](crate::SseLayer::max_replay) is. Concurrent clients that
//! resume from the same position share each read ([`crate::coalesce`]).
//!
//! The layer remembers only the *last* id it sent. Ids of one topic are ordered
//! ([`EventLog::compare_ids`]), so once the replay is done, live events at or before that id
//! are dropped (the overlap between what the log had and what the live source already held),
//! and no set of replayed ids is kept. When the first newer live event arrives, say `X`, the
//! layer does not assume the live source started right after the replay: a handler whose
//! stream subscribes late (on first poll, or after a delay) would otherwise lose what was
//! published in between. It reads the log once more from its last id up to `X` (paged, and
//! usually a single short read) and sends those events first. After `X`, everything passes.
//!
//! A stream of several topics ([`SseLayer::stream_topics`](crate::SseLayer::stream_topics))
//! runs this per topic, with the routing and the composite ids in [`topics`].
//!
//! # The gap rule
//!
//! As documented in [`crate::GapSignal`]'s module: contiguous events first, then, at the
//! discontinuity, the signal carrying the position the stream continues from, then only events
//! after it. That position is the log's head when the discontinuity is found; the layer reaches
//! it by reading on from where it stands without sending (in pages of [`SEEK_EVENTS`], at most
//! [`MAX_SEEK_PAGES`] of them), and the live join then continues from there exactly as above.

use std::{cmp::Ordering, fmt, future::Future, pin::Pin, sync::Arc, task::Context, task::Poll};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, request::Parts};
use tower_sse_core::{DEFAULT_MAX_TOPICS_PER_STREAM, EventLog, Replay, TopicSet};

use crate::{ClientCursor, GapPolicy, coalesce::Flights, telemetry};

mod topic;
mod topics;

pub(crate) use topic::TopicResume;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The most events read from the log at once, for the replay and for the live join.
pub(crate) const PAGE_EVENTS: usize = 256;
/// The most replayed bytes written as one body frame; a page of larger events is written in
/// several frames, each after the connection took the previous one.
pub(crate) const PAGE_BYTES: usize = 64 * 1024;
/// The page size when reading on to the log's head after a discontinuity (nothing is sent,
/// the frames are shared `Bytes`).
pub(crate) const SEEK_EVENTS: usize = 512;
/// The most pages read on to find the head: a bound on the work one request can cause. Past
/// it the stream continues from the furthest position read, and the live join fills the rest.
pub(crate) const MAX_SEEK_PAGES: usize = 64;

/// The object-safe face of an [`EventLog`], so that the layer is not generic over the log.
pub(crate) trait DynLog: Send + Sync {
    fn read_page(
        &self,
        topic: Arc<str>,
        cursor: Option<Arc<str>>,
        limit: usize,
    ) -> BoxFuture<Result<Replay, BoxError>>;

    fn compare_ids(&self, a: &str, b: &str) -> Option<Ordering>;
}

impl<L: EventLog> DynLog for Arc<L> {
    fn read_page(
        &self,
        topic: Arc<str>,
        cursor: Option<Arc<str>>,
        limit: usize,
    ) -> BoxFuture<Result<Replay, BoxError>> {
        let log = Arc::clone(self);
        Box::pin(async move {
            telemetry::timed_read(log.read_after(&topic, cursor.as_deref(), limit))
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<Ordering> {
        (**self).compare_ids(a, b)
    }
}

type KeyFn = dyn Fn(&Parts) -> String + Send + Sync;
type TopicsFn = dyn Fn(&Parts) -> Vec<String> + Send + Sync;

/// What a request's stream is replayed from: one topic (its log ids are the cursors), or a
/// set of several (composite cursors, [`TopicSet`]).
#[derive(Debug)]
pub(crate) enum Target {
    Topic(String),
    Set(TopicSet),
}

/// The layer's replay settings.
#[derive(Clone)]
pub(crate) struct ReplayConfig {
    pub(crate) log: Option<Arc<dyn DynLog>>,
    key: Arc<KeyFn>,
    topics: Option<Arc<TopicsFn>>,
    pub(crate) max_topics: usize,
    pub(crate) max_replay: usize,
    pub(crate) gap: GapPolicy,
    flights: Arc<Flights>,
}

impl fmt::Debug for ReplayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayConfig")
            .field("max_replay", &self.max_replay)
            .field("stream_topics", &self.topics.is_some())
            .field("max_topics", &self.max_topics)
            .field("gap", &self.gap)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            log: None,
            key: Arc::new(|parts: &Parts| parts.uri.path().to_owned()),
            topics: None,
            max_topics: DEFAULT_MAX_TOPICS_PER_STREAM,
            max_replay: tower_sse_core::DEFAULT_MAX_REPLAY,
            gap: GapPolicy::default(),
            flights: Arc::default(),
        }
    }
}

impl ReplayConfig {
    pub(crate) fn set_log<L: EventLog>(&mut self, log: L) {
        self.log = Some(Arc::new(Arc::new(log)));
        // Reads of another log are never shared with this one's.
        self.flights = Arc::default();
    }

    pub(crate) fn set_key<F>(&mut self, key: F)
    where
        F: Fn(&Parts) -> String + Send + Sync + 'static,
    {
        self.key = Arc::new(key);
    }

    pub(crate) fn set_topics<F>(&mut self, topics: F)
    where
        F: Fn(&Parts) -> Vec<String> + Send + Sync + 'static,
    {
        self.topics = Some(Arc::new(topics));
    }

    /// Whether streams are replayed from a topic set ([`SseLayer::stream_topics`]).
    ///
    /// [`SseLayer::stream_topics`]: crate::SseLayer::stream_topics
    pub(crate) fn has_topics(&self) -> bool {
        self.topics.is_some()
    }

    /// The stream key of a request.
    pub(crate) fn key(&self, parts: &Parts) -> String {
        (self.key)(parts)
    }

    /// The topic names a request asks for, when the layer replays topic sets.
    pub(crate) fn topic_names(&self, parts: &Parts) -> Option<Vec<String>> {
        self.topics.as_ref().map(|topics| topics(parts))
    }

    /// The resumption of one response; `None` without a log or a cursor.
    pub(crate) fn start(&self, target: Target, cursor: &ClientCursor) -> Option<Box<Resume>> {
        let log = self.log.as_ref()?;
        let cursor = cursor.log_cursor()?;
        Some(Box::new(match target {
            Target::Topic(key) => {
                Resume::One(self.topic(log, Arc::from(key), Some(Arc::from(cursor))))
            }
            Target::Set(set) => Resume::Many(topics::TopicsResume::new(self, log, set, cursor)),
        }))
    }

    /// The resumption of one topic from `last` (`None`: from the topic's start).
    fn topic(&self, log: &Arc<dyn DynLog>, topic: Arc<str>, last: Option<Arc<str>>) -> TopicResume {
        TopicResume::new(
            Arc::clone(log),
            Arc::clone(&self.flights),
            topic,
            self.max_replay,
            self.gap.clone(),
            last,
        )
    }

    pub(crate) fn is_header_policy(&self) -> bool {
        matches!(self.gap, GapPolicy::Header)
    }
}

/// The resumption of one response: one topic, or a set of several on one stream.
#[derive(Debug)]
pub(crate) enum Resume {
    One(TopicResume),
    Many(topics::TopicsResume),
}

impl Resume {
    /// Under [`GapPolicy::Header`]: reads until what the first read tells is known, before
    /// the response headers go out.
    pub(crate) fn poll_prepare(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Self::One(one) => one.poll_prepare(cx),
            Self::Many(many) => many.poll_prepare(cx),
        }
    }

    /// The headers the gap policy asks for.
    pub(crate) fn take_headers(&mut self) -> Vec<(HeaderName, HeaderValue)> {
        match self {
            Self::One(one) => one.take_headers(),
            Self::Many(many) => many.take_headers(),
        }
    }

    /// Whether the resumption has frames to write before the live body may be polled.
    pub(crate) fn wants_output(&self) -> bool {
        match self {
            Self::One(one) => one.wants_output(),
            Self::Many(many) => many.wants_output(),
        }
    }

    /// Whether the live body is joined: the resumption has nothing left to do.
    pub(crate) fn is_done(&self) -> bool {
        match self {
            Self::One(one) => one.is_done(),
            Self::Many(many) => many.is_done(),
        }
    }

    /// Whether the stream must end here.
    pub(crate) fn is_end(&self) -> bool {
        match self {
            Self::One(one) => one.is_end(),
            Self::Many(many) => many.is_end(),
        }
    }

    /// The next frame to write before the live body; `None` once there is none.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match self {
            Self::One(one) => one.poll_output(cx),
            Self::Many(many) => many.poll_output(cx),
        }
    }

    /// Filters the next chunk of the live body.
    pub(crate) fn filter(&mut self, chunk: Bytes) -> Bytes {
        match self {
            Self::One(one) => one.filter(chunk),
            Self::Many(many) => many.filter(chunk),
        }
    }

    /// What the filter still holds when the live body ends.
    pub(crate) fn finish(self) -> Bytes {
        match self {
            Self::One(one) => one.finish(),
            Self::Many(many) => many.finish(),
        }
    }
}
