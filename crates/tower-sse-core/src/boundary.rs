//! [`FrameBoundary`]: where in an event stream a byte sequence has left off.

/// Where a stream stands after the bytes seen so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Position {
    /// Between events: nothing of a pending event has been written, so a heartbeat or a whole
    /// event can be inserted here without changing what the client dispatches.
    BetweenEvents,
    /// Inside an event, at the start of a line: a field line may follow, but a blank line
    /// would dispatch the half-built event.
    LineStart,
    /// In the middle of a line.
    MidLine,
}

/// Follows the bytes of an event stream passing by and tells whether it sits between events.
///
/// A heartbeat (`:\n\n`) inserted in the middle of an event would end it early: the blank line
/// dispatches whatever fields were already sent. Wrap a body you did not produce in a tracker,
/// [`observe`](Self::observe) every byte written to the client (including inserted frames),
/// and insert only when [`position`](Self::position) is [`Position::BetweenEvents`].
///
/// Comment lines do not open an event: after `:note\n` the stream is still between events,
/// because a blank line then dispatches nothing.
///
/// The tracker keeps three small fields and never buffers; it jumps from line end to line end
/// with `memchr`, so its cost is a few instructions per line.
///
/// # Example
///
/// ```
/// use tower_sse_core::{FrameBoundary, Position};
///
/// let mut tracker = FrameBoundary::new();
/// assert_eq!(tracker.position(), Position::BetweenEvents);
/// tracker.observe(b"event: update\ndata: {\"a\":");
/// assert_eq!(tracker.position(), Position::MidLine);
/// tracker.observe(b"1}\n");
/// assert_eq!(tracker.position(), Position::LineStart);
/// tracker.observe(b"\n");
/// assert!(tracker.is_between_events());
/// ```
#[derive(Clone, Debug, Default)]
pub struct FrameBoundary {
    mid_line: bool,
    in_event: bool,
    /// The last byte seen was a CR ending a line: an LF right after it belongs to that break.
    pending_cr: bool,
    /// Blank lines that ended a block holding at least one field.
    events: u64,
}

impl FrameBoundary {
    /// A tracker at the start of a stream (between events).
    #[must_use]
    pub const fn new() -> Self {
        Self {
            mid_line: false,
            in_event: false,
            pending_cr: false,
            events: 0,
        }
    }

    /// How many events the bytes observed so far have ended: blank lines that closed a block
    /// holding at least one field line (comments alone do not count, so heartbeats never do).
    ///
    /// A block with a `retry` or `id` field and no `data` counts too, although a client
    /// dispatches nothing for it: the count is of blocks on the wire, for metrics.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Where the stream stands after everything observed so far.
    pub fn position(&self) -> Position {
        if self.mid_line {
            Position::MidLine
        } else if self.in_event {
            Position::LineStart
        } else {
            Position::BetweenEvents
        }
    }

    /// Whether a heartbeat or a whole event may be inserted now.
    pub fn is_between_events(&self) -> bool {
        !self.mid_line && !self.in_event
    }

    /// Advances over `bytes`, the next bytes of the stream.
    pub fn observe(&mut self, mut bytes: &[u8]) {
        while let Some((&first, rest)) = bytes.split_first() {
            if self.pending_cr {
                self.pending_cr = false;
                if first == b'\n' {
                    bytes = rest;
                    continue;
                }
            }
            if !self.mid_line {
                match first {
                    // A blank line: dispatches (or discards) whatever the event held.
                    b'\n' | b'\r' => {
                        self.events += u64::from(self.in_event);
                        self.in_event = false;
                        self.pending_cr = first == b'\r';
                        bytes = rest;
                        continue;
                    }
                    b':' => {}
                    _ => self.in_event = true,
                }
                self.mid_line = true;
            }
            match memchr::memchr2(b'\n', b'\r', bytes) {
                Some(end) => {
                    self.mid_line = false;
                    self.pending_cr = bytes[end] == b'\r';
                    bytes = &bytes[end + 1..];
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(chunks: &[&[u8]]) -> Position {
        let mut t = FrameBoundary::new();
        for c in chunks {
            t.observe(c);
        }
        t.position()
    }

    #[test]
    fn whole_events_leave_it_between() {
        assert_eq!(after(&[b"data: a\n\n"]), Position::BetweenEvents);
        assert_eq!(after(&[b"data: a\r\n\r\n"]), Position::BetweenEvents);
        assert_eq!(after(&[b"data: a\r\r"]), Position::BetweenEvents);
        assert_eq!(after(&[b"data: a\n\ndata: b\n\n"]), Position::BetweenEvents);
    }

    #[test]
    fn partial_events() {
        assert_eq!(after(&[b"data: a\n"]), Position::LineStart);
        assert_eq!(after(&[b"data: a"]), Position::MidLine);
        assert_eq!(after(&[b"data: a\n\nid"]), Position::MidLine);
        assert_eq!(after(&[b"data: a\r\n"]), Position::LineStart);
        assert_eq!(after(&[b"data: a\r"]), Position::LineStart);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_break() {
        // "\r" then "\n": one line end, the event is still open.
        assert_eq!(after(&[b"data: a\r", b"\n"]), Position::LineStart);
        assert_eq!(
            after(&[b"data: a\r", b"\n", b"\r", b"\n"]),
            Position::BetweenEvents
        );
        // "\r" then "\r": a blank line.
        assert_eq!(after(&[b"data: a\r", b"\r"]), Position::BetweenEvents);
    }

    #[test]
    fn comments_do_not_open_an_event() {
        assert_eq!(after(&[b":hello\n"]), Position::BetweenEvents);
        assert_eq!(after(&[b":hel"]), Position::MidLine);
        assert_eq!(after(&[b"data: x\n:note\n"]), Position::LineStart);
    }

    #[test]
    fn events_are_counted_at_their_blank_line() {
        let mut t = FrameBoundary::new();
        t.observe(b":\n\n:hb\n\n");
        assert_eq!(t.events(), 0, "comments are not events");
        t.observe(b"data: a\n\ndata: b\r\n\r");
        assert_eq!(t.events(), 2);
        t.observe(b"\n\ndata: c\n");
        assert_eq!(
            t.events(),
            2,
            "the LF of a CRLF and a lone blank line end nothing"
        );
        t.observe(b"\n");
        assert_eq!(t.events(), 3);
    }

    #[test]
    fn one_byte_at_a_time_matches_whole() {
        let stream = b"id: 1\r\nevent: e\rdata: a\n\r\n:c\r\ndata: b\r\r";
        for cut in 0..=stream.len() {
            let mut whole = FrameBoundary::new();
            whole.observe(&stream[..cut]);
            let mut bytewise = FrameBoundary::new();
            for b in &stream[..cut] {
                bytewise.observe(std::slice::from_ref(b));
            }
            assert_eq!(whole.position(), bytewise.position(), "cut at {cut}");
            assert_eq!(whole.events(), bytewise.events(), "cut at {cut}");
        }
    }
}
