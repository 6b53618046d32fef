//! [`Hub`]: publish/subscribe over an [`EventLog`], with replay and bounded buffers.
//!
//! `publish(topic, event)` appends the event to the log, which assigns its id and encodes it
//! once; the encoded [`Bytes`](bytes::Bytes) then go to every live subscriber of the topic without another
//! copy. `subscribe(topic, cursor)` replays what the log holds after the cursor (a client's
//! `Last-Event-ID`) and then goes live with no gap and no duplicate, whatever publishers run
//! concurrently.
//!
//! Over a log that several servers share, [`Hub::with_live_log`] delivers live events from
//! the log itself, through one tail task per hub; its docs describe the design.
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use tower_sse::Hub;
//! use tower_sse_core::Event;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new();
//! let first = hub.publish("news", &Event::new().data("one")).await?;
//!
//! // A client that saw `first` reconnects: it gets "two" from the log, then "three" live.
//! hub.publish("news", &Event::new().data("two")).await?;
//! let mut subscription = hub.subscribe("news", Some(first.id())).await?;
//! hub.publish("news", &Event::new().data("three")).await?;
//!
//! let two = subscription.next().await.unwrap()?;
//! assert!(two.ends_with(b"data: two\n\n"));
//! let three = subscription.next().await.unwrap()?;
//! assert!(three.ends_with(b"data: three\n\n"));
//! # Ok(())
//! # }
//! ```

mod error;
mod history;
mod subscription;
mod tail;
mod topics;

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use http::request::Parts;
use tokio::sync::broadcast;
use tower_sse_core::{
    DEFAULT_MAX_TOPICS_PER_STREAM, Event, EventLog, LiveLog, LoggedEvent, MemoryLog, TopicName,
    TopicRules, TopicSet, TopicSetError,
};

use history::History;
use subscription::Start;
use tail::TailMode;

pub use error::HubError;
pub use history::{DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS};
pub use subscription::{Subscription, SubscriptionError};

use crate::{Authorizer, GapSignal, auth};

/// Live events buffered per topic before a slow subscriber has to catch up from the log.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Events replayed per subscribe or catch-up before the gap signal is sent instead; the same
/// default as the layer's (one rule on both paths).
pub use tower_sse_core::DEFAULT_MAX_REPLAY;

/// The most events one replay or catch-up read asks the log for; fewer when the frames are
/// large, so that a page holds about [`REPLAY_PAGE_BYTES`].
pub const REPLAY_PAGE: usize = 256;

/// The size a replay page aims at: the next read asks for fewer events when the last page's
/// frames were larger than this in total.
pub const REPLAY_PAGE_BYTES: usize = 64 * 1024;

/// A publish/subscribe hub over an [`EventLog`]; cheap to clone (an `Arc` inside).
///
/// # No lock across I/O
///
/// No hub path holds a lock (std or tokio) while it awaits the log: a slow read (a reconnect
/// storm replaying from Redis) delays neither publishers nor the live delivery to connected
/// subscribers. What makes this safe:
///
/// - **Join first, then replay.** A subscriber joins the topic's live ring *before* it reads
///   the log, and drops every live event at or before the last id it replayed
///   ([`EventLog::compare_ids`]). An event missing from its last read was not in the log yet,
///   so it is sent to the ring after the subscriber joined: nothing falls in between, nothing
///   is sent twice.
/// - **The ring is in log order.** Publishers append without a lock; each append is
///   registered in the topic's sequencer before it starts, and its event is released into the
///   ring only once every append that was in flight when it completed has completed too
///   (appends that start later get later ids), in id order. So the ring carries the log's
///   order, which the "drop at or before" rule needs, and a publisher waits only for its own
///   append. The short `std` critical sections around the ring never await.
/// - **Cancelled publishes.** A publish dropped while its append is in flight may or may not
///   have stored the event; the topic then replaces its ring, and its subscribers catch up
///   from the log after their last event, so that such an event is not silently missed.
///
/// # Bounded memory
///
/// Live events reach subscribers through one bounded ring per topic
/// ([`capacity`](Hub::capacity)). Replay and catch-up read the log in pages as the client
/// drains ([`REPLAY_PAGE`] events at most, fewer when frames are large: a page aims at 64 KiB),
/// never the whole cap at once, and frames are the log's shared [`Bytes`](bytes::Bytes). A subscriber that
/// falls more than the ring behind catches up from the log from the last id it delivered.
/// Over a live log each topic also keeps its last events ([`history`](Hub::history), 4 MiB
/// at most by default), shared by every replay from a recent cursor; it lives as long as the
/// topic has subscribers.
///
/// # The gap rule
///
/// Subscribe and catch-up follow the one rule of [`GapSignal`]: a contiguous run of at most
/// [`max_replay`](Hub::max_replay) events after the cursor, then, when that run cannot reach
/// the live feed, the [`GapSignal`] at the discontinuity, carrying as `resume_from` the
/// position the live feed continues from (the id of the last event the topic's ring carried
/// when the signal was written; `null` when this hub has carried none for the topic yet), then
/// only events after it. When the log fails on the first read of a subscribe, the
/// subscription starts with the signal, reason `log-error`, and goes live (an error there
/// would become a failed response, after which a browser's `EventSource` stops
/// reconnecting); when it fails later, the subscription ends with a [`SubscriptionError`],
/// so the client reconnects with its last id and loses nothing.
///
/// # Cancellation
///
/// Every hub future can be dropped at any await: a topic's entry is counted by guards that
/// its futures and subscriptions hold, and it leaves the table with the last of them
/// ([`Hub::topic_count`]).
pub struct Hub<L: EventLog = MemoryLog> {
    inner: Arc<Inner<L>>,
}

