//! [`Hub`]: publish/subscribe over an [`EventLog`], with replay and bounded buffers.
//!
//! `publish(topic, event)` appends the event to the log, which assigns its id and encodes it
//! once; the encoded [`Bytes`] then go to every live subscriber of the topic without another
//! copy. `subscribe(topic, cursor)` replays what the log holds after the cursor (a client's
//! `Last-Event-ID`) and then goes live, atomically: a per-topic lock is held across "append
//! and fan out" and across "read the log and join the live feed", so no event falls between
//! the two and none is sent twice, whatever publishers run concurrently.
//!
//! Live events reach subscribers through one bounded ring per topic
//! ([`capacity`](Hub::capacity)); a subscriber that falls more than that far behind does not
//! hold memory: it catches up from the log from the last id it delivered, and when the log no
//! longer retains that position it gets a gap signal ([`GapSignal`]) followed by what the log
//! still has. Memory per topic is the ring, whatever subscribers do.
//!
//! Over a log that several servers share, [`Hub::with_live_log`] delivers live events from
//! the log itself, through one tail task per topic; its docs describe the design.
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

mod subscription;
mod tail;

use std::{
    collections::HashMap,
    fmt,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use tokio::sync::broadcast;
use tower_sse_core::{Event, EventLog, LiveLog, LoggedEvent, MemoryLog, ReplayOutcome};

use tail::{TailMode, TailState};

pub use subscription::{Subscription, SubscriptionError};

use crate::GapSignal;

/// Live events buffered per topic before a slow subscriber has to catch up from the log.
pub const DEFAULT_CAPACITY: usize = 1024;

/// Events replayed per subscribe or catch-up before the gap signal is sent instead; the same
/// default as the layer's (one rule on both paths).
pub use tower_sse_core::DEFAULT_MAX_REPLAY;

/// A publish/subscribe hub over an [`EventLog`]; cheap to clone (an `Arc` inside).
pub struct Hub<L: EventLog = MemoryLog> {
    inner: Arc<Inner<L>>,
}

pub(crate) struct Inner<L: EventLog> {
    pub(crate) log: L,
    topics: Mutex<HashMap<Box<str>, Arc<Topic>>>,
    capacity: usize,
    pub(crate) max_replay: usize,
    pub(crate) gap: GapSignal,
    /// Set by [`Hub::with_live_log`]: live events come from one tail per topic.
    pub(crate) tail: Option<TailMode<L>>,
}

/// One topic's live feed. The async lock makes "append + send" (or the tail's "send + move
/// the position") and "read + join" atomic with respect to each other.
#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) live: tokio::sync::Mutex<Live>,
}

