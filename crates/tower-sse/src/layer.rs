//! [`SseLayer`] and the configuration it shares with every response.

use std::{
    borrow::Cow,
    collections::hash_map::RandomState,
    hash::BuildHasher,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use http::request::Parts;
use tower_layer::Layer;
use tower_sse_core::{
    Event, EventLog, TopicRules, encode_comment, encode_comment_line, encode_retry,
};

use crate::{Authorizer, GapPolicy, ShutdownSignal, Sse, replay::ReplayConfig};

/// The default [`SseLayer::heartbeat`] interval: 15 seconds, as the WHATWG standard suggests.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// The default [`SseLayer::coalesce_limit`]: 4 KiB.
///
/// Large enough that a burst of small events costs one write per few dozen events, small
/// enough that the frames hyper queues (16 at most) stay under glibc malloc's 128 KiB trim
/// threshold, so streaming does not page-fault (`benches/benches/large.rs`), and that an
/// event of 4 KiB or more is passed on as it is, never copied.
pub const DEFAULT_COALESCE_LIMIT: usize = 4 * 1024;

/// How the layer's heartbeat and priming frames end: see [`SseLayer::heartbeat_style`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HeartbeatStyle {
    /// A comment and a blank line, `:\n\n` (the default).
    ///
    /// A complete block: what the standard and every browser expect, and what proxies that
    /// forward a stream event by event (some API gateways) pass on at once. Parsers that
    /// dispatch empty events (older openai-python and openai-go) see an empty event in it and
    /// fail.
    #[default]
    Block,
    /// A single comment line, `:\n`, for priming and heartbeats: no blank line.
    ///
    /// Nothing the layer writes can then dispatch an event, even in parsers that dispatch empty
    /// ones, so it is the style for OpenAI-compatible and other LLM streaming APIs. (A
    /// [`retry`](SseLayer::retry) hint is still a block of its own, `retry: <ms>\n\n`: a field
    /// line opens an event, and a hint left open would hold heartbeats and shutdown back until
    /// the handler's first event ends. Those SDKs do not reconnect by `retry`: leave it unset
    /// for them.) A comment
    /// line written between events becomes the first line of the next event's block, which
    /// every conforming parser ignores; the layer still writes it only between events. Proxies
    /// that forward bytes (nginx with `X-Accel-Buffering: no`, load balancers, CDNs) pass it on
    /// and reset their idle timers as with a block; a proxy that forwards whole events only
    /// holds it until the next event, so the client's own read timer is not reset through such
    /// a proxy.
    Line,
}

/// A [`Layer`] that makes `text/event-stream` responses proxy-safe and long-lived.
///
/// See the [crate documentation](crate) for what it does to a response. Every builder method
/// takes and returns the layer; the defaults are: heartbeat every 15 s with an empty comment
/// (`:\n\n`, [`HeartbeatStyle::Block`]), no `retry` hint, both headers on, no shutdown signal, no lifetime limit,
/// coalescing up to 4 KiB.
///
/// ```
/// use std::time::Duration;
/// use tower_sse::SseLayer;
///
/// let layer = SseLayer::new()
///     .heartbeat(Duration::from_secs(20))
///     .heartbeat_comment("keep-alive")
///     .retry(Duration::from_secs(3))
///     .max_lifetime(Duration::from_secs(3600), Duration::from_secs(300));
/// # let _ = layer;
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct SseLayer {
    config: Arc<Config>,
}

