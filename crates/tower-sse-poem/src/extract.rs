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
/// [`get`](Self::get) is `None` when the client sent no id and when the id was invalid. To
/// resume from a [`Hub`](tower_sse::Hub), pass [`log_cursor`](Self::log_cursor), which turns
/// an invalid id into a cursor no log knows, so the client gets the gap signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LastEventId(ClientCursor);

impl LastEventId {
    /// The valid last event id, if the client sent one.
    pub fn get(&self) -> Option<&tower_sse::LastEventId> {
        self.0.last_event_id()
    }

    /// The valid last event id as a string, if the client sent one.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_str()
    }

    /// The cursor to pass to [`Hub::subscribe`](tower_sse::Hub::subscribe); see
    /// [`ClientCursor::log_cursor`].
    pub fn log_cursor(&self) -> Option<&str> {
        self.0.log_cursor()
    }

    /// What the request carried: absent, valid or invalid.
    pub fn cursor(&self) -> &ClientCursor {
        &self.0
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