pub(crate) struct Inner<L: EventLog> {
    pub(crate) log: L,
    topics: Mutex<HashMap<Box<str>, Entry>>,
    pub(crate) capacity: usize,
    pub(crate) max_replay: usize,
    /// With a live log: the events and frame bytes each topic's history keeps.
    history: (usize, usize),
    pub(crate) gap: GapSignal,
    /// Set by [`Hub::with_live_log`]: live events come from one tail per hub.
    pub(crate) tail: Option<TailMode<L>>,
    telemetry: crate::telemetry::HubTelemetry,
    topic_rules: TopicRules,
    max_topics: usize,
    authorizer: Option<Authorizer>,
}

/// A topic in the table and the number of guards ([`TopicRef`]) that hold it.
struct Entry {
    topic: Arc<Topic>,
    users: usize,
}

/// One topic's live feed.
#[derive(Debug)]
pub(crate) struct Topic {
    state: Mutex<TopicState>,
    /// With a live log: set once the hub's tail follows this topic.
    pub(crate) followed: tokio::sync::OnceCell<()>,
}

/// What the topic's (short, never across an await) lock guards.
#[derive(Debug)]
pub(crate) struct TopicState {
    /// The ring. Replaced (closing the old one) when its subscribers must catch up from the
    /// log: a cancelled publish, or a live log that lost events.
    pub(crate) sender: broadcast::Sender<LoggedEvent>,
    /// The id of the last event sent to the ring (with a live log: the tail's position);
    /// every later event reaches the ring after it. `None`: none yet.
    pub(crate) last_sent: Option<Arc<str>>,
    /// In-process publishing: the appends in flight and the events waiting for them.
    sequencer: Sequencer,
    /// With a live log: the last events the ring carried, for replays from memory.
    pub(crate) history: History,
}

/// Orders the ring by id without holding a lock across appends.
#[derive(Debug, Default)]
struct Sequencer {
    next_ticket: u64,
    in_flight: BTreeSet<u64>,
    /// Completed appends in id order, each with the first ticket issued after it completed:
    /// it may be sent once no ticket below that one is in flight.
    waiting: VecDeque<(LoggedEvent, u64)>,
}

