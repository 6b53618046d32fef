//! [`Event`] and its encoder.
//!
//! The wire format follows the WHATWG HTML Living Standard, section
//! [Server-sent events](https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream).

use std::{borrow::Cow, fmt, time::Duration};

use bytes::{BufMut, Bytes, BytesMut};

mod lines;

use lines::{FieldLines, lines_len, put_field, put_lines};

/// The heartbeat frame: an empty comment followed by a blank line.
///
/// Browsers ignore it; proxies see traffic and keep the connection open. It is only safe to
/// write between events: see [`FrameBoundary`](crate::FrameBoundary). Some clients that do
/// not follow the standard dispatch an empty event on its blank line; [`HEARTBEAT_LINE`] has
/// none.
pub const HEARTBEAT: Bytes = Bytes::from_static(b":\n\n");

/// The single-line heartbeat: an empty comment line, with no blank line after it.
///
/// Every conforming parser ignores a comment line, and without a blank line there is nothing
/// to dispatch even for parsers that dispatch empty events (openai-python before 2.38 once an
/// `id` has been seen, openai-go before 3.43: both then fail on the empty payload). Between
/// events it simply becomes the first line of the next event's block. It is only safe to
/// write at the start of a line; written between events it never changes what the next event
/// means.
pub const HEARTBEAT_LINE: Bytes = Bytes::from_static(b":\n");

/// One server-sent event, built field by field and encoded with [`Event::encode`].
///
/// Construction is fallible where the wire format demands it: an `id` or `event` containing
/// CR, LF or NUL is rejected with an [`EventError`] instead of being written as an injected
/// line. Text fields borrow where they can (`Cow<'a, str>`), so encoding an event built from
/// `&str` allocates nothing beyond the output buffer.
///
/// # Encoding rules
///
/// - `data` is split on CRLF, CR and LF (CRLF counts as one break); every line gets its own
///   `data:` field, so multi-line text round-trips through a browser's `EventSource`.
/// - An event with a type but no data still gets an empty `data:` line, because browsers drop
///   blocks without data silently. An event with neither (only an `id`, `retry` or comment) is
///   written without one, which is how a stream sets the last event id or the reconnection
///   time without dispatching anything.
/// - Output uses LF line ends only, ends with a blank line, and never contains a BOM.
///
/// # Example
///
/// ```
/// use bytes::BytesMut;
/// use tower_sse_core::Event;
///
/// let event = Event::new()
///     .id("42")?
///     .event("update")?
///     .data("line one\nline two");
///
/// let mut buf = BytesMut::new();
/// event.encode(&mut buf);
/// assert_eq!(&buf[..], b"id: 42\nevent: update\ndata: line one\ndata: line two\n\n");
///
/// // CR, LF and NUL cannot smuggle a field into the stream.
/// assert!(Event::new().id("1\ndata: injected").is_err());
/// # Ok::<(), tower_sse_core::EventError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Event<'a> {
    id: Option<Cow<'a, str>>,
    event: Option<Cow<'a, str>>,
    data: Option<Cow<'a, str>>,
    retry: Option<Duration>,
    comment: Option<Cow<'a, str>>,
}

impl<'a> Event<'a> {
    /// An event with no fields; add them with the builder methods.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the `data` field. Line breaks (CRLF, CR or LF) become separate `data:` lines.
    #[must_use]
    pub fn data(mut self, data: impl Into<Cow<'a, str>>) -> Self {
        self.data = Some(data.into());
        self
    }

    /// Sets the `data` field to the JSON serialization of `value`.
    ///
    /// # Errors
    ///
    /// Returns the serializer's error when `value` cannot be serialized.
    #[cfg(feature = "json")]
    pub fn json_data<T>(mut self, value: &T) -> Result<Self, serde_json::Error>
    where
        T: serde::Serialize + ?Sized,
    {
        self.data = Some(Cow::Owned(serde_json::to_string(value)?));
        Ok(self)
    }

    /// Sets the `id` field, which the client echoes in `Last-Event-ID` when it reconnects.
    ///
    /// An empty id is allowed: it resets the client's last event id.
    ///
    /// # Errors
    ///
    /// Returns an error if `id` contains CR, LF or NUL (a browser ignores an id with NUL and
    /// would read CR or LF as the start of a new field).
    pub fn id(mut self, id: impl Into<Cow<'a, str>>) -> Result<Self, EventError> {
        let id = id.into();
        check_field(Field::Id, &id)?;
        self.id = Some(id);
        Ok(self)
    }

