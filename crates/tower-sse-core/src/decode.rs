//! [`Decoder`]: an incremental event-stream parser.
//!
//! Implements the WHATWG HTML Living Standard,
//! [Interpreting an event stream](https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).

mod dispatch;
mod line_ends;
mod message;
mod shared_str;

use std::{fmt, time::Duration};

use bytes::{Buf, Bytes, BytesMut};
use bytestring::ByteString;

use self::{dispatch::push_lossy, line_ends::LineEnds, message::Span};
pub use self::{message::MessageEvent, shared_str::SharedStr};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The smallest input buffer the decoder allocates: buffers are shared by the events sliced
/// from them, so a stream fed in small chunks still fills a few kilobytes per allocation.
const MIN_INPUT_BUFFER: usize = 8 * 1024;

/// The default [`Decoder::max_event_size`]: 1 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

/// The largest [`Decoder::max_event_size`]: 1 GiB. An event's text (its data, with a
/// replacement character of three bytes for each invalid byte, its type and id) then stays
/// under 4 GiB, so that its fields are 32-bit ranges.
pub const MAX_EVENT_SIZE_CAP: usize = 1 << 30;

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
/// Each byte is looked at a bounded number of times, and nothing is copied per line or per
/// event: the complete lines of what was fed are taken out of the input buffer together,
/// checked as UTF-8 once, and each [`MessageEvent`] shares that text (one reference count)
/// with its fields as ranges of it. Only an event that is not in one such piece of text is
/// copied into a buffer of its own: multi-line `data`, an event cut by a chunk boundary, or
/// text with invalid UTF-8 (decoded with replacement characters). An event keeps the text it
/// came in (a few KiB of the stream, at least 8 KiB allocated at a time) alive while it is
/// held.
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
/// assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("greet", "hello", "1"));
/// # Ok::<(), tower_sse_core::DecodeError>(())
/// ```
#[derive(Debug)]
pub struct Decoder {
    /// Complete lines, taken out of `input` together and read from `pos`: the fields of the
    /// event being read are spans of it. Empty, or ends with a line end.
    lines: Bytes,
    /// `lines` as text, when it is valid UTF-8 (almost always): events share it.
    text: Option<ByteString>,
    /// Where the next line of `lines` starts.
    pos: usize,
    line_ends: LineEnds,
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
    /// The data of the event being read when it is not one span of `lines` (several lines,
    /// or cut by a chunk boundary), decoded; then the text of that event.
    joined: String,
    last_event_id: LastId,
    retry: Option<Duration>,
}

/// The fields of the event being read.
#[derive(Debug, Default)]
struct Fields {
    data: Data,
    /// The one data line, when `data` is `Data::Line`. Apart from `data` (not a payload of
    /// it) so that both are read and written as the scalars they are: an enum with this
    /// payload was stored piecewise and reloaded whole, a store-forwarding stall per event.
    data_line: Span,
    /// The WHATWG data buffer's length: each data line and its LF.
    data_len: usize,
    event_type: Field,
    /// An `id` field of this event: the last event id once the event ends.
    id: Field,
}

#[derive(Clone, Copy, Debug, Default)]
enum Data {
    #[default]
    None,
    /// One data line, in `lines`: `Fields::data_line`.
    Line,
    /// In `Decoder::joined`.
    Joined,
}

/// An `event` or `id` value.
#[derive(Debug, Default)]
enum Field {
    #[default]
    None,
    /// In `lines`.
    Span(Span),
    /// Kept from the `lines` before (the event was cut by a chunk boundary); raw bytes.
    Kept(Bytes),
}

/// The stream's last event id.
#[derive(Debug)]
enum LastId {
    /// In `lines`, which is valid UTF-8.
    Span(Span),
    Text(SharedStr),
}

#[derive(Clone, Copy, Debug)]
enum Skip {
    AtLineStart,
    MidLine,
}

