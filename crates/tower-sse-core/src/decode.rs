//! [`Decoder`]: an incremental event-stream parser.
//!
//! Implements the WHATWG HTML Living Standard,
//! [Interpreting an event stream](https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).

mod shared_str;

use std::{fmt, mem, time::Duration};

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub use shared_str::SharedStr;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The smallest input buffer the decoder allocates: buffers are shared by the events sliced
/// from them, so a stream fed in small chunks still fills a few kilobytes per allocation.
const MIN_INPUT_BUFFER: usize = 8 * 1024;

/// The default [`Decoder::max_event_size`]: 1 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

/// A dispatched event, as a browser's `MessageEvent` would see it.
///
/// Its fields are [`SharedStr`]s: slices of the decoder's input buffer, not copies (see
/// [`SharedStr`] for what holding one keeps alive). They deref to `str` and compare with
/// string literals and `String`s.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageEvent {
    /// The event type: the last `event` field, or `message` when none or empty.
    pub event_type: SharedStr,
    /// The `data` lines joined by LF.
    pub data: SharedStr,
    /// The stream's last event id when the event was dispatched (ids carry over).
    pub last_event_id: SharedStr,
}

/// What the decoder reports, in stream order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decoded {
    /// An event was dispatched.
    Event(MessageEvent),
    /// A valid `retry` field set the reconnection time.
    Retry(Duration),
    /// A comment line, without its leading colon; reported only when
    /// [`Decoder::report_comments`] is on.
    Comment(String),
}

/// The decoder met an event larger than [`Decoder::max_event_size`].
///
/// The decoder has discarded that event and resumes with the next one.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// An event's buffered fields, or one line, grew past the limit.
    EventTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventTooLarge { limit } => write!(
                f,
                "event larger than the {limit}-byte limit; skipped to the next event"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// An incremental, WHATWG-exact event-stream decoder.
///
/// Feed it bytes in any chunking with [`feed`](Self::feed) (one byte at a time works, and so
/// does a CRLF or a UTF-8 code point split across chunks), then call
/// [`decode`](Self::decode) until it returns `Ok(None)`; call [`finish`](Self::finish) at end
/// of input, which discards an unterminated event as browsers do.
///
/// Memory is bounded by [`max_event_size`](Self::max_event_size) plus the chunk being fed: an
/// event whose fields or whose single line grow past it is reported once as
/// [`DecodeError::EventTooLarge`] and skipped up to the next blank line; decoding goes on
/// after it. Comment lines are skipped as they stream by and never count.
///
/// Each byte is looked at once, and nothing is copied per line: the fields of an event are
/// slices of the input buffer (see [`SharedStr`]), checked as UTF-8 once, when the event is
/// dispatched; only the lines of a multi-line `data` field are joined into a new buffer. A
/// slice keeps its input buffer (a few KiB of the stream, at least 8 KiB allocated at a time)
/// alive while the event, or the decoder's last event id, holds it.
///
/// # Example
///
/// ```
/// use tower_sse_core::{Decoded, Decoder};
///
/// let mut decoder = Decoder::new();
/// decoder.feed(b"id: 1\nevent: greet\ndata: hel");
/// assert_eq!(decoder.decode(), Ok(None)); // partial input is not an error
/// decoder.feed(b"lo\n\n");
/// let Some(Decoded::Event(event)) = decoder.decode()? else { panic!() };
/// assert_eq!((&*event.event_type, &*event.data, &*event.last_event_id), ("greet", "hello", "1"));
/// # Ok::<(), tower_sse_core::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct Decoder {
    /// Complete lines, frozen out of `input` and read from the front: the fields of an
    /// event are slices of it. Empty, or ends with a line end.
    lines: Bytes,
    /// Bytes fed after the last line end in `lines`.
    input: BytesMut,
    /// How many bytes at the front of `input` are known to hold no line end: a long line
    /// fed in many chunks is searched once, never rescanned from its start.
    scanned: usize,
    max_event_size: usize,
    report_comments: bool,
    /// Still at the start of the stream, where one BOM may be stripped.
    at_start: bool,
    /// The previous line ended in CR: a leading LF belongs to that break.
    pending_cr: bool,
    /// Discarding the rest of a comment line (of any length).
    in_comment: bool,
    /// Discarding an oversized event up to the next blank line.
    skipping: Option<Skip>,
    /// The event being read.
    event: Fields,
    /// The lines of a multi-line `data` field, joined by LF; reused from event to event.
    joined: BytesMut,
    last_event_id: SharedStr,
    retry: Option<Duration>,
}

