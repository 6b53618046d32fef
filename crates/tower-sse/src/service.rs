//! [`Sse`]: the service that [`SseLayer`](crate::SseLayer) wraps around yours.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::{
    ClientCursor, ResponseBody, ResponseFuture, SseLayer, layer::Config, telemetry::RequestInfo,
};

/// Middleware that gives `text/event-stream` responses headers, priming, heartbeats, a retry
/// hint and graceful shutdown, and passes every other response through untouched.
///
/// Build it with [`SseLayer`], or with [`Sse::new`] for the default configuration. See the
/// [crate documentation](crate) for details.
#[derive(Clone, Debug)]
pub struct Sse<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Sse<S> {
    /// Wraps `inner` with the default configuration (see [`SseLayer::new`]).
    pub fn new(inner: S) -> Self {
        Self::from_config(inner, Arc::default())
    }

    pub(crate) fn from_config(inner: S, config: Arc<Config>) -> Self {
        Self { inner, config }
    }

    /// A layer with the default configuration, to configure further.
    pub fn layer() -> SseLayer {
        SseLayer::new()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Consumes the middleware, returning the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Sse<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let cursor = ClientCursor::from_parts(
            req.headers(),
            req.uri(),
            self.config.last_event_id_query,
            self.config.max_last_event_id_len,
        );
        // The cursor is stored on every request, `Absent` included: an extractor that finds
        // no cursor knows the request did not go through a layer and parses it with the
        // defaults, so a missing extension must never stand for "the layer found nothing"
        // (with `last_event_id_query(None)`, `?lastEventId=42` would come back as valid).
        // The cost is one extension insert per request, which routers pay anyway.
        // Without `stream_topics`, a multi-topic stream's composite cursor is resumed by the
        // stream that issued it (the hub), not read from the log as one topic's position.
        let replays = self.config.replay.log.is_some()
            && cursor != ClientCursor::Absent
            && (self.config.replay.has_topics()
                || !cursor
                    .log_cursor()
                    .is_some_and(tower_sse_core::TopicSet::is_cursor));
        let (resume, access) = if replays || self.config.authorizer.is_some() {
            let (parts, body) = req.into_parts();
            let (target, access) = crate::access::gate_request(&self.config, &parts);
            req = Request::from_parts(parts, body);
            let resume = target.filter(|_| replays);
            (
                resume.map(|target| Box::new((target, cursor.clone()))),
                access,
            )
        } else {
            (None, None)
        };
        let info = RequestInfo::new(cursor != ClientCursor::Absent, req.uri().path());
        req.extensions_mut().insert(cursor);
        ResponseFuture::new(
            self.inner.call(req),
            Arc::clone(&self.config),
            resume,
            info,
            access,
        )
    }
}
