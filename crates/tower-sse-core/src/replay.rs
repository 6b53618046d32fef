//! The replay model: an [`EventLog`] stores events per topic and replays them after a cursor.
//!
//! A browser's `EventSource` remembers the `id` of the last event it saw and sends it back in
//! the `Last-Event-ID` header when it reconnects. A server that keeps a log can then send
//! exactly what the client missed. This module holds the store-independent part of that
//! contract:
//!
//! - [`EventLog`]: append an event to a topic (the log assigns its id), and read the events
//!   after a cursor, at most `limit` at a time.
//! - [`LoggedEvent`]: a stored event, its id and its frame, encoded once with that id so
//!   every subscriber and every replay shares the same [`Bytes`].
//! - [`Replay`] and [`ReplayOutcome`]: what a read returns, and how the cursor related to
//!   what the log still holds (fresh, resumed, gap or unknown).
//! - [`Retention`](crate::Retention): how much a log keeps per topic, by count, bytes and age.
//!
//! Ids are opaque strings to clients: a store is free to choose their format, and a client
//! may send anything back. Any string is a valid cursor argument; one that the log did not
//! issue is reported as [`ReplayOutcome::Unknown`], never as an error and never misread as a
//! position.
//!
//! [`MemoryLog`](crate::MemoryLog) is the in-process implementation.
//!
//! # Example
//!
//! ```
//! use tower_sse_core::{Event, EventLog, MemoryLog, ReplayOutcome};
//!
//! async fn resume<L: EventLog>(log: &L) -> Result<(), L::Error> {
//!     let first = log.append("chat", &Event::new().data("hello")).await?;
//!     log.append("chat", &Event::new().data("world")).await?;
//!
//!     // A client that saw `first` reconnects with its id as `Last-Event-ID`.
//!     let replay = log.read_after("chat", Some(first.id()), 100).await?;
//!     assert_eq!(replay.outcome, ReplayOutcome::Resumed);
//!     assert_eq!(replay.events.len(), 1);
//!     assert!(replay.events[0].frame().ends_with(b"data: world\n\n"));
//!     assert!(!replay.has_more);
//!
//!     // A cursor the log never issued is reported, not misread.
//!     let replay = log.read_after("chat", Some("not-an-id"), 100).await?;
//!     assert!(matches!(replay.outcome, ReplayOutcome::Unknown(_)));
//!     assert!(replay.events.is_empty());
//!     Ok(())
//! }
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     match f.as_mut().poll(&mut cx) { std::task::Poll::Ready(out) => out, _ => unreachable!() }
//! # }
//! block_on(resume(&MemoryLog::new()))?;
//! # Ok::<(), tower_sse_core::MemoryLogError>(())
//! ```

use std::{cmp::Ordering, fmt, future::Future, sync::Arc};

use bytes::Bytes;

use crate::{Event, EventError};