impl SseLayer {
    /// A layer with the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends a heartbeat comment when the inner body has sent nothing for `interval`.
    ///
    /// The timer restarts on every frame written to the client, and a heartbeat is only ever
    /// inserted between events. A zero interval turns heartbeats off, like
    /// [`no_heartbeat`](Self::no_heartbeat).
    ///
    /// The first heartbeat after a frame is due exactly `interval` after it. The beats of a
    /// stream that stays idle are due on a grid shared by the process's streams, in steps of
    /// at most 8 ms and 1/64 of the interval, so may come up to one step late: streams due in
    /// the same step then cost one wake-up of the runtime, not one each.
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config_mut().heartbeat = (!interval.is_zero()).then_some(interval);
        self
    }

    /// Sends no heartbeats. The stream is still primed.
    pub fn no_heartbeat(mut self) -> Self {
        self.config_mut().heartbeat = None;
        self
    }

    /// The text of the heartbeat comment (default empty, giving `:\n\n`).
    ///
    /// The same comment primes the stream when no [`retry`](Self::retry) hint is set. Line
    /// breaks in `text` start new comment lines, so it can never end an event.
    pub fn heartbeat_comment(mut self, text: impl Into<Cow<'static, str>>) -> Self {
        let config = self.config_mut();
        config.heartbeat_text = text.into();
        config.refresh_frames();
        self
    }

    /// Whether heartbeats (and the priming frame) end with a blank line
    /// ([`HeartbeatStyle::Block`], `:\n\n`, the default) or are a single comment line
    /// ([`HeartbeatStyle::Line`], `:\n`).
    ///
    /// The default stays a complete block: browsers, for which event streams are made, ignore
    /// both; a block is also passed on at once by proxies that forward whole events; and it is
    /// what this crate has always written. Choose [`Line`](HeartbeatStyle::Line) when clients
    /// are LLM SDKs or other parsers that turn a blank line into an empty event (openai-python
    /// before 2.38, openai-go before 3.43 fail on it): nothing the layer writes then ends with a
    /// blank line (leave [`retry`](Self::retry) unset for them: the hint is a block).
    ///
    /// ```
    /// use tower_sse::{HeartbeatStyle, SseLayer};
    ///
    /// let layer = SseLayer::new().heartbeat_style(HeartbeatStyle::Line);
    /// # let _ = layer;
    /// ```
    pub fn heartbeat_style(mut self, style: HeartbeatStyle) -> Self {
        let config = self.config_mut();
        config.heartbeat_style = style;
        config.refresh_frames();
        self
    }

    /// Writes `retry: <milliseconds>` as the first frame of every stream, setting how long the
    /// client waits before it reconnects.
    ///
    /// The delay is rounded up to whole milliseconds: a nonzero delay under a millisecond is
    /// sent as `retry: 1`, never as `retry: 0`, which would have clients reconnect in a tight
    /// loop. [`Duration::ZERO`] sends `retry: 0` (reconnect at once), as asked.
    pub fn retry(mut self, delay: Duration) -> Self {
        let config = self.config_mut();
        config.retry = Some(delay);
        config.refresh_frames();
        self
    }

    /// Whether to insert `Cache-Control: no-cache` when the response has no `Cache-Control`
    /// (default `true`).
    pub fn cache_control(mut self, enabled: bool) -> Self {
        self.config_mut().cache_control = enabled;
        self
    }

    /// Whether to insert `X-Accel-Buffering: no` when the response has no such header
    /// (default `true`); nginx buffers responses unless told not to.
    pub fn accel_buffering(mut self, enabled: bool) -> Self {
        self.config_mut().accel_buffering = enabled;
        self
    }

    /// Ends every open event stream at its next event boundary once `signal` is triggered.
    pub fn shutdown(mut self, signal: ShutdownSignal) -> Self {
        self.config_mut().shutdown = Some(signal);
        self
    }

    /// An event written just before the layer ends a stream, on shutdown or at the end of its
    /// [`max_lifetime`](Self::max_lifetime) (for example, one telling the client to reconnect
    /// elsewhere). Streams that the handler ends itself do not get it.
    pub fn final_event(mut self, event: Event<'_>) -> Self {
        self.config_mut().final_event = Some(event.to_bytes());
        self
    }

    /// Ends each stream at its next event boundary once it has been open for a duration
    /// picked between `lifetime - jitter` and `lifetime`, so that long-lived clients are
    /// spread over servers again and do not all reconnect at the same moment.
    ///
    /// The client's `EventSource` reconnects on its own after its `retry` delay.
    pub fn max_lifetime(mut self, lifetime: Duration, jitter: Duration) -> Self {
        self.config_mut().max_lifetime = Some(Lifetime {
            lifetime,
            jitter: jitter.min(lifetime),
            seed: RandomState::new(),
        });
        self
    }

    /// The most bytes gathered into one body frame (default
    /// [`DEFAULT_COALESCE_LIMIT`], 4 KiB).
    ///
    /// When the inner body has several frames ready at once, the layer joins them into one
    /// frame, which saves a write and a chunk header per event. It only takes frames that are
    /// already ready: an event is never held back to wait for the next one. A frame may
    /// exceed the limit by at most one inner frame; an inner frame at least as large as the
    /// limit is passed on as it is, without a copy. `0` turns coalescing off.
    ///
    /// Larger limits save little more CPU and cost page faults with glibc's malloc: frames of
    /// tens of KiB, queued by hyper and freed together, are trimmed from the heap and faulted
    /// in again (about one minor fault per 4 KiB event with a 32 KiB limit; see the
    /// [`DEFAULT_COALESCE_LIMIT`] note).
    pub fn coalesce_limit(mut self, bytes: usize) -> Self {
        self.config_mut().coalesce_limit = bytes;
        self
    }

    /// The query parameter read as the last event id when the `Last-Event-ID` header is
    /// absent (default `lastEventId`), for clients that cannot set headers; `None` reads the
    /// header only.
    pub fn last_event_id_query(mut self, name: Option<&'static str>) -> Self {
        self.config_mut().last_event_id_query = name;
        self
    }

    /// The longest last event id accepted, in bytes (default
    /// [`DEFAULT_MAX_LAST_EVENT_ID_LEN`](crate::DEFAULT_MAX_LAST_EVENT_ID_LEN)); a longer one
    /// is [`ClientCursor::Invalid`](crate::ClientCursor::Invalid).
    pub fn max_last_event_id_len(mut self, bytes: usize) -> Self {
        self.config_mut().max_last_event_id_len = bytes;
        self
    }

    /// Resumes event streams from `log` when the client sends a last event id.
    ///
    /// For a request carrying a valid `Last-Event-ID` (or the query fallback), once the handler
    /// has answered with an event stream, the layer reads the events after that id from the
    /// stream's topic ([`stream_key`](Self::stream_key)), sends them right after the priming
    /// frame, and then the handler's live body, dropping live events whose id was just
    /// replayed. At most [`max_replay`](Self::max_replay) events are replayed; a client
    /// further behind, a cursor the log does not know (or an invalid value), or a log that
    /// fails, is reported by the [`gap_policy`](Self::gap_policy). Never an error response.
    ///
    /// Use the same log the handler's events are appended to (an `Arc<MemoryLog>` shared with
    /// a [`Hub`](crate::Hub) via [`Hub::with_log`](crate::Hub::with_log), for example). A
    /// handler that resumes by itself ([`Hub::subscribe`](crate::Hub::subscribe) with the
    /// [`ClientCursor`](crate::ClientCursor)) does not need this. Streams of several topics
    /// are resumed with [`stream_topics`](Self::stream_topics); without it, a composite cursor
    /// ([`TopicSet`](tower_sse_core::TopicSet)) is never read from the log as one topic's
    /// position: the hub stream that issued it resumes it.
    pub fn replay<L: EventLog>(mut self, log: L) -> Self {
        self.config_mut().replay.set_log(log);
        self
    }

    /// The topic a request's events are replayed from (default: the request path).
    ///
    /// The key must be a valid topic name ([`topic_rules`](Self::topic_rules)); when it is
    /// not, an event-stream response is replaced by a `400 Bad Request` and the log is never
    /// read with it.
    pub fn stream_key<F>(mut self, key: F) -> Self
    where
        F: Fn(&Parts) -> String + Send + Sync + 'static,
    {
        self.config_mut().replay.set_key(key);
        self
    }

    /// The topics a request's stream carries, for streams of several topics on one
    /// connection; replaces [`stream_key`](Self::stream_key).
    ///
    /// When the layer replays a request (it carries a last event id) or authorizes it, every
    /// name must be a valid topic name ([`topic_rules`](Self::topic_rules)), and the distinct
    /// names at most [`max_topics`](Self::max_topics) (an empty list, more than four times that
    /// many names, or one invalid name is refused): otherwise an event-stream response is
    /// replaced by a `400 Bad Request` with a message, and the log is never read. The
    /// [`authorize`](Self::authorize) hook is asked for every topic of the set.
    ///
    /// A set of one topic is resumed as by `stream_key`, from the log's own ids. For a set of
    /// several, the stream's ids are composite cursors ([`TopicSet`](tower_sse_core::TopicSet),
    /// `<topic> <opaque>`), written as [`Hub::subscribe_topics`](crate::Hub::subscribe_topics)
    /// writes them. For a request whose last event id is such a cursor, the layer replays each
    /// topic after its position in turn (at most [`max_replay`](Self::max_replay) events per
    /// topic, the [`gap_policy`](Self::gap_policy) per topic), then passes the handler's live
    /// body on, dropping per topic what was just replayed, reading the log up to a topic's
    /// first newer live event if the handler's source started late, and writing every event's
    /// id as the cursor of what the client then has. The handler subscribes with no cursor to
    /// the same topics ([`Hub::subscribe_topics`](crate::Hub::subscribe_topics) with `None`),
    /// whose ids name each event's topic; events whose id is not a cursor of the set pass
    /// unchanged. A last event id that is not a cursor of this set is an unknown cursor for
    /// every topic.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tower_sse::{SseLayer, query_topics};
    /// use tower_sse_core::MemoryLog;
    ///
    /// let log = Arc::new(MemoryLog::new());
    /// // `GET /events?topic=chat&topic=alerts`: one stream of both topics.
    /// let layer = SseLayer::new().replay(Arc::clone(&log)).stream_topics(|parts| {
    ///     query_topics(parts.uri.query(), "topic", 64)
    /// });
    /// # let _ = layer;
    /// ```
    pub fn stream_topics<F>(mut self, topics: F) -> Self
    where
        F: Fn(&Parts) -> Vec<String> + Send + Sync + 'static,
    {
        self.config_mut().replay.set_topics(topics);
        self
    }

    /// The most distinct topics of one [`stream_topics`](Self::stream_topics) set (default
    /// [`DEFAULT_MAX_TOPICS_PER_STREAM`](tower_sse_core::DEFAULT_MAX_TOPICS_PER_STREAM), 32).
    ///
    /// # Panics
    ///
    /// If `topics` is zero.
    pub fn max_topics(mut self, topics: usize) -> Self {
        assert!(topics > 0, "a stream carries at least one topic");
        self.config_mut().replay.max_topics = topics;
        self
    }

    /// The most events replayed per reconnect (default
    /// [`DEFAULT_MAX_REPLAY`](crate::DEFAULT_MAX_REPLAY)), a bound on what one
    /// request can cost; past it the gap policy applies.
    pub fn max_replay(mut self, events: usize) -> Self {
        self.config_mut().replay.max_replay = events;
        self
    }

    /// The rules a [`stream_key`](Self::stream_key) must follow (default [`TopicRules::new`]:
    /// 1 to 128 bytes of `A-Z a-z 0-9 . _ ~ / -`).
    pub fn topic_rules(mut self, rules: TopicRules) -> Self {
        self.config_mut().topic_rules = rules;
        self
    }

    /// Asks `authorizer` whether a request may read its stream's topic (its
    /// [`stream_key`](Self::stream_key), or each topic of its
    /// [`stream_topics`](Self::stream_topics)), for every event-stream response, before the layer
    /// replays anything or passes on the handler's first event. A denied stream is replaced
    /// by a `403 Forbidden`: none of its events, replayed or live, reaches the client. The
    /// hook is started when the request comes in and awaited once the handler has answered
    /// with an event stream; other responses are not held up by it.
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.config_mut().authorizer = Some(authorizer);
        self
    }

    /// How a client is told it missed events (default: an in-band `sse-gap` event).
    pub fn gap_policy(mut self, policy: GapPolicy) -> Self {
        self.config_mut().replay.gap = policy;
        self
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }
}