/// The fields of the event being read, as raw slices of the input (UTF-8 is checked once,
/// at dispatch).
#[derive(Debug, Default)]
struct Fields {
    data: Data,
    /// The WHATWG data buffer's length: each data line and its LF.
    data_len: usize,
    event_type: Option<Bytes>,
    /// An `id` field of this event: the last event id once the event ends.
    id: Option<Bytes>,
}

#[derive(Debug, Default)]
enum Data {
    #[default]
    None,
    /// One data line: a slice of the input, no copy.
    Line(Bytes),
    /// Two or more: in `Decoder::joined`.
    Joined,
}

#[derive(Clone, Copy, Debug)]
enum Skip {
    AtLineStart,
    MidLine,
}

/// What a line is, read from its field name.
enum Line {
    Blank,
    Comment,
    Data,
    Event,
    Id,
    Retry,
    Ignored,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder at the start of a stream, with the default maximum event size (1 MiB).
    #[must_use]
    pub fn new() -> Self {
        Self {
            lines: Bytes::new(),
            input: BytesMut::new(),
            scanned: 0,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            report_comments: false,
            at_start: true,
            pending_cr: false,
            in_comment: false,
            skipping: None,
            event: Fields::default(),
            joined: BytesMut::new(),
            last_event_id: SharedStr::new(),
            retry: None,
        }
    }

    /// Sets the largest event, in bytes of buffered fields, that the decoder will hold.
    #[must_use]
    pub fn max_event_size(mut self, limit: usize) -> Self {
        self.max_event_size = limit;
        self
    }

    /// Reports comment lines as [`Decoded::Comment`] instead of skipping them (off by
    /// default). A comment line longer than [`max_event_size`](Self::max_event_size) is still
    /// skipped, unreported.
    #[must_use]
    pub fn report_comments(mut self, on: bool) -> Self {
        self.report_comments = on;
        self
    }

    /// Presets the last event id, as if an earlier stream had sent it in an `id` field: later
    /// events without an `id` carry it. For a client that resumes from a stored id.
    pub fn set_last_event_id(&mut self, id: &str) {
        self.last_event_id = SharedStr::from(id);
        self.event.id = None;
    }

