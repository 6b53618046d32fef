//! [`MessageEvent`]: a dispatched event, one shared text buffer and the ranges of its fields.

use std::{fmt, ops::Range};

use bytestring::ByteString;

use super::SharedStr;

/// A dispatched event, as a browser's `MessageEvent` would see it: its type, its data and the
/// stream's last event id, read with [`event_type`](Self::event_type), [`data`](Self::data)
/// and [`last_event_id`](Self::last_event_id).
///
/// An event holds one shared handle on the text the decoder read it from (usually the whole
/// input chunk the event came in, checked as UTF-8 once for all the events in it), and its
/// fields are ranges of that text: handing an event out costs one reference count, not a copy
/// or an allocation per field. Holding an event keeps that chunk alive (a few KiB of the
/// stream); to keep one field for long, copy it out (`event.data().to_owned()`) or take it
/// alone with [`shared_data`](Self::shared_data). The last event id, when it came in an
/// earlier chunk, is a second handle.
///
/// ```
/// use tower_sse_core::MessageEvent;
///
/// let event = MessageEvent::new("greet", "hello", "7");
/// assert_eq!((event.event_type(), event.data(), event.last_event_id()), ("greet", "hello", "7"));
/// ```
#[derive(Clone)]
pub struct MessageEvent {
    // 80 bytes: events are moved through `decode`, `Option`, `Result` and `Poll`, so they
    // are kept small (ranges of 32 bits; a text is at most 4 GiB, see `MAX_EVENT_SIZE_CAP`).
    text: ByteString,
    /// `TextRange::MESSAGE`: the default type, `message`.
    event_type: TextRange,
    data: TextRange,
    last_event_id: EventId,
}

/// Where an event's last event id is.
#[derive(Clone)]
pub(super) enum EventId {
    /// In the event's own text.
    Range(TextRange),
    /// Elsewhere: it came in an earlier chunk, or was preset.
    Shared(SharedStr),
}

/// A byte range of an event's text.
#[derive(Clone, Copy)]
pub(super) struct TextRange {
    start: u32,
    end: u32,
}

impl TextRange {
    pub(super) const EMPTY: Self = Self { start: 0, end: 0 };
    /// Not a range: the type `message`.
    const MESSAGE: Self = Self {
        start: u32::MAX,
        end: u32::MAX,
    };

    /// `span` of a text of at most `u32::MAX` bytes (the decoder shares only such texts and
    /// builds only such texts, the maximum event size being capped).
    pub(super) fn of(span: Span) -> Self {
        debug_assert!(u32::try_from(span.end).is_ok(), "text over 4 GiB");
        let narrow = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            start: narrow(span.start),
            end: narrow(span.end),
        }
    }

    fn range(self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A byte range of a decoder's input, or of an event's text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Span {
    pub(super) fn range(self) -> Range<usize> {
        self.start..self.end
    }

    pub(super) fn len(self) -> usize {
        self.end - self.start
    }
}

impl MessageEvent {
    /// An event with these fields, in one new buffer. `event_type` is kept as given (the
    /// decoder itself turns a missing or empty type into `message`).
    ///
    /// # Panics
    ///
    /// If the three fields together are 4 GiB or more.
    #[must_use]
    pub fn new(event_type: &str, data: &str, last_event_id: &str) -> Self {
        let total = data.len() + event_type.len() + last_event_id.len();
        assert!(u32::try_from(total).is_ok(), "an event of 4 GiB or more");
        let mut text = String::with_capacity(total);
        let data = push(&mut text, data);
        let event_type = Some(push(&mut text, event_type));
        let last_event_id = EventId::Range(TextRange::of(push(&mut text, last_event_id)));
        Self::from_parts(ByteString::from(text), event_type, data, last_event_id)
    }

    /// An event of `text` (spans of it; the caller guarantees they are in bounds and on
    /// character boundaries, as the decoder's fields are: they start and end next to ASCII
    /// bytes or at the ends of the text, of at most `u32::MAX` bytes). `None`: `message`.
    pub(super) fn from_parts(
        text: ByteString,
        event_type: Option<Span>,
        data: Span,
        last_event_id: EventId,
    ) -> Self {
        Self {
            text,
            event_type: event_type.map_or(TextRange::MESSAGE, TextRange::of),
            data: TextRange::of(data),
            last_event_id,
        }
    }

    /// The event type: the last `event` field, or `message` when none or empty.
    #[must_use]
    pub fn event_type(&self) -> &str {
        if self.event_type.start == u32::MAX {
            "message"
        } else {
            &self.text[self.event_type.range()]
        }
    }

    /// The `data` lines, joined by LF.
    #[must_use]
    pub fn data(&self) -> &str {
        &self.text[self.data.range()]
    }

    /// The stream's last event id when the event was dispatched (ids carry over from event
    /// to event).
    #[must_use]
    pub fn last_event_id(&self) -> &str {
        match &self.last_event_id {
            EventId::Range(range) => &self.text[range.range()],
            EventId::Shared(id) => id,
        }
    }

    /// The data as a [`SharedStr`] of its own: a reference count on the same buffer, no
    /// copy. For a consumer that keeps the data and drops the rest of the event.
    #[must_use]
    pub fn shared_data(&self) -> SharedStr {
        SharedStr::from_text(self.text.slice_ref(self.data()))
    }
}

/// Appends `s` to `text` and returns where it is.
fn push(text: &mut String, s: &str) -> Span {
    let start = text.len();
    text.push_str(s);
    Span {
        start,
        end: text.len(),
    }
}

impl PartialEq for MessageEvent {
    fn eq(&self, other: &Self) -> bool {
        self.data() == other.data()
            && self.event_type() == other.event_type()
            && self.last_event_id() == other.last_event_id()
    }
}

impl Eq for MessageEvent {}

impl fmt::Debug for MessageEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageEvent")
            .field("event_type", &self.event_type())
            .field("data", &self.data())
            .field("last_event_id", &self.last_event_id())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_keeps_each_field_and_compares_by_value() {
        let event = MessageEvent::new("", "a\nb", "é1");
        assert_eq!(
            (event.event_type(), event.data(), event.last_event_id()),
            ("", "a\nb", "é1")
        );
        assert_eq!(event, MessageEvent::new("", "a\nb", "é1"));
        assert_ne!(event, MessageEvent::new("x", "a\nb", "é1"));
        assert_eq!(
            format!("{event:?}"),
            r#"MessageEvent { event_type: "", data: "a\nb", last_event_id: "é1" }"#
        );
    }

    #[test]
    fn an_event_is_small() {
        assert_eq!(std::mem::size_of::<MessageEvent>(), 80);
    }

    #[test]
    fn shared_data_is_the_same_bytes() {
        let event = MessageEvent::new("t", "payload", "");
        let data = event.shared_data();
        assert_eq!(data, "payload");
        assert_eq!(data.as_ptr(), event.data().as_ptr());
    }
}