impl<S> Layer<S> for SseLayer {
    type Service = Sse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Sse::from_config(inner, Arc::clone(&self.config))
    }
}

/// Everything an event-stream response needs from the layer, shared by an `Arc`.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) heartbeat: Option<Duration>,
    pub(crate) heartbeat_text: Cow<'static, str>,
    pub(crate) heartbeat_style: HeartbeatStyle,
    pub(crate) heartbeat_frame: Bytes,
    pub(crate) retry: Option<Duration>,
    /// The first frame of every stream: the `retry` hint, or else the heartbeat comment.
    pub(crate) priming_frame: Bytes,
    pub(crate) cache_control: bool,
    pub(crate) accel_buffering: bool,
    pub(crate) shutdown: Option<ShutdownSignal>,
    pub(crate) final_event: Option<Bytes>,
    pub(crate) max_lifetime: Option<Lifetime>,
    pub(crate) coalesce_limit: usize,
    pub(crate) last_event_id_query: Option<&'static str>,
    pub(crate) max_last_event_id_len: usize,
    pub(crate) replay: ReplayConfig,
    pub(crate) telemetry: crate::telemetry::LayerTelemetry,
    pub(crate) topic_rules: TopicRules,
    pub(crate) authorizer: Option<Authorizer>,
}

impl Default for Config {
    fn default() -> Self {
        let heartbeat_frame = tower_sse_core::HEARTBEAT;
        Self {
            heartbeat: Some(DEFAULT_HEARTBEAT),
            heartbeat_text: Cow::Borrowed(""),
            heartbeat_style: HeartbeatStyle::Block,
            priming_frame: heartbeat_frame.clone(),
            heartbeat_frame,
            retry: None,
            cache_control: true,
            accel_buffering: true,
            shutdown: None,
            final_event: None,
            max_lifetime: None,
            coalesce_limit: DEFAULT_COALESCE_LIMIT,
            last_event_id_query: Some(crate::DEFAULT_LAST_EVENT_ID_QUERY),
            max_last_event_id_len: crate::DEFAULT_MAX_LAST_EVENT_ID_LEN,
            replay: ReplayConfig::default(),
            telemetry: crate::telemetry::LayerTelemetry::default(),
            topic_rules: TopicRules::new(),
            authorizer: None,
        }
    }
}

