//! [`LiveLog`]: an [`EventLog`] that several processes share, whose new events can be awaited.
//!
//! An in-memory log lives in one process, so whoever appends to it can also hand the event to
//! the local subscribers. A log in a shared store (Redis Streams) is appended to by every
//! server: an event published on server A must reach the subscribers connected to server B,
//! which only learns of it from the log. A `LiveLog` offers what a server needs to follow the
//! log itself rather than its own publishers:
//!
//! - [`LiveLog::tail`]: a [`LogTail`] that waits until any of a set of topics has events
//!   after its position (Redis: one `XREAD BLOCK` over many streams), so that one tail — one
//!   connection — serves every topic of a server, whatever their number; the events
//!   themselves are then read with [`EventLog::read_after`], so a tail that fell behind
//!   retention sees the [`Gap`](crate::ReplayOutcome::Gap) like any reader.
//! - [`LiveLog::last_id`]: the position a topic's tail starts after ("now").
//! - [`EventLog::compare_ids`]: the order of two ids, so that a subscriber can drop a live
//!   event it already replayed.
//!
//! The `tower-sse` hub uses it in `Hub::with_live_log`: one tail per hub follows every topic
//! with local subscribers, and publishing only appends.
//!
//! # Example
//!
//! ```
//! use std::{future, sync::Arc};
//!
//! use tower_sse_core::{EventLog, LiveLog, LogTail};
//!
//! /// Waits for the first event appended to `topic` after this call, by any process.
//! async fn next_event<L: LiveLog>(log: &L, topic: &str) -> Result<Vec<u8>, L::Error> {
//!     let start = log.last_id(topic).await?;
//!     let positions = [(Arc::<str>::from(topic), start.clone())];
//!     let mut tail = log.tail();
//!     loop {
//!         // Nothing else to follow here: never re-armed.
//!         tail.wait_any(&positions, future::pending()).await?;
//!         let replay = log.read_after(topic, start.as_deref(), 1).await?;
//!         if let Some(event) = replay.events.first() {
//!             return Ok(event.frame().to_vec());
//!         }
//!     }
//! }
//! ```

use std::{future::Future, sync::Arc};

use crate::EventLog;

/// An [`EventLog`] shared by several processes, whose new events can be awaited.
///
/// # Contract
///
/// Besides the [`EventLog`] contract:
///
/// - Ids of one topic are totally ordered by [`compare_ids`](EventLog::compare_ids) in append
///   order, and [`read_after`](EventLog::read_after) returns events in that order.
/// - [`last_id`](Self::last_id) is a position that [`read_after`](EventLog::read_after)
///   resumes from: reading after it returns nothing appended before the call and everything
///   appended after it, with the outcome [`Resumed`](crate::ReplayOutcome::Resumed) until
///   retention drops those events.
/// - A [`LogTail`] returns from [`wait_any`](LogTail::wait_any) soon after an event is
///   appended past the position of one of the topics it waits on, by any process.
pub trait LiveLog: EventLog {
    /// Waits for one topic's new events; may hold a connection of its own.
    type Tail: LogTail<Error = Self::Error>;

    /// A tail that can follow any number of topics at once. Does no I/O: the tail connects
    /// when first awaited. A server needs one, whatever its number of topics.
    fn tail(&self) -> Self::Tail;

    /// The id of the newest event ever appended to `topic`, retained or not: the position a
    /// new tail starts after. `None` when the log has no position for the topic yet; reading
    /// after `None` is then reading from its start.
    ///
    /// # Errors
    ///
    /// The store's error when the position could not be read.
    fn last_id(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<Arc<str>>, Self::Error>> + Send;
}

/// A topic the tail follows and its position: the id of the last event delivered (`None`:
/// the topic's start).
pub type TailPosition = (Arc<str>, Option<Arc<str>>);

/// Waits for new events of a set of topics; made by [`LiveLog::tail`].
pub trait LogTail: Send + 'static {
    /// The store's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Returns once some of `positions` may hold events after their position, once a
    /// store-chosen timeout has passed, or soon after `rearm` completes, whichever comes first.
    ///
    /// The result lists the indices into `positions` of the topics that hold events (empty
    /// after a timeout or a re-arm); the caller reads them with [`EventLog::read_after`].
    /// `rearm` lets the caller change the set of topics without waiting for the timeout: when
    /// it completes, the wait in progress is cut short (Redis: `CLIENT UNBLOCK`) and the
    /// caller calls again with the new set.
    ///
    /// # Errors
    ///
    /// The store's error; calling again retries (a store reconnects on its own).
    fn wait_any(
        &mut self,
        positions: &[TailPosition],
        rearm: impl Future<Output = ()> + Send,
    ) -> impl Future<Output = Result<Vec<usize>, Self::Error>> + Send;
}

/// A shared live log is a live log.
impl<L: LiveLog> LiveLog for Arc<L> {
    type Tail = L::Tail;

    fn tail(&self) -> Self::Tail {
        (**self).tail()
    }

    fn last_id(
        &self,
        topic: &str,
    ) -> impl Future<Output = Result<Option<Arc<str>>, Self::Error>> + Send {
        (**self).last_id(topic)
    }
}
