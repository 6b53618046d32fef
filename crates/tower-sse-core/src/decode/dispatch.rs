//! Dispatch: the event read so far becomes a [`MessageEvent`], sharing the chunk's text or,
//! when it cannot, in a text of its own.

use std::mem;

use bytes::Bytes;
use bytestring::ByteString;

use super::{
    Data, DecodeError, Decoded, Decoder, Field, LastId, MessageEvent, SharedStr,
    message::{EventId, Span, TextRange},
};

impl Decoder {
    /// Ends the event being read at a blank line.
    ///
    /// # Errors
    ///
    /// When the event is over the limit once decoded: its size was counted in input bytes,
    /// and invalid UTF-8 is decoded with replacement characters (three bytes for each invalid
    /// byte). Its blank line is consumed: nothing to skip.
    #[inline] // one caller, `decode`, in another module (codegen unit)
    pub(super) fn dispatch(&mut self) -> Result<Option<Decoded>, DecodeError> {
        // Fields are read in place and reset, not moved out: moving these enums whole made
        // the CPU reload what it had just stored piecewise (store-forwarding stalls).
        match &self.event.id {
            Field::None => {}
            &Field::Span(span) if self.text.is_some() => self.last_event_id = LastId::Span(span),
            &Field::Span(span) => {
                let id = Bytes::copy_from_slice(&self.lines[span.range()]);
                self.last_event_id = LastId::Text(SharedStr::from_utf8_lossy(id));
            }
            Field::Kept(id) => {
                self.last_event_id = LastId::Text(SharedStr::from_utf8_lossy(id.clone()));
            }
        }
        self.event.id = Field::None;
        self.event.data_len = 0;
        let data = self.event.data;
        self.event.data = Data::None;
        // `Some` when the type is in `lines` (or is `message`).
        let shared_type = match &self.event.event_type {
            Field::None => Some(None),
            &Field::Span(span) => Some((span.len() > 0).then_some(span)),
            Field::Kept(_) => None,
        };
        match (data, &self.text, shared_type) {
            (Data::None, ..) => {
                self.event.event_type = Field::None;
                Ok(None)
            }
            // The usual event: every field in `text`, which the event shares.
            (Data::Line, Some(text), Some(event_type)) => {
                self.event.event_type = Field::None;
                let last_event_id = match &self.last_event_id {
                    LastId::Span(span) => EventId::Range(TextRange::of(*span)),
                    LastId::Text(id) if id.is_empty() => EventId::Range(TextRange::EMPTY),
                    LastId::Text(id) => EventId::Shared(id.clone()),
                };
                // Valid UTF-8, so no larger than the input bytes counted.
                Ok(Some(Decoded::Event(MessageEvent::from_parts(
                    text.clone(),
                    event_type,
                    self.event.data_line,
                    last_event_id,
                ))))
            }
            _ => {
                let event_type = mem::take(&mut self.event.event_type);
                let event = self.event_of_its_own(data, event_type);
                if event.data().len() > self.max_event_size {
                    return Err(DecodeError::EventTooLarge {
                        limit: self.max_event_size,
                    });
                }
                Ok(Some(Decoded::Event(event)))
            }
        }
    }

    /// The event being dispatched, in a text of its own: its data (from `joined`, or decoded
    /// into it), then its type and last event id.
    #[cold]
    fn event_of_its_own(&mut self, data: Data, event_type: Field) -> MessageEvent {
        if let Data::Line = data {
            self.joined.clear();
            push_lossy(&mut self.joined, &self.lines[self.event.data_line.range()]);
        }
        let mut text = mem::take(&mut self.joined);
        let data = Span {
            start: 0,
            end: text.len(),
        };
        let event_type = match &event_type {
            Field::Span(span) => &self.lines[span.range()],
            Field::Kept(bytes) => bytes,
            Field::None => &[][..],
        };
        let event_type = (!event_type.is_empty()).then(|| {
            let start = text.len();
            push_lossy(&mut text, event_type);
            Span {
                start,
                end: text.len(),
            }
        });
        let last_event_id = match &self.last_event_id {
            LastId::Span(span) => {
                let start = text.len();
                push_lossy(&mut text, &self.lines[span.range()]);
                EventId::Range(TextRange::of(Span {
                    start,
                    end: text.len(),
                }))
            }
            LastId::Text(id) if id.is_empty() => EventId::Range(TextRange::EMPTY),
            LastId::Text(id) => EventId::Shared(id.clone()),
        };
        MessageEvent::from_parts(ByteString::from(text), event_type, data, last_event_id)
    }
}

/// Appends `bytes` decoded as UTF-8 with replacement, as the event-stream format requires.
pub(super) fn push_lossy(text: &mut String, bytes: &[u8]) {
    text.push_str(&String::from_utf8_lossy(bytes));
}
