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
/// [`get`](Self::get) is `None` when the client sent no id and when the id was invalid (not
/// UTF-8, containing NUL, CR or LF, or too long); an invalid value never becomes a rejection.
/// To resume from a [`Hub`](tower_sse::Hub), pass [`log_cursor`](Self::log_cursor): it also
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

    /// The valid last event id, if any.
    pub fn into_inner(self) -> Option<tower_sse::LastEventId> {
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
