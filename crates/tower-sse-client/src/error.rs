//! [`Error`]: why a connection failed or the stream ended.

use std::{fmt, time::Duration};

use http::{HeaderValue, StatusCode};

/// A boxed error from the HTTP service or the response body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong on an event stream.
///
/// An [`EventSource`](crate::EventSource) yields each failure as an `Err` item and then, if
/// its [`RetryPolicy`](crate::RetryPolicy) allows, reconnects: check
/// [`ready_state`](crate::EventSource::ready_state) (or simply keep polling; a stream that
/// gave up ends with `None`). By default network errors, body errors, read timeouts, a
/// stream the server ended, and 5xx statuses are retried; 4xx statuses, a wrong
/// `Content-Type`, bad redirects and invalid requests are not.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built (bad URL, header or method); never retried.
    InvalidRequest(String),
    /// The HTTP service failed before a response: connect, TLS, protocol errors.
    Transport(BoxError),
    /// The response body failed mid-stream (connection reset, protocol error).
    Body(BoxError),
    /// The server ended the response body: `EventSource` reconnects, as browsers do.
    StreamEnded,
    /// Nothing arrived for longer than the configured read timeout.
    ReadTimeout(Duration),
    /// The response status was neither 2xx nor a followed redirect.
    Status(StatusCode),
    /// A 2xx response whose `Content-Type` is not `text/event-stream`.
    ContentType(Option<HeaderValue>),
    /// A redirect without a usable `Location`, or more redirects than allowed.
    Redirect(String),
    /// An event grew past the maximum event size: it was skipped, the stream goes on.
    EventTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl Error {
    /// The status of a [`Error::Status`] error.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Status(status) => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidRequest(why) => write!(f, "invalid request: {why}"),
            Self::Transport(e) => write!(f, "request failed: {e}"),
            Self::Body(e) => write!(f, "stream interrupted: {e}"),
            Self::StreamEnded => f.write_str("the server ended the stream"),
            Self::ReadTimeout(t) => write!(f, "nothing received for {} ms", t.as_millis()),
            Self::Status(status) => write!(f, "unexpected status {status}"),
            Self::ContentType(Some(v)) => write!(
                f,
                "expected Content-Type text/event-stream, got `{}`",
                String::from_utf8_lossy(v.as_bytes())
            ),
            Self::ContentType(None) => {
                f.write_str("expected Content-Type text/event-stream, got none")
            }
            Self::Redirect(why) => write!(f, "redirect not followed: {why}"),
            Self::EventTooLarge { limit } => write!(
                f,
                "event larger than the {limit}-byte limit; skipped to the next event"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport(e) | Self::Body(e) => Some(&**e),
            _ => None,
        }
    }
}