impl Topic {
    fn new(capacity: usize, (history_events, history_bytes): (usize, usize)) -> Self {
        Self {
            state: Mutex::new(TopicState {
                sender: broadcast::channel(capacity).0,
                last_sent: None,
                sequencer: Sequencer::default(),
                history: History::new(history_events, history_bytes),
            }),
            followed: tokio::sync::OnceCell::new(),
        }
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, TopicState> {
        // Every update leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TopicState {
    /// Sends `event` to the ring and records it as the last sent.
    pub(crate) fn send(&mut self, event: LoggedEvent) {
        self.last_sent = Some(Arc::clone(event.shared_id()));
        self.history.push(&event);
        // An error only means no receiver is left; the event is in the log.
        let _ = self.sender.send(event);
    }

    /// Closes the ring: its receivers see `Closed` once drained, and catch up from the log.
    pub(crate) fn replace_ring(&mut self, capacity: usize) {
        self.sender = broadcast::channel(capacity).0;
        self.history.clear();
    }

    /// Moves the ring's position to `position` without sending anything: the history no
    /// longer ends at the ring's last event, so it starts again.
    pub(crate) fn restart_at(&mut self, position: Option<Arc<str>>) {
        self.last_sent = position;
        self.history.clear();
    }

    /// Sends, in id order, the completed events no append in flight can precede.
    fn release(&mut self) {
        while let Some((_, horizon)) = self.sequencer.waiting.front() {
            if self
                .sequencer
                .in_flight
                .first()
                .is_some_and(|ticket| ticket < horizon)
            {
                break;
            }
            let (event, _) = self.sequencer.waiting.pop_front().expect("checked above");
            self.send(event);
        }
    }
}

/// A counted reference to a topic's entry: the entry leaves the table with the last one, so
/// that dropping any hub future or subscription, at any point, leaves nothing behind.
pub(crate) struct TopicRef<L: EventLog> {
    inner: Arc<Inner<L>>,
    name: Box<str>,
    pub(crate) topic: Arc<Topic>,
}

impl<L: EventLog> TopicRef<L> {
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

impl<L: EventLog> Drop for TopicRef<L> {
    fn drop(&mut self) {
        self.inner.release(&self.name);
    }
}

/// An append registered with a topic's sequencer; dropped before it completes (a cancelled
/// publish), it closes the ring, as the event may be in the log without having been sent.
struct Append<'a, L: EventLog> {
    topic: &'a TopicRef<L>,
    ticket: Option<u64>,
}

impl<'a, L: EventLog> Append<'a, L> {
    fn start(topic: &'a TopicRef<L>) -> Self {
        let mut state = topic.topic.state();
        let ticket = state.sequencer.next_ticket;
        state.sequencer.next_ticket += 1;
        state.sequencer.in_flight.insert(ticket);
        Self {
            topic,
            ticket: Some(ticket),
        }
    }

    fn complete(mut self, event: Option<&LoggedEvent>) {
        let ticket = self.ticket.take().expect("completed once");
        let log = &self.topic.inner.log;
        let mut state = self.topic.topic.state();
        state.sequencer.in_flight.remove(&ticket);
        if let Some(event) = event {
            let horizon = state.sequencer.next_ticket;
            let waiting = &mut state.sequencer.waiting;
            // Usually the last: appends mostly complete in id order.
            let at = waiting
                .iter()
                .rposition(|(other, _)| {
                    !matches!(
                        log.compare_ids(other.id(), event.id()),
                        Some(std::cmp::Ordering::Greater)
                    )
                })
                .map_or(0, |i| i + 1);
            waiting.insert(at, (event.clone(), horizon));
        }
        state.release();
    }
}

impl<L: EventLog> Drop for Append<'_, L> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let mut state = self.topic.topic.state();
            state.sequencer.in_flight.remove(&ticket);
            state.release();
            state.replace_ring(self.topic.inner.capacity);
        }
    }
}

impl Hub<MemoryLog> {
    /// A hub over a new [`MemoryLog`] with its default retention.
    #[must_use]
    pub fn new() -> Self {
        Self::with_log(MemoryLog::new())
    }
}

impl Default for Hub<MemoryLog> {
    fn default() -> Self {
        Self::new()
    }
}

impl<L: EventLog> Clone for Hub<L> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<L: EventLog> fmt::Debug for Hub<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("capacity", &self.inner.capacity)
            .field("max_replay", &self.inner.max_replay)
            .field("gap", &self.inner.gap)
            .field("live_log", &self.inner.tail.is_some())
            .finish_non_exhaustive()
    }
}