    /// Sets the `event` field, the type a browser dispatches the event as (`message` when
    /// absent or empty).
    ///
    /// # Errors
    ///
    /// Returns an error if `event` contains CR, LF or NUL. NUL is legal on the wire but cannot
    /// be named by a JavaScript `addEventListener` caller by accident, so it is treated as the
    /// bug it almost certainly is.
    pub fn event(mut self, event: impl Into<Cow<'a, str>>) -> Result<Self, EventError> {
        let event = event.into();
        check_field(Field::Event, &event)?;
        self.event = Some(event);
        Ok(self)
    }

    /// Sets the `retry` field: the client's reconnection delay, written in whole milliseconds,
    /// rounded up: a delay is never shortened, and a nonzero delay under a millisecond is
    /// written as `retry: 1`, never as `retry: 0`, which would have clients reconnect at once,
    /// in a tight loop. Only [`Duration::ZERO`] writes `retry: 0`.
    #[must_use]
    pub fn retry(mut self, retry: Duration) -> Self {
        self.retry = Some(retry);
        self
    }

    /// Adds a comment, written before the fields. Line breaks start a new comment line.
    #[must_use]
    pub fn comment(mut self, comment: impl Into<Cow<'a, str>>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The `id` field, if set.
    pub fn id_ref(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `event` field, if set.
    pub fn event_ref(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The `data` field, if set.
    pub fn data_ref(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The `retry` field, if set.
    pub fn retry_ref(&self) -> Option<Duration> {
        self.retry
    }

    /// The comment, if set.
    pub fn comment_ref(&self) -> Option<&str> {
        self.comment.as_deref()
    }

    /// Converts every borrowed field into an owned one.
    #[must_use]
    pub fn into_owned(self) -> Event<'static> {
        Event {
            id: self.id.map(|s| Cow::Owned(s.into_owned())),
            event: self.event.map(|s| Cow::Owned(s.into_owned())),
            data: self.data.map(|s| Cow::Owned(s.into_owned())),
            retry: self.retry,
            comment: self.comment.map(|s| Cow::Owned(s.into_owned())),
        }
    }

    /// Appends the encoded event, ending with a blank line, to `buf`.
    ///
    /// Reserves exactly [`encoded_len`](Event::encoded_len) bytes once, then writes with no
    /// other allocation: `data` is searched for line breaks once, for both the length and the
    /// writing. Reuse `buf` and `split().freeze()` it to share one encoding among many
    /// receivers.
    pub fn encode(&self, buf: &mut BytesMut) {
        self.emit(|len| {
            buf.reserve(len);
            buf
        });
    }

    /// Encodes the event into a new [`Bytes`]: one allocation, of exactly the encoded length.
    #[must_use]
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.emit(|len| {
            out = BytesMut::with_capacity(len);
            &mut out
        });
        out.freeze()
    }

    /// The exact number of bytes [`encode`](Event::encode) appends.
    ///
    /// Searches `data` and the comment for line breaks (each adds a field name); `encode`
    /// computes the same length itself, so there is no need to call this before it.
    ///
    /// ```
    /// use tower_sse_core::Event;
    ///
    /// let event = Event::new().id("7")?.data("a\r\nb");
    /// assert_eq!(event.encoded_len(), event.to_bytes().len());
    /// assert_eq!(event.encoded_len(), "id: 7\ndata: a\ndata: b\n\n".len());
    /// # Ok::<(), tower_sse_core::EventError>(())
    /// ```
    pub fn encoded_len(&self) -> usize {
        let data = match self.data.as_deref() {
            Some(data) => lines_len(data.as_bytes(), b"data: ", b"data:\n"),
            None => 0,
        };
        self.len_around_data() + data
    }

    /// Everything but `data`'s lines: the comment, `retry`, `id`, `event`, an empty `data:`
    /// for a typed event without data, and the blank line.
    fn len_around_data(&self) -> usize {
        // `name: value\n`, or `name:\n` when the value is empty.
        let field = |name: usize, value: &Option<Cow<'a, str>>| {
            value
                .as_ref()
                .map_or(0, |v| name + 2 + if v.is_empty() { 0 } else { 1 + v.len() })
        };
        self.comment
            .as_deref()
            .map_or(0, |c| lines_len(c.as_bytes(), b":", b":\n"))
            + self.retry.map_or(0, |r| retry_len(retry_millis(r)))
            + field("id".len(), &self.id)
            + field("event".len(), &self.event)
            + if self.data.is_none() && self.event.is_some() {
                "data:\n".len()
            } else {
                0
            }
            + 1
    }

    /// Computes the exact length, asks `room` for a buffer with that much room, and writes.
    ///
    /// Single-line `data` (the common case) is searched once and written as one field; the
    /// line breaks of multi-line `data` are remembered by [`FieldLines`] between the length
    /// and the writing.
    #[inline(always)]
    fn emit<'b>(&self, room: impl FnOnce(usize) -> &'b mut BytesMut) {
        let data = self.data.as_deref().map(str::as_bytes);
        let first_break = data.and_then(|d| memchr::memchr2(b'\n', b'\r', d));
        let lines = match (data, first_break) {
            (Some(data), Some(first)) => Some(FieldLines::scan(data, first, b"data: ", b"data:\n")),
            _ => None,
        };
        let data_len = match (&lines, data) {
            (Some(lines), _) => lines.len(),
            (None, Some([])) => "data:\n".len(),
            (None, Some(data)) => "data: ".len() + data.len() + 1,
            (None, None) => 0,
        };
        let buf = room(self.len_around_data() + data_len);
        if let Some(comment) = &self.comment {
            put_lines(buf, b":", b":\n", comment.as_bytes());
        }
        if let Some(retry) = self.retry {
            put_retry(buf, retry);
        }
        if let Some(id) = &self.id {
            put_field(buf, b"id: ", b"id:\n", id.as_bytes());
        }
        if let Some(event) = &self.event {
            put_field(buf, b"event: ", b"event:\n", event.as_bytes());
        }
        match (&lines, data) {
            (Some(lines), _) => lines.put(buf, b"data: ", b"data:\n"),
            (None, Some(data)) => put_field(buf, b"data: ", b"data:\n", data),
            (None, None) if self.event.is_some() => buf.put_slice(b"data:\n"),
            (None, None) => {}
        }
        buf.put_u8(b'\n');
    }
}

