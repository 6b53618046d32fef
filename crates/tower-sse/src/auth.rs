//! [`Authorize`]: the per-topic authorization hook of the hub and the layer's replay.
//!
//! A client names the topics it wants (a query string, a path); whether it may read one is the
//! application's decision, made from the request head (a cookie, an `Authorization` header, a
//! token in the query) and the topic. The hook is async, so it can ask a session store or an
//! identity provider. [`Hub::subscribe_request`](crate::Hub::subscribe_request) consults it
//! for every topic of a subscription *before* it joins any topic or reads the log, and
//! [`SseLayer::authorize`](crate::SseLayer::authorize) before the layer replays anything: a
//! denied topic is refused as a whole request (a `403` in the adapters), so none of its events
//! reaches the client, replayed or live.
//!
//! # Example
//!
//! ```
//! use http::request::Parts;
//! use tower_sse::{Authorizer, Hub};
//! use tower_sse_core::TopicName;
//!
//! // `private/` topics need a bearer token; everything else is public.
//! let authorizer = Authorizer::new(|request: &Parts, topic: &TopicName| {
//!     let allowed = !topic.starts_with("private/")
//!         || request.headers.get("authorization").is_some_and(|v| v == "Bearer s3cret");
//!     async move { allowed }
//! });
//! let hub = Hub::new().authorize(authorizer);
//! # let _ = hub;
//! ```

use std::{fmt, future::Future, pin::Pin, sync::Arc};

use http::request::Parts;
use tower_sse_core::TopicName;

type BoxFuture = Pin<Box<dyn Future<Output = bool> + Send>>;

/// Decides whether the request whose head is `request` may read `topic`.
///
/// Implemented for every `Fn(&Parts, &TopicName) -> impl Future<Output = bool>`; the future is
/// `'static`, so take what it needs from the head before returning it.
pub trait Authorize: Send + Sync + 'static {
    /// `true` to allow.
    fn authorize(&self, request: &Parts, topic: &TopicName) -> BoxFuture;
}

impl<F, Fut> Authorize for F
where
    F: Fn(&Parts, &TopicName) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send + 'static,
{
    fn authorize(&self, request: &Parts, topic: &TopicName) -> BoxFuture {
        Box::pin(self(request, topic))
    }
}

/// A shared [`Authorize`] hook; cheap to clone.
#[derive(Clone)]
pub struct Authorizer(Arc<dyn Authorize>);

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer").finish_non_exhaustive()
    }
}

impl Authorizer {
    /// Wraps a hook.
    pub fn new(hook: impl Authorize) -> Self {
        Self(Arc::new(hook))
    }

    /// Whether `request` may read `topic`.
    pub async fn allows(&self, request: &Parts, topic: &TopicName) -> bool {
        self.0.authorize(request, topic).await
    }

    /// Starts the hook; the answer does not borrow the request.
    pub(crate) fn start(&self, request: &Parts, topic: &TopicName) -> BoxFuture {
        self.0.authorize(request, topic)
    }

    /// The first topic of `topics` that `request` may not read, if any; every topic is asked
    /// in order, until the first denial.
    pub async fn first_denied<'a>(
        &self,
        request: &Parts,
        topics: impl IntoIterator<Item = &'a TopicName>,
    ) -> Option<TopicName> {
        for topic in topics {
            if !self.allows(request, topic).await {
                return Some(topic.clone());
            }
        }
        None
    }
}

/// The head of a request with nothing in it: what the hook sees when the hub is used without
/// a request ([`Hub::subscribe`](crate::Hub::subscribe), [`Hub::publish`](crate::Hub::publish)).
pub(crate) fn anonymous() -> Parts {
    http::Request::new(()).into_parts().0
}