/// An append-only log of events per topic, whose ids are ordered cursors.
///
/// The methods return futures so that a store can do I/O (Redis, a database); the trait uses
/// no runtime, boxes nothing and is implemented with plain `async` blocks or `async fn`s.
/// [`MemoryLog`](crate::MemoryLog) completes its futures on the first poll.
///
/// # Contract
///
/// Every implementation must pass the shared conformance suite (the `conformance` feature):
///
/// - `append` assigns an id that no earlier append to the same log assigned, and stores the
///   event's frame encoded with that id ([`LoggedEvent::encode`]).
/// - Within a topic, `read_after` returns events in append order, each exactly once across
///   successive reads that pass the previous [`Replay::next_cursor`].
/// - Reading never creates a topic and never fails because of the cursor's content: any
///   string, including empty, very long, or containing NUL, CR or LF, is a valid argument.
/// - A topic name outside the store's [`TopicRules`](crate::TopicRules) (the default rules
///   unless the store is configured otherwise) is an error of `append`, `read_after` and
///   `head`: it never becomes a key or an entry.
/// - What a topic retains is bounded (see [`Retention`](crate::Retention)); events dropped by
///   retention are reported to readers whose cursor precedes them as [`ReplayOutcome::Gap`],
///   never silently.
pub trait EventLog: Send + Sync + 'static {
    /// The store's error: I/O, a full store. Never caused by a bad cursor.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends `event` to `topic`, assigning its id.
    ///
    /// Any id already set on `event` is replaced: ids are the log's cursors, so only the log
    /// chooses them. The returned [`LoggedEvent`] holds the assigned id and the frame, encoded
    /// once with that id, to be shared by every live subscriber and by later replays.
    ///
    /// # Errors
    ///
    /// Returns the store's error when the event could not be stored; it is then not in the
    /// log and no id was handed out for it.
    fn append(
        &self,
        topic: &str,
        event: &Event<'_>,
    ) -> impl Future<Output = Result<LoggedEvent, Self::Error>> + Send;

    /// Reads the events of `topic` after `cursor`, in order, at most `limit` of them.
    ///
    /// `cursor` is the last id the client saw (its `Last-Event-ID`), or `None` for a client
    /// without one; an empty string counts as `None`, as an empty id means "no last event id"
    /// in the event-stream format. [`Replay::outcome`] says how the cursor related to the log;
    /// see [`ReplayOutcome`] for which events each outcome returns. Pass
    /// [`Replay::next_cursor`] back to read the next page when [`Replay::has_more`] is set.
    ///
    /// # Errors
    ///
    /// Returns the store's error when the log could not be read. A malformed or foreign
    /// cursor is not an error: it is [`ReplayOutcome::Unknown`].
    fn read_after(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Replay, Self::Error>> + Send;

    /// The order of two ids this log issued, as it orders their events within a topic; `None`
    /// when either is not an id of this log (malformed, or from another epoch).
    ///
    /// Readers use it to join a live feed and a replay without a lock: drop every live event
    /// at or before the last replayed id, deliver every one after it.
    fn compare_ids(&self, a: &str, b: &str) -> Option<Ordering>;

    /// The position of `topic`'s newest event: reading after it returns exactly what is
    /// appended later. `None` when the topic holds nothing and never did, so that reading
    /// from its start is the same.
    ///
    /// A subscriber that follows several topics on one stream records this position for each
    /// topic when it starts, so that its cursor can resume a topic that had no event yet. The
    /// provided implementation reads the topic to its end in pages (bounded by retention);
    /// stores that know their head override it.
    ///
    /// # Errors
    ///
    /// The store's error when the log could not be read.
    fn head(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<Arc<str>>, Self::Error>> + Send {
        async move {
            let mut cursor: Option<Arc<str>> = None;
            loop {
                let page = self.read_after(topic, cursor.as_deref(), 1024).await?;
                if let Some(last) = page.events.last() {
                    cursor = Some(Arc::clone(last.shared_id()));
                }
                if !page.has_more || page.events.is_empty() {
                    return Ok(cursor);
                }
            }
        }
    }
}

/// The default number of events replayed to one reconnecting client before the gap rule
/// applies instead; shared by the `tower-sse` layer and hub.
///
/// Readers page the replay as the client drains, so the cap bounds the work one reconnect
/// can cause, not the memory it holds. It is 10,000 rather than a round 1,000 because a
/// client that is N events behind when it reconnects is N plus whatever was published while
/// it reconnected behind when the read runs: with a cap equal to the usual distance, every
/// reconnect during steady publishing would end in a gap a few events short (measured in
/// the reconnect storm benchmark: ~6 events lost per client at 1,000 events/s).
pub const DEFAULT_MAX_REPLAY: usize = 10_000;

/// A shared log is a log: one `Arc<MemoryLog>` can back a hub and a layer at once.
impl<L: EventLog> EventLog for Arc<L> {
    type Error = L::Error;

    fn append(
        &self,
        topic: &str,
        event: &Event<'_>,
    ) -> impl Future<Output = Result<LoggedEvent, Self::Error>> + Send {
        (**self).append(topic, event)
    }

    fn read_after(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Replay, Self::Error>> + Send {
        (**self).read_after(topic, cursor, limit)
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<Ordering> {
        (**self).compare_ids(a, b)
    }

    fn head(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<Arc<str>>, Self::Error>> + Send {
        (**self).head(topic)
    }
}

/// An event as stored in a log: its assigned id and its encoded frame.
///
/// Cloning is cheap (two reference counts), so the same value can be handed to every
/// subscriber; write [`frame`](Self::frame) to the wire as is.
#[derive(Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    id: Arc<str>,
    frame: Bytes,
}

impl LoggedEvent {
    /// Encodes `event` with its id replaced by `id`, for a store that has just assigned `id`.
    ///
    /// The other fields are written as they are; the event is borrowed, not copied.
    ///
    /// # Errors
    ///
    /// Returns an error if `id` contains CR, LF or NUL.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_sse_core::{Event, LoggedEvent};
    ///
    /// let event = Event::new().id("ignored")?.event("tick")?.data("1");
    /// let logged = LoggedEvent::encode("7", &event)?;
    /// assert_eq!(logged.id(), "7");
    /// assert_eq!(&logged.frame()[..], b"id: 7\nevent: tick\ndata: 1\n\n");
    /// # Ok::<(), tower_sse_core::EventError>(())
    /// ```
    pub fn encode(id: impl Into<Arc<str>>, event: &Event<'_>) -> Result<Self, EventError> {
        let id = id.into();
        let mut rebuilt = Event::new().id(&*id)?;
        if let Some(event_type) = event.event_ref() {
            // Already validated when it was set on `event`.
            rebuilt = rebuilt.event(event_type)?;
        }
        if let Some(data) = event.data_ref() {
            rebuilt = rebuilt.data(data);
        }
        if let Some(retry) = event.retry_ref() {
            rebuilt = rebuilt.retry(retry);
        }
        if let Some(comment) = event.comment_ref() {
            rebuilt = rebuilt.comment(comment);
        }
        let frame = rebuilt.to_bytes();
        Ok(Self { id, frame })
    }

    /// Wraps an id and a frame that a store has already encoded (for example, read back from
    /// storage). The frame should carry `id` in its `id` field; this is not checked.
    #[must_use]
    pub fn from_parts(id: impl Into<Arc<str>>, frame: Bytes) -> Self {
        Self {
            id: id.into(),
            frame,
        }
    }

    /// The id the log assigned: the cursor a client resumes from.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The id as a shared string, to keep as a cursor without copying it.
    pub fn shared_id(&self) -> &Arc<str> {
        &self.id
    }

    /// The encoded event, with its `id` field, ending with a blank line.
    pub fn frame(&self) -> &Bytes {
        &self.frame
    }

    /// Splits into the shared id and the frame.
    #[must_use]
    pub fn into_parts(self) -> (Arc<str>, Bytes) {
        (self.id, self.frame)
    }
}

impl fmt::Debug for LoggedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoggedEvent")
            .field("id", &self.id)
            .field("frame", &self.frame)
            .finish()
    }
}

/// What [`EventLog::read_after`] returns: the events after the cursor and how the cursor
/// related to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Replay {
    /// How the cursor related to what the log retains.
    pub outcome: ReplayOutcome,
    /// The events to send, oldest first, at most `limit`.
    pub events: Vec<LoggedEvent>,
    /// More events were retained past the last one returned: read again from
    /// [`next_cursor`](Self::next_cursor). `false` means the reader has caught up with the log
    /// as it was at the time of the read.
    pub has_more: bool,
}