impl fmt::Debug for Event<'_> {
    /// Shows the fields that are set, not the `Cow` wrappers.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Event");
        if let Some(id) = &self.id {
            s.field("id", id);
        }
        if let Some(event) = &self.event {
            s.field("event", event);
        }
        if let Some(data) = &self.data {
            s.field("data", data);
        }
        if let Some(retry) = &self.retry {
            s.field("retry", retry);
        }
        if let Some(comment) = &self.comment {
            s.field("comment", comment);
        }
        s.finish()
    }
}

/// Appends a comment frame (`:text` lines and a blank line) to `buf`.
///
/// A comment is ignored by clients; it keeps proxies from timing out an idle stream and makes
/// them forward the response headers at once. Line breaks in `text` start new comment lines.
///
/// ```
/// # use bytes::BytesMut;
/// let mut buf = BytesMut::new();
/// tower_sse_core::encode_comment("keep-alive", &mut buf);
/// assert_eq!(&buf[..], b":keep-alive\n\n");
/// ```
pub fn encode_comment(text: &str, buf: &mut BytesMut) {
    buf.reserve(lines_len(text.as_bytes(), b":", b":\n") + 1);
    put_lines(buf, b":", b":\n", text.as_bytes());
    buf.put_u8(b'\n');
}

/// An item of a stream of events that adapters turn into a response body: an [`Event`], or a
/// `Result` of one, whose error ends the stream.
///
/// ```
/// use std::convert::Infallible;
/// use tower_sse_core::{Event, EventItem};
///
/// let ok: Result<Event<'static>, Infallible> = Event::new().data("x").into_event();
/// assert_eq!(ok.unwrap().data_ref(), Some("x"));
/// let failed = Err::<Event<'static>, _>("upstream failed").into_event();
/// assert_eq!(failed.unwrap_err(), "upstream failed");
/// ```
pub trait EventItem {
    /// What ends the stream with an error; [`Infallible`](std::convert::Infallible) for a
    /// bare [`Event`].
    type Error;

    /// The event, or the error that ends the stream.
    ///
    /// # Errors
    ///
    /// The item's error, for a `Result` item.
    fn into_event(self) -> Result<Event<'static>, Self::Error>;
}

impl EventItem for Event<'static> {
    type Error = std::convert::Infallible;

    fn into_event(self) -> Result<Event<'static>, Self::Error> {
        Ok(self)
    }
}

