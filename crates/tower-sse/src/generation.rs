//! Resumable generations: LLM answers that survive disconnects, page reloads and a change of
//! server.
//!
//! A *generation* is a stream of events written by a producer task that runs apart from any
//! connection (a model streaming tokens), kept in the hub's [`EventLog`](tower_sse_core::EventLog)
//! so that any number of readers, on any server sharing the log, can follow it, leave and
//! come back:
//!
//! - [`Generations::start`] runs the producer on a task of its own, keyed by an optional
//!   idempotency key: a second start with the same key (a client retrying its POST, on this
//!   server or another one sharing the [`ClaimStore`](tower_sse_core::ClaimStore)) returns
//!   the same generation and never runs a second producer.
//! - The producer writes through a [`TokenSink`]: each event gets its own id in the log and a
//!   sequence number (0, 1, 2, …) in its data as `"sequence_number"`, the way OpenAI's
//!   Responses API numbers its events.
//! - A generation ends with exactly one terminal event, `done`, `error` or `cancelled`, each
//!   with data (`{"sequence_number":N,"status":"done"}`; an `EventSource` drops an event
//!   without data). [`Generations::cancel`] cancels on request, from any server;
//!   [`GenerationConfig::idle_cancel`] cancels when no reader has had the stream open for a
//!   while.
//! - [`Generations::open`] gives a reader the events after its position: from the start, after
//!   a `Last-Event-ID`, or after a sequence number (`starting_after=N`), ending after the
//!   terminal event; a position at or after the terminal event is [`Opened::Finished`], to be
//!   answered `204 No Content` (which tells an `EventSource` to stop reconnecting, per the
//!   [WHATWG spec](https://html.spec.whatwg.org/multipage/server-sent-events.html#the-eventsource-interface)).
//!   A finished generation stays readable, whole, for [`GenerationConfig::retention`]; then its
//!   id is unknown ([`GenerationError::NotFound`]).
//! - Streams write the events that are ready together in one write (optionally waiting
//!   [`GenerationConfig::batch_window`] for more), and can pad every event to a size bucket
//!   with a comment line ([`Padding`]) against packet-size side channels.
//!
//! State lives in the log (the events, the terminal one included) and in the claim store (the
//! idempotency key, a small record: start and terminal positions), never in a process alone.
//!
//! # Example
//!
//! ```
//! use futures_util::StreamExt;
//! use tower_sse::generation::{Generations, Opened, Resume};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let generations = Generations::in_memory();
//! let started = generations
//!     .start(Some("request-42"), |sink| async move {
//!         for word in ["Hello", ",", " world"] {
//!             sink.token(word).await.map_err(|e| e.to_string())?;
//!         }
//!         Ok(())
//!     })
//!     .await?;
//! // A retried start with the same key gets the same generation.
//! let again = generations.start(Some("request-42"), |_| async { Ok(()) }).await?;
//! assert_eq!(again.id, started.id);
//!
//! let Opened::Stream(mut stream) = generations.open(&started.id, Resume::Start).await? else {
//!     unreachable!("a new generation is not finished")
//! };
//! let mut wire = Vec::new();
//! while let Some(bytes) = stream.next().await {
//!     wire.extend_from_slice(&bytes?);
//! }
//! let wire = String::from_utf8(wire)?;
//! assert!(wire.contains(r#"data: {"sequence_number":0,"text":"Hello"}"#));
//! assert!(wire.ends_with("event: done\ndata: {\"sequence_number\":3,\"status\":\"done\"}\n\n"));
//!
//! // After the terminal event there is nothing to resume: 204.
//! let after = generations.open(&started.id, Resume::AfterSequence(3)).await?;
//! assert!(matches!(after, Opened::Finished));
//! # Ok(())
//! # }
//! ```

mod config;
mod manager;
mod record;
mod sink;
mod stream;

use std::fmt;

pub use config::{
    DEFAULT_MAX_EVENTS, DEFAULT_MAX_KEY_LEN, DEFAULT_MAX_RUNNING, DEFAULT_RETENTION,
    GenerationConfig, Padding,
};
pub use manager::Generations;
pub use sink::{SinkError, TokenSink};
pub use stream::GenerationStream;

