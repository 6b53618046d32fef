//! [`ValidLastEventId`] and [`ClientCursor`]: the position a reconnecting client resumes from.
//!
//! A browser's `EventSource` sends the id of the last event it saw in the `Last-Event-ID`
//! request header when it reconnects. Clients that cannot set headers (a first connection
//! that wants to resume, some polyfills) can send it as a query parameter instead, by
//! convention `lastEventId`. The value comes from the network, so it is validated before it
//! goes anywhere: it must be UTF-8, must not contain NUL, CR or LF, and must not be longer
//! than a limit ([`DEFAULT_MAX_LAST_EVENT_ID_LEN`] bytes by default). An invalid value is
//! never an error response and never echoed back: it is kept as
//! [`ClientCursor::Invalid`], which an event log reads as an unknown cursor, so the client is
//! told to refetch its state.
//!
//! [`SseLayer`](crate::SseLayer) inserts the [`ClientCursor`] of every request as a request
//! extension ([`ClientCursor::Absent`] included), parsed with the layer's settings, so
//! handlers and the framework adapters' extractors see exactly what the layer decided, without
//! parsing again. Without the layer, [`ClientCursor::from_request`] parses with the defaults,
//! and [`ClientCursor::from_parts`] with any settings:
//!
//! ```
//! use http::Request;
//! use tower_sse::ClientCursor;
//!
//! let request = Request::get("/events?lastEventId=42").body(()).unwrap();
//! let cursor = ClientCursor::from_parts(request.headers(), request.uri(), Some("lastEventId"), 256);
//! assert_eq!(cursor.last_event_id().map(|id| id.as_str()), Some("42"));
//! ```

use std::{fmt, sync::Arc};

use http::{HeaderMap, HeaderName, Uri};

/// The `Last-Event-ID` request header.
pub const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The default query parameter read when the `Last-Event-ID` header is absent.
pub const DEFAULT_LAST_EVENT_ID_QUERY: &str = "lastEventId";

/// The default longest `Last-Event-ID` accepted, in bytes.
pub const DEFAULT_MAX_LAST_EVENT_ID_LEN: usize = 4096;

/// A validated last event id: UTF-8, no NUL, CR or LF, within the length limit.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ValidLastEventId(Arc<str>);

impl ValidLastEventId {
    /// Validates `value`, at most `max_len` bytes long.
    ///
    /// # Errors
    ///
    /// [`InvalidLastEventId`] saying what is wrong with the value.
    pub fn parse(value: &[u8], max_len: usize) -> Result<Self, InvalidLastEventId> {
        if value.len() > max_len {
            return Err(InvalidLastEventId::TooLong { max_len });
        }
        if value.iter().any(|b| matches!(b, 0 | b'\r' | b'\n')) {
            return Err(InvalidLastEventId::ForbiddenCharacter);
        }
        match std::str::from_utf8(value) {
            Ok(id) => Ok(Self(Arc::from(id))),
            Err(_) => Err(InvalidLastEventId::NotUtf8),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ValidLastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for ValidLastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a `Last-Event-ID` value was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidLastEventId {
    /// Not valid UTF-8 (after percent-decoding, for the query parameter).
    NotUtf8,
    /// Contains NUL, CR or LF, which no event id can hold.
    ForbiddenCharacter,
    /// Longer than the limit.
    TooLong {
        /// The limit in bytes.
        max_len: usize,
    },
}

impl fmt::Display for InvalidLastEventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("last event id is not valid UTF-8"),
            Self::ForbiddenCharacter => f.write_str("last event id contains NUL, CR or LF"),
            Self::TooLong { max_len } => {
                write!(f, "last event id is longer than {max_len} bytes")
            }
        }
    }
}

impl std::error::Error for InvalidLastEventId {}

/// Where a client asked to resume from, as the layer found it in the request.
///
/// Inserted as a request extension by [`SseLayer`](crate::SseLayer) on every request, with
/// the layer's settings; read it with [`from_request`](Self::from_request), which falls back to
/// parsing with the defaults when the request did not go through the layer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCursor {
    /// The request carried no last event id (or an empty one, which means the same).
    #[default]
    Absent,
    /// A valid last event id.
    Valid(ValidLastEventId),
    /// A value was sent but rejected; it is not kept.
    Invalid(InvalidLastEventId),
}

/// What an invalid cursor is passed to a log as: NUL never appears in an id, so every
/// [`EventLog`](tower_sse_core::EventLog) reports it as unknown (the conformance suite checks
/// that), and the client is told it missed events.
const INVALID_CURSOR: &str = "\0invalid-last-event-id";

impl ClientCursor {
    /// Reads the `Last-Event-ID` header, or when it is absent, the query parameter `query`
    /// (if given) of `uri`. Values longer than `max_len` bytes are invalid.
    pub fn from_parts(headers: &HeaderMap, uri: &Uri, query: Option<&str>, max_len: usize) -> Self {
        Self::from_headers_and_query(headers, uri.query(), query, max_len)
    }