impl<E> EventItem for Result<Event<'static>, E> {
    type Error = E;

    fn into_event(self) -> Result<Event<'static>, E> {
        self
    }
}

/// Appends a comment of a single line to `buf`, without the blank line that
/// [`encode_comment`] ends with (see [`HEARTBEAT_LINE`] for why). Line breaks in `text`
/// start new comment lines.
///
/// ```
/// # use bytes::BytesMut;
/// let mut buf = BytesMut::new();
/// tower_sse_core::encode_comment_line("keep-alive", &mut buf);
/// assert_eq!(&buf[..], b":keep-alive\n");
/// ```
pub fn encode_comment_line(text: &str, buf: &mut BytesMut) {
    buf.reserve(lines_len(text.as_bytes(), b":", b":\n"));
    put_lines(buf, b":", b":\n", text.as_bytes());
}

/// Appends a frame holding only a `retry` field to `buf`, setting the client's reconnection
/// delay without dispatching an event. The delay is rounded up to whole milliseconds, as in
/// [`Event::retry`].
///
/// ```
/// # use bytes::BytesMut;
/// # use std::time::Duration;
/// let mut buf = BytesMut::new();
/// tower_sse_core::encode_retry(Duration::from_secs(3), &mut buf);
/// assert_eq!(&buf[..], b"retry: 3000\n\n");
/// ```
pub fn encode_retry(retry: Duration, buf: &mut BytesMut) {
    buf.reserve(retry_len(retry_millis(retry)) + 1);
    put_retry(buf, retry);
    buf.put_u8(b'\n');
}

/// The delay in whole milliseconds, rounded up, so that a nonzero delay is never written as
/// 0 (a reconnect loop). u64 milliseconds cover 584 million years; saturate rather than wrap.
fn retry_millis(retry: Duration) -> u64 {
    let mut millis = retry.as_millis();
    if retry.subsec_nanos() % 1_000_000 != 0 {
        millis += 1;
    }
    u64::try_from(millis).unwrap_or(u64::MAX)
}

/// The length of `retry: <millis>\n`.
fn retry_len(millis: u64) -> usize {
    "retry: ".len() + millis.checked_ilog10().map_or(1, |d| d as usize + 1) + 1
}

fn put_retry(buf: &mut BytesMut, retry: Duration) {
    buf.put_slice(b"retry: ");
    put_decimal(buf, retry_millis(retry));
    buf.put_u8(b'\n');
}

fn put_decimal(buf: &mut BytesMut, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.put_slice(&digits[i..]);
}

fn check_field(field: Field, value: &str) -> Result<(), EventError> {
    match memchr::memchr3(b'\r', b'\n', 0, value.as_bytes()) {
        None => Ok(()),
        Some(index) => Err(EventError {
            field,
            byte: value.as_bytes()[index],
            index,
        }),
    }
}

/// The field an [`EventError`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// The `id` field.
    Id,
    /// The `event` field.
    Event,
}

/// An `id` or `event` value that cannot be written without changing the stream's meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventError {
    field: Field,
    byte: u8,
    index: usize,
}

impl EventError {
    /// The field whose value was rejected.
    pub fn field(&self) -> Field {
        self.field
    }

    /// The byte offset of the first forbidden character in the value.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let field = match self.field {
            Field::Id => "event id",
            Field::Event => "event type",
        };
        let what = match self.byte {
            b'\r' => "a carriage return (CR)",
            b'\n' => "a line feed (LF)",
            _ => "a NUL character",
        };
        write!(f, "{field} contains {what} at byte {}", self.index)
    }
}

