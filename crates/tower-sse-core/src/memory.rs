//! [`MemoryLog`]: the in-process [`EventLog`], bounded per topic and in topics.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_sse_core::{Event, ManualClock, MemoryLog, ReplayOutcome, Retention};
//!
//! let clock = ManualClock::new();
//! let log = MemoryLog::builder()
//!     .retention(Retention::default().max_age(Duration::from_secs(60)))
//!     .clock(clock.clone())
//!     .build();
//!
//! let first = log.append_sync("news", &Event::new().data("one"))?;
//! clock.advance(Duration::from_secs(30));
//! let second = log.append_sync("news", &Event::new().data("two"))?;
//!
//! let replay = log.read_after_sync("news", Some(first.id()), 10);
//! assert_eq!((replay.outcome, replay.events), (ReplayOutcome::Resumed, vec![second.clone()]));
//!
//! // At 60 s `first` has expired: a reader that had not seen it is told about the gap.
//! clock.advance(Duration::from_secs(30));
//! let replay = log.read_after_sync("news", Some("garbage"), 10);
//! assert!(matches!(replay.outcome, ReplayOutcome::Unknown(_)));
//! let replay = log.read_after_sync("news", None, 10);
//! assert_eq!(replay.events, vec![second]);
//! # Ok::<(), tower_sse_core::MemoryLogError>(())
//! ```

mod id;
mod topic;

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use self::{id::Epoch, topic::TopicLog};
use crate::{
    Clock, Event, EventLog, InvalidTopic, LoggedEvent, Replay, ReplayOutcome, Retention, StdClock,
    TopicRules, UnknownCursor,
};

/// The default [`MemoryLogBuilder::max_topics`]: 10,000 topics.
pub const DEFAULT_MAX_TOPICS: usize = 10_000;

/// An in-memory [`EventLog`]: per-topic queues, bounded by a [`Retention`] and a topic limit.
///
/// # Ids
///
/// Ids look like `3f1c0a9e5b7d2c84-1234`: a random epoch drawn when the log is created, then
/// a sequence number shared by all of the log's topics. A cursor from before a restart (or
/// from another instance) has another epoch and is reported as
/// [`UnknownCursor::OtherEpoch`] instead of being misread as a position in this log. Because
/// the sequence is shared, an id is never issued twice by one log, even for a topic that was
/// removed and created again; lookup after a cursor is a binary search, O(log n) in the
/// topic's length.
///
/// # Bounds
///
/// Each topic keeps what its [`Retention`] allows (by default the last
/// [`DEFAULT_MAX_EVENTS`](crate::DEFAULT_MAX_EVENTS) events). Topics are created by
/// `append` only, never by reads, and at most [`DEFAULT_MAX_TOPICS`] exist unless configured
/// otherwise. When an append would create one topic too many, the log first removes the
/// topics that retain nothing (after applying the age limit); if none can be removed the
/// append fails with [`MemoryLogError::TooManyTopics`]. [`MemoryLog::evict_expired`] does the
/// same clean-up on demand, for example from a periodic task.
///
/// # Locking
///
/// Every operation completes synchronously, under short-lived `std::sync` locks: a map lock
/// (shared by appends and reads of existing topics) and one mutex per topic. The
/// [`EventLog`] futures are ready on their first poll. Code that must append and fan out, or
/// replay and subscribe, atomically can call [`append_sync`](Self::append_sync) and
/// [`read_after_sync`](Self::read_after_sync) while holding its own lock: the log never calls
/// out while holding its locks, so it cannot take part in a deadlock.
///
/// # Time
///
/// The age limit uses the log's [`Clock`] ([`StdClock`] unless configured), read once per
/// append, read and clean-up; nothing else reads the time.
pub struct MemoryLog<C = StdClock> {
    epoch: Epoch,
    /// The next sequence number to assign; sequence numbers start at 1.
    next_seq: AtomicU64,
    topics: RwLock<Topics>,
    retention: Retention,
    max_topics: usize,
    topic_rules: TopicRules,
    clock: C,
}

#[derive(Debug, Default)]
struct Topics {
    by_name: HashMap<Box<str>, Mutex<TopicLog>>,
    /// The highest `dropped_through` of the topics removed so far. A topic created later
    /// starts from it: a cursor older than that may have missed events of a removed
    /// incarnation of the same topic, so it is conservatively reported as a gap.
    removed_through: u64,
}

/// The error of [`MemoryLog::append_sync`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MemoryLogError {
    /// The append would create a topic beyond [`MemoryLogBuilder::max_topics`], and every
    /// existing topic still retains events.
    TooManyTopics {
        /// The configured limit.
        limit: usize,
    },
    /// The topic name breaks the log's [`TopicRules`] ([`MemoryLogBuilder::topic_rules`]):
    /// nothing is stored under it.
    InvalidTopic(InvalidTopic),
}