impl<L: LiveLog> Hub<L> {
    /// A hub over a log that several servers share, delivering live events from the log
    /// itself: an event published on any server reaches this hub's subscribers, and a client
    /// can resume on any server.
    ///
    /// With a log that several processes share (a [`LiveLog`], such as `tower-sse-redis`'s
    /// `RedisLog`), publishing on server A must reach subscribers on server B, which only
    /// learns of the event from the log. This hub therefore delivers every live event, local
    /// or not, from the log:
    ///
    /// - One tail task per hub follows every topic with local subscribers
    ///   ([`LogTail::wait_any`](tower_sse_core::LogTail::wait_any); with Redis one `XREAD
    ///   BLOCK` over all their streams, on one connection, whatever the number of topics). It
    ///   reads new events with [`EventLog::read_after`] and sends them to the topic's ring,
    ///   recording its position: the id of the last event it delivered. When a topic gains its
    ///   first subscriber or loses its last, the tail is re-armed at once; it stops when no
    ///   topic is left.
    /// - `publish` only appends; the tail delivers the event, to local and remote subscribers
    ///   alike, so nothing is delivered twice.
    /// - `subscribe` joins the ring, makes sure the tail follows the topic (the first
    ///   subscribers of a topic wait together for one [`LiveLog::last_id`], the position the
    ///   tail starts from), then replays from the log and drops live events at or before the
    ///   last replayed id ([`EventLog::compare_ids`]): no gap, no duplicate, and a cursor
    ///   ahead of this server's tail (read from server A's tail before server B's delivered
    ///   it) is honoured too.
    /// - While the store is away the tail retries on its own from its positions, so
    ///   subscribers miss nothing the store kept. When the tail finds that the store lost
    ///   events after a topic's position (retention, a restart without persistence), it starts
    ///   that topic again from the log's last id and closes its ring: every subscriber catches
    ///   up from the log after its own last event and gets the [`GapSignal`] where it missed
    ///   some.
    ///
    /// [`Hub::with_log`] over a shared log keeps the in-process behaviour: local publishes are
    /// fanned out at once, and events appended by other processes reach local subscribers only
    /// when they reconnect (by replay).
    ///
    /// Subscribing needs a tokio runtime: the tail is a task.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_sse::Hub;
    /// use tower_sse_core::LiveLog;
    ///
    /// // With tower-sse-redis: `Hub::with_live_log(RedisLog::connect(url).await?)`.
    /// fn shared_hub<L: LiveLog>(log: L) -> Hub<L> {
    ///     Hub::with_live_log(log)
    /// }
    /// ```
    #[must_use]
    pub fn with_live_log(log: L) -> Self {
        let mut hub = Self::with_log(log);
        let inner = hub.inner_mut();
        inner.tail = Some(TailMode::new());
        inner.history = (DEFAULT_HISTORY_EVENTS, DEFAULT_HISTORY_BYTES);
        hub
    }
}

impl<L: EventLog> Hub<L> {
    /// A hub over `log`.
    #[must_use]
    pub fn with_log(log: L) -> Self {
        Self {
            inner: Arc::new(Inner {
                log,
                topics: Mutex::new(HashMap::new()),
                capacity: DEFAULT_CAPACITY,
                max_replay: DEFAULT_MAX_REPLAY,
                // Only a live log's tail sends every event of the log to the ring in order;
                // `with_live_log` turns the history on.
                history: (0, 0),
                gap: GapSignal::default(),
                tail: None,
                telemetry: Default::default(),
                topic_rules: TopicRules::new(),
                max_topics: DEFAULT_MAX_TOPICS_PER_STREAM,
                authorizer: None,
            }),
        }
    }

    /// Sets how many live events each topic buffers for slow subscribers (default
    /// [`DEFAULT_CAPACITY`]); past it a subscriber catches up from the log.
    ///
    /// # Panics
    ///
    /// If `capacity` is zero, or if the hub has already been cloned.
    #[must_use]
    pub fn capacity(mut self, capacity: usize) -> Self {
        assert!(capacity > 0, "hub capacity must be at least 1");
        self.inner_mut().capacity = capacity;
        self
    }

    /// Sets the most events replayed on subscribe or catch-up (default
    /// [`DEFAULT_MAX_REPLAY`]); a client further behind gets them, then the gap signal, and
    /// goes live.
    ///
    /// # Panics
    ///
    /// If the hub has already been cloned.
    #[must_use]
    pub fn max_replay(mut self, events: usize) -> Self {
        self.inner_mut().max_replay = events;
        self
    }