impl std::error::Error for EventError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(event: &Event<'_>) -> Vec<u8> {
        event.to_bytes().to_vec()
    }

    #[test]
    fn data_only() {
        assert_eq!(encode(&Event::new().data("hello")), b"data: hello\n\n");
    }

    #[test]
    fn all_fields_in_order() {
        let event = Event::new()
            .comment("note")
            .retry(Duration::from_millis(1500))
            .id("7")
            .unwrap()
            .event("tick")
            .unwrap()
            .data("x");
        assert_eq!(
            encode(&event),
            b":note\nretry: 1500\nid: 7\nevent: tick\ndata: x\n\n"
        );
    }

    #[test]
    fn data_splits_on_every_line_break_kind() {
        let event = Event::new().data("a\nb\r\nc\rd");
        assert_eq!(encode(&event), b"data: a\ndata: b\ndata: c\ndata: d\n\n");
    }

    #[test]
    fn crlf_is_one_break_and_lf_cr_is_two() {
        assert_eq!(
            encode(&Event::new().data("a\r\nb")),
            b"data: a\ndata: b\n\n"
        );
        assert_eq!(
            encode(&Event::new().data("a\n\rb")),
            b"data: a\ndata:\ndata: b\n\n"
        );
    }

    #[test]
    fn trailing_and_leading_breaks_are_kept() {
        assert_eq!(
            encode(&Event::new().data("\nx\n")),
            b"data:\ndata: x\ndata:\n\n"
        );
    }

    #[test]
    fn empty_data_still_emits_data_field() {
        assert_eq!(encode(&Event::new().data("")), b"data:\n\n");
    }

    #[test]
    fn event_type_without_data_gets_empty_data() {
        assert_eq!(
            encode(&Event::new().event("ping").unwrap()),
            b"event: ping\ndata:\n\n"
        );
    }

    #[test]
    fn id_only_block_has_no_data() {
        assert_eq!(encode(&Event::new().id("9").unwrap()), b"id: 9\n\n");
        assert_eq!(encode(&Event::new().id("").unwrap()), b"id:\n\n");
    }

    #[test]
    fn leading_space_in_value_survives() {
        assert_eq!(encode(&Event::new().data(" x")), b"data:  x\n\n");
    }

    #[test]
    fn retry_in_whole_milliseconds_and_never_empty() {
        assert_eq!(encode(&Event::new().retry(Duration::ZERO)), b"retry: 0\n\n");
        assert_eq!(
            encode(&Event::new().retry(Duration::from_micros(2500))),
            b"retry: 3\n\n"
        );
        // Under a millisecond but not zero: never `retry: 0`.
        for tiny in [Duration::from_nanos(1), Duration::from_micros(999)] {
            assert_eq!(encode(&Event::new().retry(tiny)), b"retry: 1\n\n");
        }
        assert_eq!(
            encode(&Event::new().retry(Duration::from_millis(1500))),
            b"retry: 1500\n\n"
        );
        assert_eq!(
            encode(&Event::new().retry(Duration::MAX)),
            b"retry: 18446744073709551615\n\n"
        );
    }

    #[test]
    fn multi_line_comment() {
        assert_eq!(
            encode(&Event::new().comment("a\r\nb").data("d")),
            b":a\n:b\ndata: d\n\n"
        );
        let mut buf = BytesMut::new();
        encode_comment("", &mut buf);
        assert_eq!(&buf[..], b":\n\n");
        assert_eq!(&buf[..], &HEARTBEAT[..]);
        let mut buf = BytesMut::new();
        encode_comment_line("", &mut buf);
        assert_eq!(&buf[..], &HEARTBEAT_LINE[..]);
        encode_comment_line("a\nb", &mut buf);
        assert_eq!(&buf[..], b":\n:a\n:b\n");
    }

    #[test]
    fn forbidden_characters_are_errors() {
        for (bad, byte) in [("a\nb", b'\n'), ("a\rb", b'\r'), ("a\0b", 0)] {
            let err = Event::new().id(bad).unwrap_err();
            assert_eq!((err.field(), err.index(), err.byte), (Field::Id, 1, byte));
            let err = Event::new().event(bad).unwrap_err();
            assert_eq!((err.field(), err.index()), (Field::Event, 1));
        }
        assert_eq!(
            Event::new().id("12\n").unwrap_err().to_string(),
            "event id contains a line feed (LF) at byte 2"
        );
        assert_eq!(
            Event::new().event("\0").unwrap_err().to_string(),
            "event type contains a NUL character at byte 0"
        );
    }

    #[test]
    fn unicode_is_passed_through() {
        assert_eq!(
            encode(&Event::new().data("é\u{2028}\u{85}🦀")),
            "data: é\u{2028}\u{85}🦀\n\n".as_bytes()
        );
    }

    #[test]
    fn encoding_appends() {
        let mut buf = BytesMut::from(&b"x"[..]);
        Event::new().data("1").encode(&mut buf);
        Event::new().data("2").encode(&mut buf);
        assert_eq!(&buf[..], b"xdata: 1\n\ndata: 2\n\n");
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_data() {
        let event = Event::new().json_data(&["a\nb"]).unwrap();
        assert_eq!(encode(&event), b"data: [\"a\\nb\"]\n\n");
    }
}