impl fmt::Display for MemoryLogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyTopics { limit } => {
                write!(f, "too many topics: all {limit} topics still retain events")
            }
            Self::InvalidTopic(_) => f.write_str("invalid topic name"),
        }
    }
}

impl std::error::Error for MemoryLogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidTopic(error) => Some(error),
            Self::TooManyTopics { .. } => None,
        }
    }
}

impl MemoryLog {
    /// A log with the default [`Retention`], [`DEFAULT_MAX_TOPICS`] and the standard clock.
    #[must_use]
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// Configures a log.
    pub fn builder() -> MemoryLogBuilder {
        MemoryLogBuilder {
            retention: Retention::default(),
            max_topics: DEFAULT_MAX_TOPICS,
            topic_rules: TopicRules::new(),
            clock: StdClock,
        }
    }
}

impl Default for MemoryLog {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryLog<C> {
    /// Appends `event` to `topic` and returns it as stored; see [`EventLog::append`].
    ///
    /// Any id set on `event` is replaced by the log's. The new event counts toward the
    /// topic's retention at once: with a small enough limit it is dropped immediately and only
    /// the returned value carries it.
    ///
    /// # Errors
    ///
    /// [`MemoryLogError::TooManyTopics`] when `topic` does not exist yet and the topic limit is
    /// reached by topics that all retain events; [`MemoryLogError::InvalidTopic`] when `topic`
    /// breaks the log's [`TopicRules`].
    pub fn append_sync(
        &self,
        topic: &str,
        event: &Event<'_>,
    ) -> Result<LoggedEvent, MemoryLogError> {
        self.check_topic(topic)?;
        {
            let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(log) = topics.by_name.get(topic) {
                return Ok(self.push(&mut lock(log), event));
            }
        }
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        let topics = &mut *topics;
        if !topics.by_name.contains_key(topic) {
            if topics.by_name.len() >= self.max_topics {
                self.remove_empty(topics, self.clock.now());
            }
            if topics.by_name.len() >= self.max_topics {
                return Err(MemoryLogError::TooManyTopics {
                    limit: self.max_topics,
                });
            }
            let log = TopicLog::new(topics.removed_through);
            topics.by_name.insert(topic.into(), Mutex::new(log));
        }
        let log = topics.by_name.get_mut(topic).expect("inserted above");
        Ok(self.push(log.get_mut().unwrap_or_else(PoisonError::into_inner), event))
    }

    /// Reads the events of `topic` after `cursor`; see [`EventLog::read_after`] and
    /// [`ReplayOutcome`] for what each outcome returns.
    ///
    /// Never fails: any cursor string is accepted, and one this log did not issue is
    /// [`ReplayOutcome::Unknown`]. A topic that does not exist reads as empty (so does a name
    /// outside the log's [`TopicRules`], which no append accepts; [`EventLog::read_after`]
    /// refuses it with [`MemoryLogError::InvalidTopic`]).
    pub fn read_after_sync(&self, topic: &str, cursor: Option<&str>, limit: usize) -> Replay {
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => match self.epoch.parse(cursor) {
                Ok(seq) if seq < self.next_seq.load(Ordering::Acquire) => Some(seq),
                Ok(_) => return unknown(UnknownCursor::Ahead),
                Err(reason) => return unknown(reason),
            },
        };
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        match topics.by_name.get(topic) {
            Some(log) => {
                let mut log = lock(log);
                log.expire(&self.retention, self.clock.now());
                log.read_after(after, limit)
            }
            None => {
                let outcome = match after {
                    None => ReplayOutcome::Fresh,
                    // A removed incarnation of this topic may have held it: conservatively a
                    // gap (visible), as the log no longer knows which topic it was; the
                    // newest removed event itself is a reader that missed nothing, as for a
                    // topic's own last dropped event.
                    Some(seq) if seq < topics.removed_through => ReplayOutcome::gap(None),
                    Some(seq) if seq == topics.removed_through => ReplayOutcome::Resumed,
                    // Issued after every removal, and the topic holds nothing: another
                    // topic's id. Resuming from it would replay nothing, silently.
                    Some(_) => ReplayOutcome::Unknown(UnknownCursor::OtherTopic),
                };
                Replay::new(outcome, Vec::new(), false)
            }
        }
    }

    /// `Ok` when `topic` follows the log's [`TopicRules`].
    fn check_topic(&self, topic: &str) -> Result<(), MemoryLogError> {
        self.topic_rules
            .check(topic.as_bytes())
            .map_err(MemoryLogError::InvalidTopic)
    }

    /// Applies the age limit to every topic and removes the topics that retain nothing.
    ///
    /// Retention is otherwise applied per topic when it is appended to or read, so a topic
    /// nobody touches keeps its expired events until this runs. Takes the map lock for
    /// writing and visits every topic: O(topics).
    pub fn evict_expired(&self) {
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        self.remove_empty(&mut topics, self.clock.now());
    }

    /// The number of topics the log holds.
    pub fn topic_count(&self) -> usize {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        topics.by_name.len()
    }