impl Replay {
    /// A replay result, for a store implementing [`EventLog`].
    #[must_use]
    pub fn new(outcome: ReplayOutcome, events: Vec<LoggedEvent>, has_more: bool) -> Self {
        Self {
            outcome,
            events,
            has_more,
        }
    }

    /// The cursor to read the next page from: the id of the last event returned, or `None`
    /// when no event was returned (the caller's position did not move).
    pub fn next_cursor(&self) -> Option<&str> {
        self.events.last().map(LoggedEvent::id)
    }
}

/// How a cursor related to what the log retains, and therefore which events a replay holds.
///
/// The variants map to what a server tells a reconnecting client: nothing to say (`Fresh`,
/// `Resumed`), or "you missed something, refetch your state" (`Gap`, `Unknown`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayOutcome {
    /// No cursor (`None` or an empty string). The events are the oldest retained ones, from
    /// the start of the topic's retention; a server that only wants new events for a fresh
    /// client simply does not read.
    Fresh,
    /// The cursor is a position this log issued and nothing after it was dropped: the events
    /// follow it with no gap and no duplicate. None when the reader has caught up.
    Resumed,
    /// The cursor is a position this log issued, but events after it have been dropped by
    /// retention, so the reader missed some. The events are the oldest retained ones (as for
    /// `Fresh`): what can still be delivered, starting at `oldest`.
    #[non_exhaustive]
    Gap {
        /// The id of the oldest event still retained, where this replay starts; `None` when
        /// the topic retains nothing (then live events are the first the reader gets).
        oldest: Option<Arc<str>>,
    },
    /// The cursor is not a position of this topic in this log: malformed, from another epoch
    /// (an earlier run of an in-memory log, another instance), an id of another topic, or
    /// ahead of anything assigned. Nothing is
    /// known about what the reader missed, so no events are returned; treat the reader as
    /// fresh and tell it to refetch its state.
    Unknown(UnknownCursor),
}

