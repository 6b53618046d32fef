//! [`HubRejection`]: a refused or failed subscribe or publish as an axum response.

use std::fmt;

use axum::{
    http::{StatusCode, header::CONTENT_TYPE},
    response::{IntoResponse, Response},
};
use tower_sse::HubError;

/// A [`HubError`] as a response: `400` for an invalid topic or too many, `403` for a topic
/// the hub's [`Authorizer`](tower_sse::Authorizer) denied, `503` for the log; the message as
/// `text/plain`. Made with `?` from a `HubError`.
///
/// Handlers pass the request head to the hub ([`Hub::subscribe_request`](tower_sse::Hub::subscribe_request));
/// axum extracts it as [`Parts`](axum::http::request::Parts):
///
/// ```
/// use axum::{extract::{RawQuery, State}, http::request::Parts};
/// use tower_sse_axum::{Hub, HubRejection, HubStream, LastEventId, query_topics};
///
/// async fn events(
///     State(hub): State<Hub>,
///     last: LastEventId,
///     head: Parts,
/// ) -> Result<HubStream, HubRejection> {
///     let topics = query_topics(head.uri.query(), "topic", 64);
///     let topics = topics.iter().map(String::as_str);
///     Ok(HubStream(hub.subscribe_request(&head, topics, last.log_cursor()).await?))
/// }
/// # let _: axum::Router<Hub> = axum::Router::new().route("/", axum::routing::get(events));
/// ```
#[derive(Debug)]
pub struct HubRejection {
    status: StatusCode,
    message: String,
}

impl HubRejection {
    /// The status the response carries.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl fmt::Display for HubRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: fmt::Display> From<HubError<E>> for HubRejection {
    fn from(error: HubError<E>) -> Self {
        Self {
            status: error.status(),
            message: error.to_string(),
        }
    }
}

impl IntoResponse for HubRejection {
    fn into_response(self) -> Response {
        let mut message = self.message;
        message.push('\n');
        (
            self.status,
            [(CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response()
    }
}