/// The event types that end a generation; only the generation writes them.
pub const TERMINAL_EVENTS: [&str; 3] = ["done", "error", "cancelled"];

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What [`Generations::start`] returns.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Started {
    /// The generation's id.
    pub id: String,
    /// `false` when the idempotency key named a generation started before.
    pub created: bool,
}

/// Where a reader starts in a generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Resume<'a> {
    /// From the first event: a new reader.
    Start,
    /// After the event with this id: a client's `Last-Event-ID`.
    AfterId(&'a str),
    /// After the event with this sequence number: `starting_after=N`.
    AfterSequence(u64),
}

impl<'a> Resume<'a> {
    /// The position of a request: its `Last-Event-ID` (an `EventSource` reconnects to the
    /// same URL with it, so it wins over the query), else its `starting_after` query value,
    /// else the start. An empty `Last-Event-ID` counts as none.
    ///
    /// # Errors
    ///
    /// [`GenerationError::InvalidCursor`] when `starting_after` is not a decimal `u64`.
    pub fn from_request(
        last_event_id: Option<&'a str>,
        starting_after: Option<&str>,
    ) -> Result<Self, GenerationError> {
        if let Some(id) = last_event_id.filter(|id| !id.is_empty()) {
            return Ok(Self::AfterId(id));
        }
        match starting_after {
            None => Ok(Self::Start),
            Some(n) => n
                .parse()
                .map(Self::AfterSequence)
                .map_err(|_| GenerationError::InvalidCursor),
        }
    }
}

/// What [`Generations::open`] returns.
#[derive(Debug)]
#[non_exhaustive]
// Returned once per request and matched at once: boxing the stream would cost an allocation
// on every open for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Opened {
    /// The events after the reader's position, ending after the terminal event.
    Stream(GenerationStream),
    /// The position is at or after the terminal event: nothing more will come. Answer
    /// `204 No Content`, which tells an `EventSource` to stop reconnecting.
    Finished,
}

/// Why a generation was cancelled, as written in its `cancelled` event's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// [`Generations::cancel`] was called.
    Request,
    /// No reader had the stream open for [`GenerationConfig::idle_cancel`].
    Idle,
}

impl CancelReason {
    /// `request` or `idle`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Idle => "idle",
        }
    }
}

/// What [`Generations::cancel`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The generation ended with `cancelled`.
    Cancelled,
    /// The cancellation is recorded; the producer (on another server) has not ended yet.
    Requested,
    /// The generation had already ended (with `done`, `error` or `cancelled`).
    AlreadyFinished,
}

/// An error of [`Generations`].
#[derive(Debug)]
#[non_exhaustive]
pub enum GenerationError {
    /// No generation has this id (never issued, or past its retention).
    NotFound,
    /// The idempotency key is longer than [`GenerationConfig::max_key_len`].
    KeyTooLong {
        /// The limit, in bytes.
        max: usize,
    },
    /// This process already runs [`GenerationConfig::max_running`] producers.
    TooManyRunning {
        /// The limit.
        limit: usize,
    },
    /// The reader's position is not one of this generation: a `Last-Event-ID` of something
    /// else, or a `starting_after` that is not a number.
    InvalidCursor,
    /// The claim store failed.
    Store(BoxError),
    /// The log failed.
    Log(BoxError),
}

impl GenerationError {
    pub(crate) fn store(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Store(Box::new(e))
    }

    pub(crate) fn log(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Log(Box::new(e))
    }
}

impl fmt::Display for GenerationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such generation"),
            Self::KeyTooLong { max } => write!(f, "idempotency key longer than {max} bytes"),
            Self::TooManyRunning { limit } => {
                write!(f, "too many generations running (limit {limit})")
            }
            Self::InvalidCursor => f.write_str("the position is not one of this generation"),
            Self::Store(_) => f.write_str("generation store failed"),
            Self::Log(_) => f.write_str("generation log failed"),
        }
    }
}

impl std::error::Error for GenerationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Store(e) | Self::Log(e) => Some(&**e),
            _ => None,
        }
    }
}
