//! Sans-IO building blocks for [Server-Sent Events].
//!
//! This crate does no I/O, and its logic reads time only through the [`Clock`] it is given
//! (the default [`StdClock`] reads `Instant::now`); it depends on `bytes`, `memchr` and
//! `bytestring` only (plus `serde_json` behind the `json` feature). The `tower-sse` crate
//! builds the tower layer on it; anyone who writes or reads event streams can use it directly.
//!
//! - [`Event`] and its encoder: fallible where the format demands it (CR, LF or NUL in an `id`
//!   or `event` is an [`EventError`], never an injected line), spec-exact, and writing into
//!   the caller's `BytesMut` so one encoding can be shared by every receiver.
//! - [`Decoder`]: incremental and exact to the WHATWG parsing rules, with bounded memory.
//! - [`FrameBoundary`]: follows a stream and says where a heartbeat may be inserted.
//! - The replay model: the [`EventLog`] trait (append, read after a cursor, with a typed
//!   [`ReplayOutcome`] and a [`Retention`] policy) and [`MemoryLog`], the bounded in-memory
//!   log. `MemoryLog` reads time only through an injectable [`Clock`].
//! - [`LiveLog`]: a log shared by several processes (Redis Streams), whose new events a server
//!   awaits with a [`LogTail`] so that an event published anywhere reaches every subscriber.
//! - [`TopicName`] and [`TopicRules`]: the one validation of topic names (they become store
//!   keys); [`TopicSet`] and its composite cursor, one `Last-Event-ID` for a stream of several
//!   topics.
//!
//! # Example
//!
//! ```
//! use bytes::BytesMut;
//! use tower_sse_core::{Decoded, Decoder, Event};
//!
//! let mut wire = BytesMut::new();
//! Event::new().id("1")?.data("first\nsecond").encode(&mut wire);
//!
//! let mut decoder = Decoder::new();
//! decoder.feed(&wire);
//! match decoder.decode() {
//!     Ok(Some(Decoded::Event(event))) => assert_eq!(event.data(), "first\nsecond"),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [Server-Sent Events]: https://html.spec.whatwg.org/multipage/server-sent-events.html

#![cfg_attr(docsrs, feature(doc_cfg))]

mod boundary;
mod claim;
mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
mod cursor;
mod decode;
mod event;
mod live;
mod masks;
mod memory;
mod replay;
mod retention;
mod topic;

pub use boundary::{FrameBoundary, Position};
pub use claim::{ClaimStore, ClaimStoreFull, DEFAULT_MAX_CLAIM_KEYS, MemoryClaimStore};
pub use clock::{Clock, ManualClock, StdClock};
pub use cursor::{DEFAULT_MAX_TOPICS_PER_STREAM, TopicSet, TopicSetError};
pub use decode::{
    DEFAULT_MAX_EVENT_SIZE, DecodeError, Decoded, Decoder, MAX_EVENT_SIZE_CAP, MessageEvent,
    SharedStr,
};
pub use event::{
    Event, EventError, EventItem, Field, HEARTBEAT, HEARTBEAT_LINE, encode_comment,
    encode_comment_line, encode_retry,
};
pub use live::{LiveLog, LogTail, TailPosition};
pub use memory::{DEFAULT_MAX_TOPICS, MemoryLog, MemoryLogBuilder, MemoryLogError};
pub use replay::{DEFAULT_MAX_REPLAY, EventLog, LoggedEvent, Replay, ReplayOutcome, UnknownCursor};
pub use retention::{DEFAULT_MAX_EVENTS, Retention};
pub use topic::{DEFAULT_MAX_TOPIC_LEN, InvalidTopic, TopicName, TopicRules, default_topic_byte};
