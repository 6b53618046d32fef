//! [`Decoder`]: an incremental event-stream parser.
//!
//! Implements the WHATWG HTML Living Standard,
//! [Interpreting an event stream](https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).

use std::{borrow::Cow, fmt, mem, time::Duration};

use bytes::{Buf, BytesMut};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The default [`Decoder::max_event_size`]: 1 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1 << 20;

/// A dispatched event, as a browser's `MessageEvent` would see it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageEvent {
    /// The event type: the last `event` field, or `message` when none or empty.
    pub event_type: String,
    /// The `data` lines joined by LF.
    pub data: String,
    /// The stream's last event id when the event was dispatched (ids carry over).
    pub last_event_id: String,
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
    data: String,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
    retry: Option<Duration>,
}

#[derive(Clone, Copy, Debug)]
enum Skip {
    AtLineStart,
    MidLine,
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
            input: BytesMut::new(),
            scanned: 0,
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            report_comments: false,
            at_start: true,
            pending_cr: false,
            in_comment: false,
            skipping: None,
            data: String::new(),
            event_type: String::new(),
            id_buffer: String::new(),
            last_event_id: String::new(),
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
        self.last_event_id.clear();
        self.last_event_id.push_str(id);
        self.id_buffer.clone_from(&self.last_event_id);
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
        self.input.extend_from_slice(chunk);
    }

    /// Ends the stream: input that did not end in a blank line is discarded, as browsers do.
    /// The decoder is then at the start of a new stream; the last event id and reconnection
    /// time are kept, as they are across an `EventSource` reconnection.
    pub fn finish(&mut self) {
        self.input.clear();
        self.scanned = 0;
        self.at_start = true;
        self.pending_cr = false;
        self.in_comment = false;
        self.skipping = None;
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
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
            if self.pending_cr {
                match self.input.first() {
                    None => return Ok(None),
                    Some(b'\n') => self.input.advance(1),
                    Some(_) => {}
                }
                self.pending_cr = false;
            }
            if let Some(skip) = self.skipping {
                if !self.skip_oversized(skip) {
                    return Ok(None);
                }
                continue;
            }
            if self.in_comment {
                if !self.skip_line() {
                    return Ok(None);
                }
                self.in_comment = false;
                continue;
            }
            let found = memchr::memchr2(b'\n', b'\r', &self.input[self.scanned..]);
            let Some(end) = found.map(|i| i + self.scanned) else {
                self.scanned = self.input.len();
                let comment = self.input.first() == Some(&b':');
                if comment && (!self.report_comments || self.input.len() > self.max_event_size) {
                    self.input.clear();
                    self.scanned = 0;
                    self.in_comment = true;
                    return Ok(None);
                }
                if !comment && self.buffered() + self.input.len() > self.max_event_size {
                    self.input.clear();
                    self.scanned = 0;
                    return Err(self.oversized(Skip::MidLine));
                }
                return Ok(None);
            };
            self.scanned = 0;
            // The line is read in place (no `split_to`: no refcounted handle per line).
            let input = mem::take(&mut self.input);
            let item = self.process_line(&input[..end]);
            self.input = input;
            self.input.advance(end);
            self.consume_line_end();
            if let Some(item) = item {
                return Ok(Some(item));
            }
            if self.buffered() > self.max_event_size {
                return Err(self.oversized(Skip::AtLineStart));
            }
        }
    }

    fn buffered(&self) -> usize {
        self.data.len() + self.event_type.len() + self.id_buffer.len()
    }

    fn oversized(&mut self, skip: Skip) -> DecodeError {
        self.data.clear();
        self.event_type.clear();
        self.id_buffer.clone_from(&self.last_event_id);
        self.skipping = Some(skip);
        DecodeError::EventTooLarge {
            limit: self.max_event_size,
        }
    }

    /// Consumes the CR, LF or CRLF at the front of the input.
    fn consume_line_end(&mut self) {
        let cr = self.input[0] == b'\r';
        self.input.advance(1);
        if cr {
            match self.input.first() {
                Some(b'\n') => self.input.advance(1),
                Some(_) => {}
                None => self.pending_cr = true,
            }
        }
    }

    /// Discards up to and including the next line end; false if the input ran out first.
    fn skip_line(&mut self) -> bool {
        match memchr::memchr2(b'\n', b'\r', &self.input) {
            Some(end) => {
                self.input.advance(end);
                self.consume_line_end();
                true
            }
            None => {
                self.input.clear();
                false
            }
        }
    }

    /// Discards lines until a blank one; false if the input ran out first.
    fn skip_oversized(&mut self, skip: Skip) -> bool {
        match (skip, self.input.first()) {
            (_, None) => false,
            (Skip::AtLineStart, Some(b'\n' | b'\r')) => {
                self.consume_line_end();
                self.skipping = None;
                true
            }
            _ => {
                let done = self.skip_line();
                self.skipping = Some(if done {
                    Skip::AtLineStart
                } else {
                    Skip::MidLine
                });
                true
            }
        }
    }

    fn process_line(&mut self, line: &[u8]) -> Option<Decoded> {
        let (name, value) = match memchr::memchr(b':', line) {
            None if line.is_empty() => return self.dispatch(),
            Some(0) if self.report_comments && line.len() <= self.max_event_size => {
                return Some(Decoded::Comment(
                    String::from_utf8_lossy(&line[1..]).into_owned(),
                ));
            }
            Some(0) => return None, // a comment
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"event" => replace(&mut self.event_type, value),
            b"data" => {
                self.data.push_str(&String::from_utf8_lossy(value));
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => replace(&mut self.id_buffer, value),
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                // Digits only, so the only failure is overflow: saturate.
                let millis = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX);
                let retry = Duration::from_millis(millis);
                self.retry = Some(retry);
                return Some(Decoded::Retry(retry));
            }
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Decoded> {
        if self.last_event_id != self.id_buffer {
            self.last_event_id.clone_from(&self.id_buffer);
        }
        if self.data.is_empty() {
            self.event_type.clear();
            return None;
        }
        self.data.pop(); // the trailing LF
        let event_type = if self.event_type.is_empty() {
            String::from("message")
        } else {
            mem::take(&mut self.event_type)
        };
        Some(Decoded::Event(MessageEvent {
            event_type,
            data: mem::take(&mut self.data),
            last_event_id: self.last_event_id.clone(),
        }))
    }
}

fn replace(buffer: &mut String, value: &[u8]) {
    buffer.clear();
    match String::from_utf8_lossy(value) {
        Cow::Borrowed(s) => buffer.push_str(s),
        Cow::Owned(s) => *buffer = s,
    }
}