impl ReplayOutcome {
    /// A [`Gap`](Self::Gap) whose replay starts at `oldest`.
    #[must_use]
    pub fn gap(oldest: Option<Arc<str>>) -> Self {
        Self::Gap { oldest }
    }

    /// Whether the reader may have missed events (`Gap` or `Unknown`), which a server should
    /// report to the client.
    pub fn is_discontinuous(&self) -> bool {
        matches!(self, Self::Gap { .. } | Self::Unknown(_))
    }
}

/// Why a cursor was [`ReplayOutcome::Unknown`]; for logs and metrics, not for clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownCursor {
    /// Not in the format of this log's ids (including NUL, CR, LF, or too long).
    Malformed,
    /// Well-formed, but issued by another epoch of the log: typically before a restart.
    OtherEpoch,
    /// Well-formed and of this epoch, but past every id assigned so far.
    Ahead,
    /// Issued by this log, but not a position of this topic: an id of another topic (a
    /// `stream_key` that differs from the topic read, for example).
    OtherTopic,
}

impl fmt::Display for UnknownCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed cursor",
            Self::OtherEpoch => "cursor from another epoch",
            Self::Ahead => "cursor ahead of the log",
            Self::OtherTopic => "cursor of another topic",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_replaces_the_id_and_keeps_every_other_field() {
        let event = Event::new()
            .comment("c")
            .retry(std::time::Duration::from_millis(1500))
            .id("old")
            .unwrap()
            .event("e")
            .unwrap()
            .data("a\nb");
        let logged = LoggedEvent::encode("new", &event).unwrap();
        assert_eq!(
            &logged.frame()[..],
            b":c\nretry: 1500\nid: new\nevent: e\ndata: a\ndata: b\n\n"
        );
        assert_eq!(logged.id(), "new");
    }

    #[test]
    fn encode_rejects_an_id_with_a_line_break() {
        assert!(LoggedEvent::encode("1\n2", &Event::new().data("x")).is_err());
    }

    #[test]
    fn next_cursor_is_the_last_event() {
        let a = LoggedEvent::from_parts("a", Bytes::from_static(b"id: a\ndata:\n\n"));
        let b = LoggedEvent::from_parts("b", Bytes::from_static(b"id: b\ndata:\n\n"));
        assert_eq!(
            Replay::new(ReplayOutcome::Fresh, vec![a, b], true).next_cursor(),
            Some("b")
        );
        assert_eq!(
            Replay::new(ReplayOutcome::Resumed, vec![], false).next_cursor(),
            None
        );
    }

    #[test]
    fn discontinuous_outcomes() {
        assert!(!ReplayOutcome::Fresh.is_discontinuous());
        assert!(!ReplayOutcome::Resumed.is_discontinuous());
        assert!(ReplayOutcome::gap(None).is_discontinuous());
        assert!(ReplayOutcome::Unknown(UnknownCursor::Malformed).is_discontinuous());
    }
}