    /// The stream's last event id string: set each time an event block ends, even one with
    /// no data, as the `Last-Event-ID` a reconnecting browser would send.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// The reconnection time the stream set with `retry`, if any.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Appends the next bytes of the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.input.capacity() == 0 {
            // Empty and full (or never used): start a fresh buffer rather than grow one that
            // dispatched events may still share.
            self.input = BytesMut::with_capacity(chunk.len().max(MIN_INPUT_BUFFER));
        }
        self.input.extend_from_slice(chunk);
    }

    /// Ends the stream: input that did not end in a blank line is discarded, as browsers do.
    /// The decoder is then at the start of a new stream; the last event id and reconnection
    /// time are kept, as they are across an `EventSource` reconnection.
    pub fn finish(&mut self) {
        self.lines = Bytes::new();
        self.input.clear();
        self.scanned = 0;
        self.at_start = true;
        self.pending_cr = false;
        self.in_comment = false;
        self.skipping = None;
        self.event = Fields::default();
        self.joined.clear();
    }

    /// Decodes the next event or `retry` update from the bytes fed so far.
    ///
    /// Returns `Ok(None)` when more input is needed.
    ///
    /// # Errors
    ///
    /// [`DecodeError::EventTooLarge`] when an event exceeds the maximum size. The error is
    /// reported once; call `decode` again to go on with the next event.
    pub fn decode(&mut self) -> Result<Option<Decoded>, DecodeError> {
        loop {
            if self.at_start {
                // Nothing is in `lines` yet: the stream's first bytes are in `input`.
                let n = self.input.len().min(BOM.len());
                if self.input[..n] != BOM[..n] {
                    self.at_start = false;
                } else if n == BOM.len() {
                    self.input.advance(n);
                    self.at_start = false;
                } else {
                    return Ok(None); // a possible BOM prefix: wait for more
                }
            }
            if !self.fill_lines() {
                return self.partial_line();
            }
            if self.pending_cr {
                if self.lines[0] == b'\n' {
                    self.lines.advance(1);
                }
                self.pending_cr = false;
                continue;
            }
            if let Some(skip) = self.skipping {
                self.skip_oversized(skip);
                continue;
            }
            if self.in_comment {
                self.skip_line();
                self.in_comment = false;
                continue;
            }
            let item = if matches!(self.lines[0], b'\n' | b'\r') {
                self.dispatch()
            } else {
                let end = memchr::memchr2(b'\n', b'\r', &self.lines).unwrap_or(self.lines.len());
                self.process_line(end)
            };
            self.consume_line_end();
            if let Some(item) = item {
                // The size was counted in input bytes; the data is decoded with replacement
                // characters (three bytes for each invalid byte), so a dispatched event can
                // still be over the limit. Its blank line is consumed: nothing to skip.
                if matches!(&item, Decoded::Event(event) if event.data.len() > self.max_event_size)
                {
                    return Err(DecodeError::EventTooLarge {
                        limit: self.max_event_size,
                    });
                }
                return Ok(Some(item));
            }
            if self.buffered() > self.max_event_size {
                return Err(self.oversized(Skip::AtLineStart));
            }
        }
    }

    /// Makes `lines` non-empty: freezes the complete lines of `input` (one reference count
    /// per feed, not per line). False if `input` holds no line end.
    fn fill_lines(&mut self) -> bool {
        if !self.lines.is_empty() {
            return true;
        }
        let Some(last) = memchr::memrchr2(b'\n', b'\r', &self.input[self.scanned..]) else {
            self.scanned = self.input.len();
            return false;
        };
        let end = self.scanned + last + 1;
        self.scanned = 0;
        self.lines = self.input.split_to(end).freeze();
        true
    }

    /// `input` holds part of a line only: wait for the rest, unless it is a comment or part
    /// of a skipped event, to drop as it streams by, or it already makes the event too large.
    fn partial_line(&mut self) -> Result<Option<Decoded>, DecodeError> {
        if self.input.is_empty() {
            return Ok(None);
        }
        // The first byte is not an LF (there is no line end): a pending CR ended its line.
        self.pending_cr = false;
        if self.in_comment || self.skipping.is_some() {
            self.drop_input();
            if self.skipping.is_some() {
                self.skipping = Some(Skip::MidLine);
            }
            return Ok(None);
        }
        let comment = self.input[0] == b':';
        if comment && (!self.report_comments || self.input.len() > self.max_event_size) {
            self.drop_input();
            self.in_comment = true;
            return Ok(None);
        }
        if !comment && self.buffered() + self.input.len() > self.max_event_size {
            self.drop_input();
            return Err(self.oversized(Skip::MidLine));
        }
        Ok(None)
    }

    fn drop_input(&mut self) {
        self.input.clear();
        self.scanned = 0;
    }

    /// The size of the event being read, as the WHATWG buffers would hold it (the id buffer
    /// holds the last event id until an `id` field replaces it).
    fn buffered(&self) -> usize {
        let id = match &self.event.id {
            Some(id) => id.len(),
            None => self.last_event_id.len(),
        };
        self.event.data_len + self.event.event_type.as_ref().map_or(0, Bytes::len) + id
    }

    fn oversized(&mut self, skip: Skip) -> DecodeError {
        self.event = Fields::default();
        // Release a large joined buffer rather than keep it for the next event.
        self.joined = BytesMut::new();
        self.skipping = Some(skip);
        DecodeError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Consumes the CR, LF or CRLF at the front of `lines`.
    fn consume_line_end(&mut self) {
        let cr = self.lines[0] == b'\r';
        self.lines.advance(1);
        if cr {
            match self.lines.first() {
                Some(b'\n') => self.lines.advance(1),
                Some(_) => {}
                None => self.pending_cr = true,
            }
        }
    }

    /// Discards the line at the front of `lines`, line end included.
    fn skip_line(&mut self) {
        let end = memchr::memchr2(b'\n', b'\r', &self.lines).unwrap_or(self.lines.len());
        self.lines.advance(end);
        self.consume_line_end();
    }

    /// Discards a line of an oversized event; a blank line ends the skipping.
    fn skip_oversized(&mut self, skip: Skip) {
        if matches!(skip, Skip::AtLineStart) && matches!(self.lines[0], b'\n' | b'\r') {
            self.consume_line_end();
            self.skipping = None;
        } else {
            self.skip_line();
            self.skipping = Some(Skip::AtLineStart);
        }
    }

    /// Interprets the line at the front of `lines`, `end` bytes long, and consumes it (not
    /// its line end).
    fn process_line(&mut self, end: usize) -> Option<Decoded> {
        let line = &self.lines[..end];
        // Most lines of a stream are data lines: recognise them without a search.
        let (kind, mut value) = if line.starts_with(b"data:") {
            (Line::Data, 5)
        } else if line.starts_with(b"id:") {
            (Line::Id, 3)
        } else {
            match memchr::memchr(b':', line) {
                None if line.is_empty() => (Line::Blank, 0),
                Some(0) => (Line::Comment, 1),
                Some(colon) => (Line::of(&line[..colon]), colon + 1),
                None => (Line::of(line), end),
            }
        };
        if !matches!(kind, Line::Comment) && line.get(value) == Some(&b' ') {
            value += 1;
        }
        match kind {
            Line::Blank => return self.dispatch(),
            Line::Data => self.push_data(end, value),
            Line::Event => self.event.event_type = Some(self.take_value(end, value)),
            Line::Id if !line[value..].contains(&0) => {
                self.event.id = Some(self.take_value(end, value));
            }
            Line::Comment if self.report_comments && end <= self.max_event_size => {
                let comment = String::from_utf8_lossy(&line[value..]).into_owned();
                self.lines.advance(end);
                return Some(Decoded::Comment(comment));
            }
            Line::Retry => {
                let retry = parse_retry(&line[value..]);
                self.lines.advance(end);
                if let Some(retry) = retry {
                    self.retry = Some(retry);
                    return Some(Decoded::Retry(retry));
                }
            }
            Line::Id | Line::Comment | Line::Ignored => self.lines.advance(end),
        }
        None
    }

    /// Takes bytes `value..end` of `lines` (the value of the line at its front) as a shared
    /// slice, and consumes the line.
    fn take_value(&mut self, end: usize, value: usize) -> Bytes {
        self.lines.advance(value);
        self.lines.split_to(end - value)
    }

    fn push_data(&mut self, end: usize, value: usize) {
        self.event.data_len += end - value + 1;
        match &self.event.data {
            Data::None => self.event.data = Data::Line(self.take_value(end, value)),
            Data::Line(first) => {
                self.joined.clear();
                self.joined.extend_from_slice(first);
                self.joined.put_u8(b'\n');
                self.joined.extend_from_slice(&self.lines[value..end]);
                self.lines.advance(end);
                self.event.data = Data::Joined;
            }
            Data::Joined => {
                self.joined.put_u8(b'\n');
                self.joined.extend_from_slice(&self.lines[value..end]);
                self.lines.advance(end);
            }
        }
    }

    fn dispatch(&mut self) -> Option<Decoded> {
        if let Some(id) = self.event.id.take() {
            self.last_event_id = SharedStr::from_utf8_lossy(id);
        }
        let event_type = self.event.event_type.take();
        self.event.data_len = 0;
        let data = match mem::take(&mut self.event.data) {
            Data::None => return None,
            Data::Line(line) => line,
            Data::Joined => self.joined.split().freeze(),
        };
        let event_type = match event_type {
            Some(event_type) if !event_type.is_empty() => SharedStr::from_utf8_lossy(event_type),
            _ => SharedStr::from_static("message"),
        };
        Some(Decoded::Event(MessageEvent {
            event_type,
            data: SharedStr::from_utf8_lossy(data),
            last_event_id: self.last_event_id.clone(),
        }))
    }
}