    /// The number of events `topic` holds, counting expired events not evicted yet.
    pub fn len(&self, topic: &str) -> usize {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        topics.by_name.get(topic).map_or(0, |log| lock(log).len())
    }

    /// Whether `topic` holds no event.
    pub fn is_empty(&self, topic: &str) -> bool {
        self.len(topic) == 0
    }

    /// The retention applied to every topic.
    pub fn retention(&self) -> &Retention {
        &self.retention
    }

    fn push(&self, log: &mut TopicLog, event: &Event<'_>) -> LoggedEvent {
        // Assigned under the topic's lock, so a topic's sequence numbers increase along its
        // queue; the clock is read under it too, so append times do.
        let seq = self.next_seq.fetch_add(1, Ordering::AcqRel);
        let logged = LoggedEvent::encode(self.epoch.id(seq), event)
            .expect("log ids contain no CR, LF or NUL");
        log.push(seq, logged.clone(), self.clock.now(), &self.retention);
        logged
    }

    fn remove_empty(&self, topics: &mut Topics, now: Instant) {
        let mut removed_through = topics.removed_through;
        topics.by_name.retain(|_, log| {
            let log = log.get_mut().unwrap_or_else(PoisonError::into_inner);
            log.expire(&self.retention, now);
            if log.is_empty() {
                removed_through = removed_through.max(log.dropped_through());
            }
            !log.is_empty()
        });
        topics.removed_through = removed_through;
    }
}

impl<C: Clock> EventLog for MemoryLog<C> {
    type Error = MemoryLogError;

    async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, Self::Error> {
        self.append_sync(topic, event)
    }

    async fn read_after(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Replay, Self::Error> {
        self.check_topic(topic)?;
        Ok(self.read_after_sync(topic, cursor, limit))
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        // One sequence is shared by every topic of an instance, so ids order across topics too.
        Some(self.epoch.parse(a).ok()?.cmp(&self.epoch.parse(b).ok()?))
    }

    /// The newest entry of the topic, or the last event it (or a removed topic) dropped: a
    /// position [`read_after`](EventLog::read_after) resumes from. O(1).
    async fn head(&self, topic: &str) -> Result<Option<Arc<str>>, Self::Error> {
        self.check_topic(topic)?;
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        let seq = match topics.by_name.get(topic) {
            Some(log) => lock(log).head(),
            None => topics.removed_through,
        };
        Ok((seq > 0).then(|| self.epoch.id(seq)))
    }
}

impl<C> fmt::Debug for MemoryLog<C> {
    /// Shows the configuration, not the events.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryLog")
            .field("epoch", &self.epoch.as_str())
            .field("next_seq", &self.next_seq)
            .field("retention", &self.retention)
            .field("max_topics", &self.max_topics)
            .field("topic_rules", &self.topic_rules)
            .finish_non_exhaustive()
    }
}

/// Configures a [`MemoryLog`]; from [`MemoryLog::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct MemoryLogBuilder<C = StdClock> {
    retention: Retention,
    max_topics: usize,
    topic_rules: TopicRules,
    clock: C,
}

impl<C: Clock> MemoryLogBuilder<C> {
    /// What each topic retains; [`Retention::default`] unless set.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The most topics the log holds at once; [`DEFAULT_MAX_TOPICS`] unless set.
    pub fn max_topics(mut self, max: usize) -> Self {
        self.max_topics = max;
        self
    }

    /// The rules a topic name must follow ([`TopicRules::new`] unless set): a name outside
    /// them is refused by `append`, `read_after` and `head` with
    /// [`MemoryLogError::InvalidTopic`]. Use the rules of the hub or layer in front of the log.
    pub fn topic_rules(mut self, rules: TopicRules) -> Self {
        self.topic_rules = rules;
        self
    }

    /// The clock for the age limit; [`StdClock`] unless set. Tests use a
    /// [`ManualClock`](crate::ManualClock).
    pub fn clock<C2: Clock>(self, clock: C2) -> MemoryLogBuilder<C2> {
        MemoryLogBuilder {
            retention: self.retention,
            max_topics: self.max_topics,
            topic_rules: self.topic_rules,
            clock,
        }
    }

    /// Creates the log, drawing its random epoch.
    #[must_use]
    pub fn build(self) -> MemoryLog<C> {
        MemoryLog {
            epoch: Epoch::random(),
            next_seq: AtomicU64::new(1),
            topics: RwLock::default(),
            retention: self.retention,
            max_topics: self.max_topics,
            topic_rules: self.topic_rules,
            clock: self.clock,
        }
    }
}

fn lock(log: &Mutex<TopicLog>) -> std::sync::MutexGuard<'_, TopicLog> {
    // A panic cannot leave a topic half-updated in a way that matters: at worst its byte
    // count is off until the events drain. Keep serving rather than propagate the panic.
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unknown(reason: UnknownCursor) -> Replay {
    Replay::new(ReplayOutcome::Unknown(reason), Vec::new(), false)
}
