//! [`HubRejection`] and [`request_head`]: what a warp filter needs for topic subscriptions.

use std::{convert::Infallible, fmt};

use http::{HeaderMap, Method, StatusCode, Uri, request::Parts};
use tower_sse::HubError;
use warp::{Filter, Reply, path::FullPath};

/// A [`HubError`] as a warp reply: `400` for an invalid topic or too many, `403` for a topic
/// the hub's [`Authorizer`](tower_sse::Authorizer) denied, `503` for the log, with the
/// message as the body.
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

impl<E: fmt::Display> From<HubError<E>> for HubRejection {
    fn from(error: HubError<E>) -> Self {
        Self {
            status: error.status(),
            message: error.to_string(),
        }
    }
}

impl Reply for HubRejection {
    fn into_response(self) -> warp::reply::Response {
        let mut message = self.message;
        message.push('\n');
        warp::reply::with_status(message, self.status).into_response()
    }
}

/// A filter that extracts the request head (method, path and query, headers) as `http`
/// parts, for [`Hub::subscribe_request`](tower_sse::Hub::subscribe_request) and the
/// [`Authorize`](tower_sse::Authorize) hook. Never rejects.
///
/// ```
/// use tower_sse_warp::{ClientCursor, EventStream, Hub, HubRejection, query_topics, warp::{self, Filter, Reply}};
///
/// let hub = Hub::new();
/// let events = warp::path!("events")
///     .and(tower_sse_warp::client_cursor())
///     .and(tower_sse_warp::request_head())
///     .then(move |cursor: ClientCursor, head: http::request::Parts| {
///         let hub = hub.clone();
///         async move {
///             let topics = query_topics(head.uri.query(), "topic", 64);
///             let topics = topics.iter().map(String::as_str);
///             match hub.subscribe_request(&head, topics, cursor.log_cursor()).await {
///                 Ok(subscription) => EventStream::from(subscription).into_response(),
///                 Err(error) => HubRejection::from(error).into_response(),
///             }
///         }
///     });
/// # let _ = events;
/// ```
pub fn request_head() -> impl Filter<Extract = (Parts,), Error = Infallible> + Clone {
    let query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::method()
        .and(warp::path::full())
        .and(query)
        .and(warp::header::headers_cloned())
        .map(
            |method: Method, path: FullPath, query: Option<String>, headers: HeaderMap| {
                let uri = match query {
                    Some(query) => format!("{}?{query}", path.as_str()),
                    None => path.as_str().to_owned(),
                };
                let mut head = http::Request::new(()).into_parts().0;
                head.method = method;
                head.uri = uri.parse().unwrap_or_else(|_| Uri::from_static("/"));
                head.headers = headers;
                head
            },
        )
}
