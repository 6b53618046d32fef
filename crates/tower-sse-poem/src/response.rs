//! [`HubStream`]: a [`Hub`](tower_sse::Hub) subscription as a poem response.

use futures_util::TryStreamExt;
use poem::{Body, IntoResponse, Response};
use tower_sse::Subscription;

/// A [`Subscription`] returned from a poem handler: `200 OK`,
/// `Content-Type: text/event-stream`, and the subscription's shared frames as the body, with
/// no re-encoding. Behind [`SseMiddleware`](crate::SseMiddleware) it gets heartbeats, headers
/// and shutdown like every event stream.
#[derive(Debug)]
pub struct HubStream(pub Subscription);

impl From<Subscription> for HubStream {
    fn from(subscription: Subscription) -> Self {
        Self(subscription)
    }
}

impl IntoResponse for HubStream {
    fn into_response(self) -> Response {
        let frames = self.0.map_err(std::io::Error::other);
        Response::builder()
            .content_type("text/event-stream")
            .body(Body::from_bytes_stream(frames))
    }
}