impl Config {
    /// Rebuilds the heartbeat and priming frames from the text, style and retry hint.
    fn refresh_frames(&mut self) {
        let line = self.heartbeat_style == HeartbeatStyle::Line;
        let mut frame = BytesMut::new();
        match line {
            true => encode_comment_line(&self.heartbeat_text, &mut frame),
            false => encode_comment(&self.heartbeat_text, &mut frame),
        }
        self.heartbeat_frame = frame.freeze();
        self.priming_frame = match self.retry {
            // A block in both styles: see `HeartbeatStyle::Line`.
            Some(delay) => {
                let mut frame = BytesMut::new();
                encode_retry(delay, &mut frame);
                frame.freeze()
            }
            None => self.heartbeat_frame.clone(),
        };
    }

    /// Whether a stream needs a timer at all.
    pub(crate) fn needs_timer(&self) -> bool {
        self.heartbeat.is_some() || self.max_lifetime.is_some()
    }
}

/// A maximum stream lifetime with jitter.
#[derive(Clone, Debug)]
pub(crate) struct Lifetime {
    lifetime: Duration,
    jitter: Duration,
    /// Keyed per layer at random, so that hashing a counter spreads streams without a `rand`
    /// dependency.
    seed: RandomState,
}

impl Lifetime {
    /// The lifetime of the next stream, in `[lifetime - jitter, lifetime]`.
    pub(crate) fn pick(&self) -> Duration {
        static STREAMS: AtomicU64 = AtomicU64::new(0);
        let jitter = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX);
        if jitter == 0 {
            return self.lifetime;
        }
        let n = STREAMS.fetch_add(1, Ordering::Relaxed);
        let cut = self.seed.hash_one(n) % jitter.saturating_add(1);
        self.lifetime - Duration::from_nanos(cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priming_is_the_retry_hint_or_the_comment() {
        let layer = SseLayer::new();
        assert_eq!(&layer.config.priming_frame[..], b":\n\n");
        let layer = layer.heartbeat_comment("hi");
        assert_eq!(&layer.config.priming_frame[..], b":hi\n\n");
        assert_eq!(&layer.config.heartbeat_frame[..], b":hi\n\n");
        let layer = layer.retry(Duration::from_millis(2500));
        assert_eq!(&layer.config.priming_frame[..], b"retry: 2500\n\n");
        // Setting the comment after the retry hint keeps the hint.
        let layer = layer.heartbeat_comment("x\ny");
        assert_eq!(&layer.config.priming_frame[..], b"retry: 2500\n\n");
        assert_eq!(&layer.config.heartbeat_frame[..], b":x\n:y\n\n");
    }

    #[test]
    fn line_style_never_writes_a_blank_line() {
        let layer = SseLayer::new().heartbeat_style(HeartbeatStyle::Line);
        assert_eq!(&layer.config.priming_frame[..], b":\n");
        assert_eq!(&layer.config.heartbeat_frame[..], b":\n");
        // Order does not matter: text, hint and style combine.
        let layer = SseLayer::new()
            .retry(Duration::from_micros(300))
            .heartbeat_comment("hi")
            .heartbeat_style(HeartbeatStyle::Line);
        assert_eq!(&layer.config.priming_frame[..], b"retry: 1\n\n");
        assert_eq!(&layer.config.heartbeat_frame[..], b":hi\n");
        let layer = layer.heartbeat_style(HeartbeatStyle::Block);
        assert_eq!(&layer.config.priming_frame[..], b"retry: 1\n\n");
        assert_eq!(&layer.config.heartbeat_frame[..], b":hi\n\n");
    }

    #[test]
    fn zero_heartbeat_is_off() {
        assert_eq!(SseLayer::new().config.heartbeat, Some(DEFAULT_HEARTBEAT));
        assert_eq!(
            SseLayer::new().heartbeat(Duration::ZERO).config.heartbeat,
            None
        );
        assert_eq!(SseLayer::new().no_heartbeat().config.heartbeat, None);
    }

    #[test]
    fn builders_do_not_change_clones() {
        let a = SseLayer::new();
        let b = a.clone().cache_control(false);
        assert!(a.config.cache_control);
        assert!(!b.config.cache_control);
    }

    #[test]
    fn lifetimes_stay_in_range_and_spread() {
        let lifetime = Lifetime {
            lifetime: Duration::from_secs(100),
            jitter: Duration::from_secs(10),
            seed: RandomState::new(),
        };
        let picks: Vec<_> = (0..1000).map(|_| lifetime.pick()).collect();
        assert!(
            picks
                .iter()
                .all(|d| (Duration::from_secs(90)..=Duration::from_secs(100)).contains(d))
        );
        let spread = picks
            .iter()
            .max()
            .unwrap()
            .saturating_sub(*picks.iter().min().unwrap());
        assert!(
            spread > Duration::from_secs(5),
            "picks barely spread: {spread:?}"
        );

        let exact = Lifetime {
            jitter: Duration::ZERO,
            ..lifetime
        };
        assert_eq!(exact.pick(), Duration::from_secs(100));
    }
}
