//! [`LastEventId`]: the optional extractor for the position a client resumes from.

use std::convert::Infallible;

use axum::{extract::FromRequestParts, http::request::Parts};
use tower_sse::ClientCursor;

/// The last event id a reconnecting client sent, as an extractor that never rejects.
///
/// It reads the [`ClientCursor`] that [`SseLayer`](tower_sse::SseLayer) stores in the request
/// extensions, so the layer's settings (query parameter name, length limit) apply. Without the
/// layer it parses the request itself with the defaults: the `Last-Event-ID` header, else the
/// `lastEventId` query parameter, at most
/// [`DEFAULT_MAX_LAST_EVENT_ID_LEN`](tower_sse::DEFAULT_MAX_LAST_EVENT_ID_LEN) bytes.
///
/// [`as_str`](ClientCursor::as_str) is `None` when the client sent no id and when the id was invalid (not
/// UTF-8, containing NUL, CR or LF, or too long); an invalid value never becomes a rejection.
/// To resume from a [`Hub`](tower_sse::Hub), pass [`log_cursor`](ClientCursor::log_cursor): it also
/// turns an invalid id into a cursor that no log knows, so the client gets the gap signal
/// and refetches its state instead of silently missing events.
///
/// ```
/// use tower_sse_axum::LastEventId;
///
/// async fn events(last: LastEventId) -> String {
///     match last.as_str() {
///         Some(id) => format!("resuming after {id}"),
///         None => "starting fresh".to_owned(),
///     }
/// }
/// # let _: axum::Router = axum::Router::new().route("/", axum::routing::get(events));
/// ```
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

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let cursor = ClientCursor::from_request(&parts.extensions, &parts.headers, &parts.uri);
        Ok(Self(cursor))
    }
}