    /// Sets how many of its last events, and how many bytes of their frames, each topic keeps
    /// in memory over a live log (default [`DEFAULT_HISTORY_EVENTS`] and
    /// [`DEFAULT_HISTORY_BYTES`]; `0` keeps none).
    ///
    /// The hub's tail reads every event of a followed topic from the log in order; the topic
    /// keeps the last of them, and a replay or catch-up whose cursor is one of them is read
    /// from there rather than from the store, so a reconnect storm of clients a few hundred
    /// events behind issues no store read per client. Older cursors are read from the log.
    /// It has no effect over a log that is not live ([`with_log`](Self::with_log)), whose
    /// ring carries only this hub's publishes.
    ///
    /// # Panics
    ///
    /// If the hub has already been cloned.
    #[must_use]
    pub fn history(mut self, events: usize, bytes: usize) -> Self {
        let inner = self.inner_mut();
        if inner.tail.is_some() {
            inner.history = (events, bytes);
        }
        self
    }

    /// Sets how a subscriber is told that it missed events.
    ///
    /// # Panics
    ///
    /// If the hub has already been cloned.
    #[must_use]
    pub fn gap_signal(mut self, gap: GapSignal) -> Self {
        self.inner_mut().gap = gap;
        self
    }

    /// Sets the rules every topic name must follow, at publish and subscribe (default
    /// [`TopicRules::new`]: 1 to 128 bytes of `A-Z a-z 0-9 . _ ~ / -`).
    ///
    /// # Panics
    ///
    /// If the hub has already been cloned.
    #[must_use]
    pub fn topic_rules(mut self, rules: TopicRules) -> Self {
        self.inner_mut().topic_rules = rules;
        self
    }

    /// Sets the most distinct topics one subscription may carry (default
    /// [`DEFAULT_MAX_TOPICS_PER_STREAM`], 32).
    ///
    /// # Panics
    ///
    /// If `topics` is zero, or if the hub has already been cloned.
    #[must_use]
    pub fn max_topics(mut self, topics: usize) -> Self {
        assert!(topics > 0, "a subscription carries at least one topic");
        self.inner_mut().max_topics = topics;
        self
    }

    /// Sets the hook that decides which topics a request may subscribe to; see
    /// [`Authorize`](crate::Authorize). Consulted for every topic of every subscribe, before
    /// any topic is joined or read. Publishing is not checked: it is the server's own act
    /// (check a client's publish with [`Hub::allows`]).
    ///
    /// # Panics
    ///
    /// If the hub has already been cloned.
    #[must_use]
    pub fn authorize(mut self, authorizer: Authorizer) -> Self {
        self.inner_mut().authorizer = Some(authorizer);
        self
    }

    /// Validates `name` with the hub's [`TopicRules`].
    ///
    /// # Errors
    ///
    /// [`HubError::InvalidTopic`].
    pub fn topic(&self, name: &str) -> Result<TopicName, HubError<L::Error>> {
        Ok(self.inner.topic_rules.validate(name)?)
    }

    /// The distinct topics of `names`, validated, at most [`max_topics`](Self::max_topics).
    ///
    /// # Errors
    ///
    /// [`HubError::InvalidTopic`] for the first invalid name, [`HubError::Topics`] for none,
    /// more than `max_topics` distinct ones, or more than four times as many names
    /// (duplicates included; at least 64 are always read).
    pub fn topic_set<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<TopicSet, HubError<L::Error>> {
        // Bounded work on hostile input, duplicates included.
        let max_names = self.inner.max_topics.saturating_mul(4).max(64);
        let mut topics = Vec::new();
        for name in names {
            if topics.len() == max_names {
                return Err(HubError::Topics(TopicSetError::TooManyNames {
                    max: max_names,
                }));
            }
            topics.push(self.topic(name)?);
        }
        Ok(TopicSet::new(topics, self.inner.max_topics)?)
    }

