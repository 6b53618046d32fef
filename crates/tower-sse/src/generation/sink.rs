//! [`TokenSink`]: what a producer writes its tokens to.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use tower_sse_core::{Event, EventLog};

use super::{TERMINAL_EVENTS, record::json_string};
use crate::Hub;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Where a generation's producer appends its events: each one gets the next sequence number
/// (0, 1, 2, …, carried in its data as `"sequence_number"`) and its own id in the log.
///
/// The producer runs on its own task, apart from any connection; it ends by returning (the
/// generation then ends with `done`, or `error` for an `Err`), and is dropped at its next
/// await when the generation is cancelled.
pub struct TokenSink<L: EventLog> {
    pub(crate) hub: Hub<L>,
    pub(crate) id: Arc<str>,
    pub(crate) topic: Arc<str>,
    pub(crate) next: Arc<AtomicU64>,
    pub(crate) max_events: u64,
}

impl<L: EventLog> fmt::Debug for TokenSink<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSink")
            .field("topic", &self.topic)
            .field("next", &self.next.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Why [`TokenSink`] refused an event.
#[derive(Debug)]
#[non_exhaustive]
pub enum SinkError {
    /// The event type is one of the terminal ones (`done`, `error`, `cancelled`), which only
    /// the generation writes, or is not a valid event type.
    EventType(String),
    /// The data is not a JSON object (it must start with `{` and end with `}`).
    NotAnObject,
    /// The generation reached [`GenerationConfig::max_events`](super::GenerationConfig::max_events).
    TooManyEvents(u64),
    /// The log failed; the event may be missing.
    Log(BoxError),
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventType(name) => write!(f, "event type {name:?} is reserved or invalid"),
            Self::NotAnObject => f.write_str("event data is not a json object"),
            Self::TooManyEvents(max) => write!(f, "generation reached its limit of {max} events"),
            Self::Log(_) => f.write_str("log append failed"),
        }
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Log(e) => Some(&**e),
            _ => None,
        }
    }
}

impl<L: EventLog> TokenSink<L> {
    /// Appends a `token` event whose data is `{"sequence_number":N,"text":TEXT}`; returns N.
    ///
    /// # Errors
    ///
    /// [`SinkError::TooManyEvents`] past the limit, [`SinkError::Log`] when the log failed.
    pub async fn token(&self, text: &str) -> Result<u64, SinkError> {
        let fields = format!("{{\"text\":{}}}", json_string(text));
        self.event("token", &fields).await
    }

    /// Appends an event of type `event_type` whose data is `object` (a JSON object, not
    /// checked beyond its braces) with `"sequence_number":N` put first; returns N.
    ///
    /// For a stream shaped like OpenAI's Responses API:
    /// `sink.event("response.output_text.delta", r#"{"type":"response.output_text.delta","delta":"Hi"}"#)`.
    ///
    /// # Errors
    ///
    /// [`SinkError::EventType`] for `done`, `error`, `cancelled` or a type with a line break,
    /// [`SinkError::NotAnObject`], [`SinkError::TooManyEvents`], [`SinkError::Log`].
    pub async fn event(&self, event_type: &str, object: &str) -> Result<u64, SinkError> {
        if TERMINAL_EVENTS.contains(&event_type) {
            return Err(SinkError::EventType(event_type.to_owned()));
        }
        let inner = object
            .trim()
            .strip_prefix('{')
            .and_then(|rest| rest.strip_suffix('}'))
            .ok_or(SinkError::NotAnObject)?;
        let n = self.next.load(Ordering::Relaxed);
        if n >= self.max_events {
            return Err(SinkError::TooManyEvents(self.max_events));
        }
        let event = Event::new()
            .event(event_type)
            .map_err(|_| SinkError::EventType(event_type.to_owned()))?;
        // Taken before the append: an append cut short by a cancellation leaves a hole in the
        // numbering rather than a number used twice.
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let data = with_sequence_number(n, inner);
        self.hub
            .publish(&self.topic, &event.data(data))
            .await
            .map_err(|e| SinkError::Log(Box::new(e)))?;
        Ok(n)
    }

    /// The id of the generation this sink writes to.
    pub fn generation_id(&self) -> &str {
        &self.id
    }

    /// The sequence number the next event gets.
    pub fn next_sequence_number(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }
}

/// `{"sequence_number":N,INNER}`, `inner` being an object's members (possibly none).
pub(crate) fn with_sequence_number(n: u64, inner: &str) -> String {
    if inner.trim().is_empty() {
        format!("{{\"sequence_number\":{n}}}")
    } else {
        format!("{{\"sequence_number\":{n},{inner}}}")
    }
}
