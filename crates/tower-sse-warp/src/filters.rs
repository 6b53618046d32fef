//! [`last_event_id`] and [`client_cursor`]: where a reconnecting client resumes from.

use std::convert::Infallible;

use http::HeaderMap;
use tower_sse::{
    ClientCursor, DEFAULT_LAST_EVENT_ID_QUERY, DEFAULT_MAX_LAST_EVENT_ID_LEN, ValidLastEventId,
};
use warp::Filter;

/// The [`ClientCursor`] of the request; never rejects.
///
/// Behind [`SseLayer`](tower_sse::SseLayer) (as with [`serve`](crate::serve)) it is the
/// cursor the layer parsed, with the layer's settings. Without the layer the filter parses the
/// `Last-Event-ID` header, else the `lastEventId` query parameter, at most
/// [`DEFAULT_MAX_LAST_EVENT_ID_LEN`] bytes. Pass
/// [`log_cursor`](ClientCursor::log_cursor) to [`Hub::subscribe`](tower_sse::Hub::subscribe):
/// an invalid id then gets the gap signal, so the client refetches its state.
pub fn client_cursor() -> impl Filter<Extract = (ClientCursor,), Error = Infallible> + Clone {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::ext::optional::<ClientCursor>()
        .and(warp::header::headers_cloned())
        .and(query)
        .map(
            |cursor: Option<ClientCursor>, headers: HeaderMap, query: Option<String>| {
                // The layer inserts the cursor whenever the request carries one.
                cursor.unwrap_or_else(|| parse(&headers, query.as_deref()))
            },
        )
}

/// The client's valid last event id, `None` when absent or invalid; never rejects.
///
/// See [`client_cursor`] for where it is read from.
pub fn last_event_id()
-> impl Filter<Extract = (Option<ValidLastEventId>,), Error = Infallible> + Clone {
    client_cursor().map(|cursor: ClientCursor| cursor.last_event_id().cloned())
}

fn parse(headers: &HeaderMap, query: Option<&str>) -> ClientCursor {
    ClientCursor::from_headers_and_query(
        headers,
        query,
        Some(DEFAULT_LAST_EVENT_ID_QUERY),
        DEFAULT_MAX_LAST_EVENT_ID_LEN,
    )
}