/// What the topic lock guards.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// The ring; exists once someone subscribed.
    pub(crate) sender: Option<broadcast::Sender<LoggedEvent>>,
    /// With a live log: the topic's tail, while it has subscribers.
    pub(crate) tail: Option<TailState>,
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
    /// - Each topic with local subscribers has one tail task (not one per connection) that
    ///   waits for new events ([`LogTail::wait_after`](tower_sse_core::LogTail::wait_after),
    ///   Redis `XREAD BLOCK`), reads them with [`EventLog::read_after`] and sends them to the
    ///   topic's ring under the topic lock, where it also records its position: the id of the
    ///   last event it delivered. The tail stops when the topic's last subscriber leaves.
    /// - `publish` only appends; the tail delivers the event, to local and remote subscribers
    ///   alike, so nothing is delivered twice.
    /// - `subscribe` takes the topic lock, replays from the log only up to the tail's
    ///   position (ids are ordered, [`LiveLog::compare_ids`]), and joins the ring, which
    ///   carries exactly the events after the position: no gap, no duplicate. A cursor ahead
    ///   of this server's tail (a client that read an event from server A's tail before server
    ///   B's tail delivered it) is honoured too: the subscription skips live events at or
    ///   before its last id.
    /// - While the store is away the tail retries on its own from its position, so
    ///   subscribers miss nothing the store kept. When the tail finds that the store lost
    ///   events after its position (retention, a restart without persistence), it starts
    ///   again from the log's last id and closes the ring: every subscriber catches up from
    ///   the log after its own last event and gets the [`GapSignal`] where it missed some.
    ///
    /// [`Hub::with_log`] over a shared log keeps the in-process behaviour: local publishes are
    /// fanned out at once, and events appended by other processes reach local subscribers only
    /// when they reconnect (by replay).
    ///
    /// Subscribing needs a tokio runtime: each topic with subscribers runs a task, and holds
    /// whatever the log's tail holds (with Redis, a connection per topic).
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
        hub.inner_mut().tail = Some(TailMode::new());
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
                gap: GapSignal::default(),
                tail: None,
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
    /// [`DEFAULT_MAX_REPLAY`]); a client further behind gets the gap signal and goes live.
    ///
    /// # Panics
    ///
    /// If the hub has already been cloned.
    #[must_use]
    pub fn max_replay(mut self, events: usize) -> Self {
        self.inner_mut().max_replay = events;
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
    /// every subscriber receives that same `Bytes`. Over a live log
    /// ([`with_live_log`](Hub::with_live_log)) this only appends: the topic's tail delivers
    /// the event, on this server and every other.
    ///
    /// # Errors
    ///
    /// The log's error; the event was then neither stored nor sent.
    pub async fn publish(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, L::Error> {
        if self.inner.tail.is_some() {
            // The tail delivers it, here and on every other server.
            return self.inner.log.append(topic, event).await;
        }
        let entry = self.topic(topic);
        let result = {
            let live = entry.live.lock().await;
            let logged = self.inner.log.append(topic, event).await;
            if let (Ok(logged), Some(sender)) = (&logged, live.sender.as_ref()) {
                // An error only means no receiver is left; the event is in the log.
                let _ = sender.send(logged.clone());
            }
            logged
        };
        self.release(topic, entry);
        result
    }

    /// Subscribes to `topic`: replays the events after `cursor` (the client's
    /// `Last-Event-ID`), then goes live, with no gap and no duplicate in between.
    ///
    /// With no cursor (or an empty one) the subscription starts with the next live event. When
    /// the cursor is not a position the log can resume from ([`ReplayOutcome::Gap`] or
    /// [`ReplayOutcome::Unknown`]), or more than [`max_replay`](Self::max_replay) events
    /// follow it, the subscription starts with the [`GapSignal`].
    ///
    /// # Errors
    ///
    /// The log's error while reading the replay.
    pub async fn subscribe(
        &self,
        topic: &str,
        cursor: Option<&str>,
    ) -> Result<Subscription, L::Error> {
        let entry = self.topic(topic);
        let cursor = cursor.filter(|c| !c.is_empty());
        let joined = self.join(topic, &entry, cursor).await;
        let (receiver, replay) = match joined {
            Ok(joined) => joined,
            Err(error) => {
                self.release(topic, entry);
                return Err(error);
            }
        };
        Ok(Subscription::new(
            Arc::clone(&self.inner),
            topic.into(),
            entry,
            receiver,
            cursor.map(Arc::from),
            replay,
        ))
    }

    /// Under the topic lock: starts the tail (with a live log), replays after `cursor` (up
    /// to the tail's position), and joins the ring.
    async fn join(
        &self,
        topic: &str,
        entry: &Arc<Topic>,
        cursor: Option<&str>,
    ) -> Result<(broadcast::Receiver<LoggedEvent>, Option<Replayed>), L::Error> {
        let mut live = entry.live.lock().await;
        if let Some(mode) = &self.inner.tail {
            mode.ensure_started(&self.inner, topic, entry, &mut live.tail)
                .await?;
        }
        let replay = match cursor {
            Some(cursor) => {
                let upto = live.tail.as_ref().map(|tail| tail.position.clone());
                Some(self.inner.replay(topic, cursor, upto.as_ref()).await?)
            }
            None => None,
        };
        let capacity = self.inner.capacity;
        let sender = live
            .sender
            .get_or_insert_with(|| broadcast::channel(capacity).0);
        Ok((sender.subscribe(), replay))
    }

    fn topic(&self, name: &str) -> Arc<Topic> {
        self.inner.topic(name)
    }

    fn release(&self, name: &str, topic: Arc<Topic>) {
        self.inner.release(name, &topic);
    }

    /// Topics currently tracked: those with subscribers or a publish in flight.
    pub fn topic_count(&self) -> usize {
        self.inner
            .topics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }
}

impl<L: EventLog> Inner<L> {
    fn topic(&self, name: &str) -> Arc<Topic> {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(topic) = topics.get(name) {
            return Arc::clone(topic);
        }
        let topic = Arc::new(Topic {
            live: tokio::sync::Mutex::new(Live::default()),
        });
        topics.insert(name.into(), Arc::clone(&topic));
        topic
    }

    /// Drops the topic's entry when nobody else holds it and nobody listens, so the map only
    /// holds topics with subscribers (or a publish in flight).
    pub(crate) fn release(&self, name: &str, topic: &Arc<Topic>) {
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        // The map and `topic` are the only holders: no subscription, no other call in flight,
        // and nobody can take a new reference while the map is locked.
        if Arc::strong_count(topic) == 2 {
            let Ok(mut live) = topic.live.try_lock() else {
                return;
            };
            if live.sender.as_ref().is_none_or(|s| s.receiver_count() == 0) {
                if let Some(tail) = live.tail.take() {
                    tail.stop();
                }
                topics.remove(name);
            }
        }
    }

    /// Whether a live event was already delivered to a subscriber whose last event is
    /// `last_id`. Only a live log's ring can carry such events (a subscriber that resumed
    /// from a cursor ahead of this server's tail); in-process, the topic lock rules it out.
    pub(crate) fn already_delivered(&self, id: &str, last_id: Option<&Arc<str>>) -> bool {
        match (&self.tail, last_id) {
            (Some(mode), Some(last_id)) => mode.replayed(&self.log, id, Some(last_id)),
            _ => false,
        }
    }

    /// Reads up to `max_replay` events after `cursor` and turns them into frames, with the
    /// gap signal first where the client missed something. Caller holds the topic lock.
    ///
    /// With a live log, `upto` is the tail's position: the replay stops there, as the ring
    /// carries what follows.
    pub(crate) async fn replay(
        &self,
        topic: &str,
        cursor: &str,
        upto: Option<&Option<Arc<str>>>,
    ) -> Result<Replayed, L::Error> {
        let mut frames = Vec::new();
        let mut last_id = None;
        let mut outcome = None;
        let mut cursor: Arc<str> = Arc::from(cursor);
        let mut budget = self.max_replay;
        loop {
            let page = self
                .log
                .read_after(topic, Some(&cursor), budget.clamp(1, 1024))
                .await?;
            if outcome.is_none() {
                if page.outcome.is_discontinuous() {
                    frames.push(self.gap.frame(
                        if matches!(page.outcome, ReplayOutcome::Unknown(_)) {
                            crate::GapReason::UnknownCursor
                        } else {
                            crate::GapReason::Gap
                        },
                        None,
                    ));
                }
                outcome = Some(page.outcome.clone());
            }
            budget = budget.saturating_sub(page.events.len());
            let mut reached_live = false;
            for event in page.events {
                if let (Some(mode), Some(upto)) = (&self.tail, upto) {
                    if !mode.replayed(&self.log, event.id(), upto.as_deref()) {
                        reached_live = true;
                        break;
                    }
                }
                let (id, frame) = event.into_parts();
                frames.push(frame);
                last_id = Some(Arc::clone(&id));
                cursor = id;
            }
            if reached_live || !page.has_more {
                break;
            }
            if budget == 0 {
                // Too far behind to replay: tell the client, and go live from here.
                frames.push(self.gap.frame(crate::GapReason::TooFarBehind, None));
                break;
            }
        }
        Ok(Replayed {
            outcome: outcome.unwrap_or(ReplayOutcome::Resumed),
            frames,
            last_id,
        })
    }
}

/// What a replay produced: frames to send before going live.
#[derive(Debug)]
pub(crate) struct Replayed {
    pub(crate) outcome: ReplayOutcome,
    pub(crate) frames: Vec<Bytes>,
    pub(crate) last_id: Option<Arc<str>>,
}
