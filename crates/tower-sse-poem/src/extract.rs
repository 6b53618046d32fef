//! [`LastEventId`]: the optional extractor for the position a client resumes from.

use poem::{FromRequest, Request, RequestBody};
use tower_sse::ClientCursor;

/// The last event id a reconnecting client sent, as an extractor that never rejects.
///
/// Behind [`SseMiddleware`](crate::SseMiddleware) it is the [`ClientCursor`] the layer parsed,
/// with the layer's settings; without it the request is parsed here with the defaults (the
/// `Last-Event-ID` header, else the `lastEventId` query parameter, at most
/// [`DEFAULT_MAX_LAST_EVENT_ID_LEN`](tower_sse::DEFAULT_MAX_LAST_EVENT_ID_LEN) bytes).
///
/// [`as_str`](ClientCursor::as_str) is `None` when the client sent no id and when the id was invalid. To
/// resume from a [`Hub`](tower_sse::Hub), pass [`log_cursor`](ClientCursor::log_cursor), which turns
/// an invalid id into a cursor no log knows, so the client gets the gap signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastEventId(ClientCursor);

/// The extractor is the [`ClientCursor`] it read: `last.as_str()`, `last.last_event_id()` and
/// `last.log_cursor()` are [`ClientCursor`]'s.
impl std::ops::Deref for LastEventId {
    type Target = ClientCursor;

    fn deref(&self) -> &ClientCursor {
        &self.0
    }
}

impl LastEventId {
    /// The valid last event id, if any.
    pub fn into_inner(self) -> Option<tower_sse::ValidLastEventId> {
        match self.0 {
            ClientCursor::Valid(id) => Some(id),
            _ => None,
        }
    }
}

impl From<ClientCursor> for LastEventId {
    fn from(cursor: ClientCursor) -> Self {
        Self(cursor)
    }
}

impl<'a> FromRequest<'a> for LastEventId {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let cursor = ClientCursor::from_request(req.extensions(), req.headers(), req.uri());
        Ok(Self(cursor))
    }
}