    /// Whether the [`authorize`](Self::authorize) hook lets `request` read `topic` (always,
    /// without a hook).
    pub async fn allows(&self, request: &Parts, topic: &TopicName) -> bool {
        match &self.inner.authorizer {
            Some(authorizer) => authorizer.allows(request, topic).await,
            None => true,
        }
    }

    fn inner_mut(&mut self) -> &mut Inner<L> {
        Arc::get_mut(&mut self.inner).expect("configure a Hub before cloning it")
    }

    /// The log behind the hub.
    pub fn log(&self) -> &L {
        &self.inner.log
    }

    /// Appends `event` to `topic`'s log and sends it to the topic's live subscribers.
    ///
    /// The log assigns the id (an id set on `event` is replaced) and encodes the frame once;
    /// every subscriber receives that same `Bytes`. No lock is held while the log appends:
    /// concurrent publishers of a topic append in parallel, and the topic's sequencer sends
    /// their events to subscribers in the log's order (see [`Hub`]). Over a
    /// live log ([`with_live_log`](Hub::with_live_log)) this only appends: the hub's tail
    /// delivers the event, on this server and every other.
    ///
    /// # Errors
    ///
    /// [`HubError::InvalidTopic`] for a name outside the hub's [`TopicRules`] (the log is not
    /// touched); the log's error, the event then neither stored nor sent.
    pub async fn publish(
        &self,
        topic: &str,
        event: &Event<'_>,
    ) -> Result<LoggedEvent, HubError<L::Error>> {
        let topic = self.topic(topic)?;
        let logged = if self.inner.tail.is_some() {
            // The tail delivers it, here and on every other server.
            self.inner.log.append(&topic, event).await
        } else {
            let topic_ref = self.inner.acquire(&topic);
            let append = Append::start(&topic_ref);
            let logged = self.inner.log.append(&topic, event).await;
            append.complete(logged.as_ref().ok());
            logged
        };
        self.inner.telemetry.published(&logged);
        logged.map_err(HubError::Log)
    }

    /// Subscribes to `topic`: replays the events after `cursor` (the client's
    /// `Last-Event-ID`), then goes live, with no gap and no duplicate in between.
    ///
    /// With no cursor (or an empty one) the subscription starts with the next live event. When
    /// the cursor is not a position of this topic the log can resume from
    /// ([`ReplayOutcome::Gap`](tower_sse_core::ReplayOutcome::Gap) or
    /// [`ReplayOutcome::Unknown`](tower_sse_core::ReplayOutcome::Unknown)) the subscription
    /// starts with the [`GapSignal`]; when more than [`max_replay`](Self::max_replay) events
    /// follow it, the signal comes after the first `max_replay` of them. Only the first page
    /// of the replay is read here; the rest is read as the subscription is drained.
    ///
    /// # Errors
    ///
    /// [`HubError::InvalidTopic`] for a name outside the hub's [`TopicRules`];
    /// [`HubError::Forbidden`] when the [`authorize`](Self::authorize) hook denies the topic to
    /// a request without credentials (use [`subscribe_request`](Self::subscribe_request) to
    /// pass the client's); over a live log, the log's error when the tail could not start
    /// following the topic. A failed replay read is not an error: the subscription starts
    /// with the gap signal, reason `log-error` (see [`Hub`]).
    pub async fn subscribe(
        &self,
        topic: &str,
        cursor: Option<&str>,
    ) -> Result<Subscription, HubError<L::Error>> {
        self.subscribe_topics([topic], cursor).await
    }