/// What a line is, read from its field name.
enum Line {
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
            text: None,
            pos: 0,
            line_ends: LineEnds::default(),
            input: BytesMut::new(),
            scanned: 0,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            report_comments: false,
            at_start: true,
            pending_cr: false,
            in_comment: false,
            skipping: None,
            event: Fields::default(),
            joined: String::new(),
            last_event_id: LastId::Text(SharedStr::new()),
            retry: None,
        }
    }

    /// Sets the largest event, in bytes of buffered fields, that the decoder will hold; at
    /// most [`MAX_EVENT_SIZE_CAP`] (1 GiB), a larger limit is lowered to it.
    #[must_use]
    pub fn max_event_size(mut self, limit: usize) -> Self {
        self.max_event_size = limit.min(MAX_EVENT_SIZE_CAP);
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
        self.last_event_id = LastId::Text(SharedStr::from(id));
        self.event.id = Field::None;
    }

    /// The stream's last event id string: set each time an event block ends, even one with
    /// no data, as the `Last-Event-ID` a reconnecting browser would send.
    pub fn last_event_id(&self) -> &str {
        match (&self.last_event_id, &self.text) {
            (LastId::Span(span), Some(text)) => &text[span.range()],
            (LastId::Text(id), _) => id,
            (LastId::Span(_), None) => "", // never: a span is kept only in valid text
        }
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
        self.keep_last_event_id();
        self.lines = Bytes::new();
        self.text = None;
        self.pos = 0;
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
            if self.pos == self.lines.len() && !self.fill_lines() {
                return self.partial_line();
            }
            let start = self.pos;
            let first = self.lines[start];
            if self.pending_cr {
                self.pending_cr = false;
                if first == b'\n' {
                    self.pos += 1;
                    continue;
                }
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
            let item = if matches!(first, b'\n' | b'\r') {
                self.consume_line_end(start);
                self.dispatch()?
            } else {
                let end = self.line_ends.find(&self.lines, start);
                self.consume_line_end(end);
                self.process_line(start, end)
            };
            if item.is_some() {
                return Ok(item);
            }
            if self.buffered() > self.max_event_size {
                return Err(self.oversized(Skip::AtLineStart));
            }
        }
    }

    /// Refills `lines`, all read, with the complete lines of `input` (taken out together, and
    /// checked as UTF-8 together). False if `input` holds no line end.
    fn fill_lines(&mut self) -> bool {
        if self.at_start && !self.strip_bom() {
            return false;
        }
        let Some(last) = memchr::memrchr2(b'\n', b'\r', &self.input[self.scanned..]) else {
            self.scanned = self.input.len();
            return false;
        };
        let end = self.scanned + last + 1;
        self.scanned = 0;
        // The event being read and the last event id leave the old lines.
        self.keep_event();
        self.keep_last_event_id();
        self.lines = self.input.split_to(end).freeze();
        // Events share the text by 32-bit ranges: a larger one (fed in one piece) is not
        // shared, its events are copied.
        self.text = (u32::try_from(self.lines.len()).is_ok())
            .then(|| ByteString::try_from(self.lines.clone()).ok())
            .flatten();
        self.pos = 0;
        self.line_ends.reset(&self.lines);
        true
    }

    /// At the start of the stream: strips one BOM. False while `input` could still be the
    /// start of one.
    fn strip_bom(&mut self) -> bool {
        let n = self.input.len().min(BOM.len());
        if self.input[..n] != BOM[..n] {
            self.at_start = false;
        } else if n == BOM.len() {
            self.input.advance(n);
            self.at_start = false;
        }
        !self.at_start
    }

    /// Moves the fields read so far out of `lines`, which is about to be replaced: the data
    /// into `joined`, the type and id as slices of the old lines.
    fn keep_event(&mut self) {
        if let Data::Line = self.event.data {
            self.joined.clear();
            push_lossy(&mut self.joined, &self.lines[self.event.data_line.range()]);
            self.event.data = Data::Joined;
        }
        for field in [&mut self.event.event_type, &mut self.event.id] {
            if let Field::Span(span) = *field {
                *field = Field::Kept(self.lines.slice(span.range()));
            }
        }
    }

    /// Copies the last event id out of `lines`, which is about to be replaced (a short copy
    /// once per chunk, rather than keep the whole chunk alive for it).
    fn keep_last_event_id(&mut self) {
        if let LastId::Span(span) = self.last_event_id {
            let id = SharedStr::from_utf8_lossy(Bytes::copy_from_slice(&self.lines[span.range()]));
            self.last_event_id = LastId::Text(id);
        }
    }

    /// `input` holds part of a line only: wait for the rest, unless it is a comment or part
    /// of a skipped event, to drop as it streams by, or it already makes the event too large.
    fn partial_line(&mut self) -> Result<Option<Decoded>, DecodeError> {
        if self.input.is_empty() || self.at_start {
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
            Field::None => match &self.last_event_id {
                LastId::Span(span) => span.len(),
                LastId::Text(id) => id.len(),
            },
            field => field.len(),
        };
        self.event.data_len + self.event.event_type.len() + id
    }

    fn oversized(&mut self, skip: Skip) -> DecodeError {
        self.event = Fields::default();
        // Release a large joined buffer rather than keep it for the next event.
        self.joined = String::new();
        self.skipping = Some(skip);
        DecodeError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Moves past the CR, LF or CRLF at `end` in `lines`.
    fn consume_line_end(&mut self, end: usize) {
        let mut next = end + 1;
        if self.lines[end] == b'\r' {
            match self.lines.get(next) {
                Some(b'\n') => next += 1,
                Some(_) => {}
                None => self.pending_cr = true,
            }
        }
        self.pos = next;
    }

    /// Discards the line at `pos`, line end included.
    fn skip_line(&mut self) {
        let end = self.line_ends.find(&self.lines, self.pos);
        self.consume_line_end(end);
    }

    /// Discards a line of an oversized event; a blank line ends the skipping.
    fn skip_oversized(&mut self, skip: Skip) {
        if matches!(skip, Skip::AtLineStart) && matches!(self.lines[self.pos], b'\n' | b'\r') {
            self.consume_line_end(self.pos);
            self.skipping = None;
        } else {
            self.skip_line();
            self.skipping = Some(Skip::AtLineStart);
        }
    }

    /// Interprets the line `start..end` of `lines` (not blank: blank lines dispatch).
    fn process_line(&mut self, start: usize, end: usize) -> Option<Decoded> {
        let line = &self.lines[start..end];
        // Most lines of a stream are data lines: recognise them without a search.
        let (kind, mut value) = if line.starts_with(b"data:") {
            (Line::Data, 5)
        } else if line.starts_with(b"id:") {
            (Line::Id, 3)
        } else {
            match memchr::memchr(b':', line) {
                Some(0) => (Line::Comment, 1),
                Some(colon) => (Line::of(&line[..colon]), colon + 1),
                None => (Line::of(line), line.len()),
            }
        };
        if !matches!(kind, Line::Comment) && line.get(value) == Some(&b' ') {
            value += 1;
        }
        let span = Span {
            start: start + value,
            end,
        };
        match kind {
            Line::Data => self.push_data(span),
            Line::Event => self.event.event_type = Field::Span(span),
            Line::Id if !line[value..].contains(&0) => self.event.id = Field::Span(span),
            Line::Comment if self.report_comments && line.len() <= self.max_event_size => {
                let comment = String::from_utf8_lossy(&line[value..]).into_owned();
                return Some(Decoded::Comment(comment));
            }
            Line::Retry => {
                if let Some(retry) = parse_retry(&line[value..]) {
                    self.retry = Some(retry);
                    return Some(Decoded::Retry(retry));
                }
            }
            Line::Id | Line::Comment | Line::Ignored => {}
        }
        None
    }

    fn push_data(&mut self, span: Span) {
        self.event.data_len += span.len() + 1;
        match self.event.data {
            Data::None => {
                self.event.data = Data::Line;
                self.event.data_line = span;
            }
            Data::Line => {
                self.joined.clear();
                push_lossy(&mut self.joined, &self.lines[self.event.data_line.range()]);
                self.joined.push('\n');
                push_lossy(&mut self.joined, &self.lines[span.range()]);
                self.event.data = Data::Joined;
            }
            Data::Joined => {
                self.joined.push('\n');
                push_lossy(&mut self.joined, &self.lines[span.range()]);
            }
        }
    }
}

impl Field {
    fn len(&self) -> usize {
        match self {
            Self::None => 0,
            Self::Span(span) => span.len(),
            Self::Kept(bytes) => bytes.len(),
        }
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
mod tests;