impl Line {
    fn of(name: &[u8]) -> Self {
        match name {
            b"data" => Self::Data,
            b"event" => Self::Event,
            b"id" => Self::Id,
            b"retry" => Self::Retry,
            _ => Self::Ignored,
        }
    }
}

/// A `retry` value: ASCII digits only, else ignored; too large a number saturates.
fn parse_retry(value: &[u8]) -> Option<Duration> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let millis = value.iter().fold(0u64, |millis, digit| {
        millis
            .saturating_mul(10)
            .saturating_add(u64::from(digit - b'0'))
    });
    Some(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(decoder: &mut Decoder) -> Vec<MessageEvent> {
        let mut out = Vec::new();
        while let Some(item) = decoder.decode().unwrap() {
            if let Decoded::Event(event) = item {
                out.push(event);
            }
        }
        out
    }

    #[test]
    fn single_line_fields_are_slices_of_one_input_buffer() {
        let mut decoder = Decoder::new();
        decoder.feed(b"id: 1\nevent: a\ndata: first\n\nid: 2\ndata: second\n\n");
        let got = events(&mut decoder);
        assert_eq!(got.len(), 2);
        let base = got[0].data.as_ptr() as usize;
        for field in [&got[0].last_event_id, &got[0].event_type, &got[1].data] {
            let offset = (field.as_ptr() as usize).wrapping_sub(base);
            // within the 50 bytes fed, on either side of the first data field
            assert!(
                offset < 64 || offset.wrapping_neg() < 64,
                "{field:?} copied"
            );
        }
        assert_eq!(got[1].event_type, "message");
    }

    #[test]
    fn multi_line_data_is_joined_and_the_buffer_reused() {
        let mut decoder = Decoder::new();
        decoder.feed(b"data: a\ndata: b\n\ndata: c\ndata:\ndata: d\n\n");
        let got = events(&mut decoder);
        let data: Vec<&str> = got.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a\nb", "c\n\nd"]);
    }

    #[test]
    fn a_field_split_across_feeds_is_whole() {
        let mut decoder = Decoder::new();
        for piece in [&b"id: 4"[..], b"2\nda", b"ta: he", b"llo\r", b"\n\r\n"] {
            decoder.feed(piece);
        }
        let got = events(&mut decoder);
        assert_eq!((&*got[0].last_event_id, &*got[0].data), ("42", "hello"));
    }
}