    /// Like [`from_parts`](Self::from_parts), with the raw query string (without `?`) instead
    /// of the URI, for frameworks that hand out the query alone.
    pub fn from_headers_and_query(
        headers: &HeaderMap,
        query_string: Option<&str>,
        query: Option<&str>,
        max_len: usize,
    ) -> Self {
        if let Some(value) = headers.get(LAST_EVENT_ID) {
            return Self::from_value(value.as_bytes(), max_len);
        }
        let (Some(name), Some(query)) = (query, query_string) else {
            return Self::Absent;
        };
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == name {
                return match percent_decode(value, max_len) {
                    Some(bytes) => Self::from_value(&bytes, max_len),
                    None => Self::Invalid(InvalidLastEventId::TooLong { max_len }),
                };
            }
        }
        Self::Absent
    }

    /// The cursor of a request as an extractor sees it: the one
    /// [`SseLayer`](crate::SseLayer) stored in `extensions` (with the layer's settings), or
    /// without the layer, parsed here with the defaults
    /// ([`DEFAULT_LAST_EVENT_ID_QUERY`], [`DEFAULT_MAX_LAST_EVENT_ID_LEN`]).
    pub fn from_request(extensions: &http::Extensions, headers: &HeaderMap, uri: &Uri) -> Self {
        // The layer inserts the cursor on every request (`Absent` included), so no extension
        // means no layer: parse with the defaults.
        match extensions.get::<Self>() {
            Some(cursor) => cursor.clone(),
            None => Self::from_parts(
                headers,
                uri,
                Some(DEFAULT_LAST_EVENT_ID_QUERY),
                DEFAULT_MAX_LAST_EVENT_ID_LEN,
            ),
        }
    }

    /// The valid last event id as a string, if any.
    pub fn as_str(&self) -> Option<&str> {
        self.last_event_id().map(ValidLastEventId::as_str)
    }

    fn from_value(value: &[u8], max_len: usize) -> Self {
        if value.is_empty() {
            return Self::Absent;
        }
        match ValidLastEventId::parse(value, max_len) {
            Ok(id) => Self::Valid(id),
            Err(e) => Self::Invalid(e),
        }
    }

    /// The valid last event id, if any.
    pub fn last_event_id(&self) -> Option<&ValidLastEventId> {
        match self {
            Self::Valid(id) => Some(id),
            _ => None,
        }
    }

    /// The cursor to pass to [`EventLog::read_after`](tower_sse_core::EventLog::read_after)
    /// or [`Hub::subscribe`](crate::Hub::subscribe): `None` when absent, the id when valid,
    /// and for an invalid value a string no log issues, so that the log reports it as
    /// [`ReplayOutcome::Unknown`](tower_sse_core::ReplayOutcome::Unknown) and the client
    /// learns it missed events.
    pub fn log_cursor(&self) -> Option<&str> {
        match self {
            Self::Absent => None,
            Self::Valid(id) => Some(id.as_str()),
            Self::Invalid(_) => Some(INVALID_CURSOR),
        }
    }
}

/// Decodes `%XX` escapes and `+` (as a space); `None` if the result would exceed `max_len`.
fn percent_decode(value: &str, max_len: usize) -> Option<Vec<u8>> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len().min(max_len + 1));
    let mut i = 0;
    while i < bytes.len() {
        let b = match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        i += 2;
                        (h * 16 + l) as u8
                    }
                    _ => b'%',
                }
            }
            b'+' => b' ',
            b => b,
        };
        out.push(b);
        if out.len() > max_len {
            return None;
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cursor(header: Option<&[u8]>, uri: &str) -> ClientCursor {
        let mut headers = HeaderMap::new();
        if let Some(h) = header {
            headers.insert(LAST_EVENT_ID, HeaderValue::from_bytes(h).unwrap());
        }
        ClientCursor::from_parts(&headers, &uri.parse().unwrap(), Some("lastEventId"), 16)
    }

    #[test]
    fn header_first_then_query() {
        assert_eq!(
            cursor(Some(b"7"), "/e?lastEventId=9").log_cursor(),
            Some("7")
        );
        assert_eq!(cursor(None, "/e?a=1&lastEventId=9").log_cursor(), Some("9"));
        assert_eq!(
            cursor(None, "/e?lastEventId=a%2Fb+c").log_cursor(),
            Some("a/b c")
        );
        assert_eq!(cursor(None, "/e?x=1"), ClientCursor::Absent);
        assert_eq!(cursor(None, "/e"), ClientCursor::Absent);
        assert_eq!(cursor(Some(b""), "/e"), ClientCursor::Absent);
        assert_eq!(cursor(None, "/e?lastEventId="), ClientCursor::Absent);
    }

    #[test]
    fn invalid_values_are_kept_out() {
        assert_eq!(
            cursor(Some(b"\xff\xfe"), "/e"),
            ClientCursor::Invalid(InvalidLastEventId::NotUtf8)
        );
        assert_eq!(
            cursor(Some(b"0123456789abcdefX"), "/e"),
            ClientCursor::Invalid(InvalidLastEventId::TooLong { max_len: 16 })
        );
        assert_eq!(
            cursor(None, "/e?lastEventId=a%0Ab"),
            ClientCursor::Invalid(InvalidLastEventId::ForbiddenCharacter)
        );
        assert_eq!(
            cursor(None, "/e?lastEventId=%00"),
            ClientCursor::Invalid(InvalidLastEventId::ForbiddenCharacter)
        );
        let invalid = cursor(None, "/e?lastEventId=%ff");
        assert_eq!(invalid, ClientCursor::Invalid(InvalidLastEventId::NotUtf8));
        assert!(invalid.log_cursor().unwrap().contains('\0'));
        assert_eq!(invalid.last_event_id(), None);
    }

    #[test]
    fn stray_percent_signs_are_literal() {
        assert_eq!(cursor(None, "/e?lastEventId=5%").log_cursor(), Some("5%"));
        assert_eq!(cursor(None, "/e?lastEventId=%zz").log_cursor(), Some("%zz"));
    }
}
