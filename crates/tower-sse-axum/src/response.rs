//! [`HubStream`]: a [`Hub`](tower_sse::Hub) subscription as an axum response.

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use tower_sse::Subscription;

/// A [`Subscription`] returned from an axum handler: `200 OK`,
/// `Content-Type: text/event-stream`, and the subscription's shared frames as the body, with
/// no re-encoding.
///
/// Behind [`SseLayer`](tower_sse::SseLayer) it gets heartbeats, headers and shutdown like
/// every event stream. Build it with `HubStream(subscription)` or `subscription.into()`.
///
/// ```
/// use axum::{extract::State, http::StatusCode};
/// use tower_sse_axum::{Hub, HubStream, LastEventId};
///
/// async fn events(State(hub): State<Hub>, last: LastEventId) -> Result<HubStream, StatusCode> {
///     let subscription = hub.subscribe("news", last.log_cursor()).await;
///     subscription.map(HubStream).map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
/// }
/// # let _: axum::Router<Hub> = axum::Router::new().route("/", axum::routing::get(events));
/// ```
#[derive(Debug)]
pub struct HubStream(pub Subscription);

impl From<Subscription> for HubStream {
    fn from(subscription: Subscription) -> Self {
        Self(subscription)
    }
}

impl IntoResponse for HubStream {
    fn into_response(self) -> Response {
        self.0.into_response().map(Body::new)
    }
}