    /// Subscribes to several topics on one stream (see [`subscribe_request`](Self::subscribe_request)),
    /// as a request without credentials.
    ///
    /// # Errors
    ///
    /// As [`subscribe_request`](Self::subscribe_request).
    pub async fn subscribe_topics<'a>(
        &self,
        topics: impl IntoIterator<Item = &'a str>,
        cursor: Option<&str>,
    ) -> Result<Subscription, HubError<L::Error>> {
        let set = self.topic_set(topics)?;
        if self.inner.authorizer.is_some() {
            self.check_set(&auth::anonymous(), &set).await?;
        }
        self.subscribe_set(&set, cursor).await
    }

    /// Subscribes the client whose request head is `request` to `topics` on one stream, after
    /// its last event id `cursor`.
    ///
    /// The names are validated ([`TopicRules`]), deduplicated and limited to
    /// [`max_topics`](Self::max_topics); then the [`authorize`](Self::authorize) hook is asked
    /// about each, before any topic is joined or read. Each topic's events come in its order,
    /// with the replay-then-live guarantee of [`subscribe`](Self::subscribe).
    ///
    /// With one distinct topic the stream is exactly [`subscribe`](Self::subscribe)'s (the
    /// log's ids). With several, every event's `id` is a composite cursor of the whole set
    /// ([`TopicSet`]): `<topic> <opaque>`, where `<topic>` names the event's topic and the rest
    /// holds every topic's position. A client that reconnects with it as `Last-Event-ID`
    /// (on any server sharing the log) resumes every topic with no gap and no duplicate; a
    /// cursor of another set, or no cursor's worth of sense, gets each topic's
    /// [`GapSignal`] (`unknown-cursor`). Without a cursor, each topic starts at its head.
    ///
    /// # Errors
    ///
    /// [`HubError::InvalidTopic`], [`HubError::Topics`] (none, or too many),
    /// [`HubError::Forbidden`] (the first denied topic), or over a live log the log's error.
    pub async fn subscribe_request<'a>(
        &self,
        request: &Parts,
        topics: impl IntoIterator<Item = &'a str>,
        cursor: Option<&str>,
    ) -> Result<Subscription, HubError<L::Error>> {
        let set = self.topic_set(topics)?;
        self.check_set(request, &set).await?;
        self.subscribe_set(&set, cursor).await
    }

    /// Asks the hook about every topic of `set`.
    async fn check_set(&self, request: &Parts, set: &TopicSet) -> Result<(), HubError<L::Error>> {
        if let Some(authorizer) = &self.inner.authorizer {
            if let Some(topic) = authorizer.first_denied(request, set.names()).await {
                return Err(HubError::Forbidden { topic });
            }
        }
        Ok(())
    }

    /// One validated, authorized topic: the log's own ids.
    async fn subscribe_one(
        &self,
        topic: &TopicName,
        cursor: Option<&str>,
    ) -> Result<Subscription, HubError<L::Error>> {
        let topic_ref = self.inner.acquire(topic);
        // Join the ring first: every event sent from now on reaches this receiver.
        let receiver = topic_ref.topic.state().sender.subscribe();
        if let Some(mode) = &self.inner.tail {
            mode.follow(&self.inner, &topic_ref)
                .await
                .map_err(HubError::Log)?;
        }
        let start = match cursor {
            Some(cursor) => Start::After(cursor),
            None => Start::Live,
        };
        Ok(Subscription::start(Arc::clone(&self.inner), topic_ref, receiver, start).await)
    }

    /// Topics currently tracked: those with subscribers or a publish in flight.
    pub fn topic_count(&self) -> usize {
        lock(&self.inner.topics).len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<L: EventLog> Inner<L> {
    /// The topic's entry, created if needed, counted until the returned guard drops.
    fn acquire(self: &Arc<Self>, name: &str) -> TopicRef<L> {
        let mut topics = lock(&self.topics);
        let entry = topics.entry(name.into()).or_insert_with(|| Entry {
            topic: Arc::new(Topic::new(self.capacity, self.history)),
            users: 0,
        });
        entry.users += 1;
        TopicRef {
            inner: Arc::clone(self),
            name: name.into(),
            topic: Arc::clone(&entry.topic),
        }
    }

    /// One guard fewer; the entry leaves the table with the last.
    fn release(&self, name: &str) {
        let removed = {
            let mut topics = lock(&self.topics);
            match topics.get_mut(name) {
                Some(entry) if entry.users > 1 => {
                    entry.users -= 1;
                    None
                }
                Some(_) => topics.remove(name),
                None => None,
            }
        };
        if removed.is_some() {
            if let Some(mode) = &self.tail {
                // The tail stops following it at once, rather than at its next timeout.
                mode.rearm();
            }
        }
    }

    /// Whether `id` is at or before `last`: already delivered (or skipped by a gap signal).
    pub(crate) fn at_or_before(&self, id: &str, last: Option<&Arc<str>>) -> bool {
        last.is_some_and(|last| {
            matches!(
                self.log.compare_ids(id, last),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            )
        })
    }
}
