//! [`HubRejection`] and [`request_head`]: what a poem handler needs for topic subscriptions.

use std::fmt;

use poem::{Request, error::ResponseError, http::StatusCode};
use tower_sse::HubError;

/// A [`HubError`] as a poem error: `400` for an invalid topic or too many, `403` for a topic
/// the hub's [`Authorizer`](tower_sse::Authorizer) denied, `503` for the log, with the
/// message as the body. Made with `?` from a `HubError`.
///
/// ```
/// use poem::{Request, handler, web::Data};
/// use tower_sse_poem::{Hub, HubRejection, HubStream, LastEventId, query_topics, request_head};
///
/// #[handler]
/// async fn events(hub: Data<&Hub>, last: LastEventId, req: &Request) -> poem::Result<HubStream> {
///     let head = request_head(req);
///     let topics = query_topics(req.uri().query(), "topic", 64);
///     let topics = topics.iter().map(String::as_str);
///     let subscription = hub.subscribe_request(&head, topics, last.log_cursor()).await;
///     Ok(HubStream(subscription.map_err(HubRejection::from)?))
/// }
/// ```
#[derive(Debug)]
pub struct HubRejection {
    status: StatusCode,
    message: String,
}

impl fmt::Display for HubRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HubRejection {}

impl ResponseError for HubRejection {
    fn status(&self) -> StatusCode {
        self.status
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

/// The request head (method, URI, version, headers) as `http` parts, for
/// [`Hub::subscribe_request`](tower_sse::Hub::subscribe_request) and the
/// [`Authorize`](tower_sse::Authorize) hook. Extensions are not copied.
pub fn request_head(req: &Request) -> http::request::Parts {
    let mut head = http::Request::new(()).into_parts().0;
    head.method = req.method().clone();
    head.uri = req.uri().clone();
    head.version = req.version();
    head.headers = req.headers().clone();
    head
}
