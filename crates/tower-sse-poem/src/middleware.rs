//! [`SseMiddleware`]: [`SseLayer`] as a native poem middleware.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderValue,
    header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE},
};
use http_body_util::combinators::BoxBody;
use poem::{
    Body, Endpoint, IntoResponse, Middleware, Request, RequestParts, Response, ResponseParts,
};
use tower_service::Service;
use tower_sse::SseLayer;

/// [`SseLayer`] as a poem [`Middleware`]: `endpoint.with(SseMiddleware::new(layer))`.
///
/// The layer sees the whole request (headers and extensions included, so
/// [`stream_key`](SseLayer::stream_key) works as on any tower server); it stores the request's
/// [`ClientCursor`](tower_sse::ClientCursor), parsed with its settings, for
/// [`LastEventId`](crate::LastEventId). The response goes through the layer's
/// own [`Sse`](tower_sse::Sse) service and [`ResponseBody`](tower_sse::ResponseBody), so it
/// behaves exactly as under any tower server. A request with `Accept: text/event-stream`
/// loses its `Accept-Encoding` on the way in, so that poem's `Compression`, placed inside
/// this middleware, does not hold events back (see the [crate documentation](crate)).
#[derive(Clone, Debug, Default)]
pub struct SseMiddleware {
    layer: SseLayer,
}

impl SseMiddleware {
    /// The middleware applying `layer`.
    pub fn new(layer: SseLayer) -> Self {
        Self { layer }
    }
}

impl<E: Endpoint> Middleware<E> for SseMiddleware {
    type Output = SseEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        SseEndpoint {
            ep,
            layer: self.layer.clone(),
        }
    }
}

/// The endpoint [`SseMiddleware`] wraps around yours.
#[derive(Debug)]
pub struct SseEndpoint<E> {
    ep: E,
    layer: SseLayer,
}

impl<E: Endpoint> Endpoint for SseEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        if asks_for_event_stream(req.headers()) {
            req.headers_mut().remove(ACCEPT_ENCODING);
        }
        // The layer sees the whole request head, as under any tower server: method, URI,
        // version, headers and extensions (poem's `Data` included) are moved into an
        // `http::Request<()>` for it, so `stream_key` and replay read the same request as on
        // axum and warp; `Handoff` moves them back, with the cursor the layer added, into
        // poem's request, whose body and connection state (addresses, scheme) never left it.
        let (mut parts, body) = req.into_parts();
        let mut head = http::Request::new(());
        *head.method_mut() = std::mem::take(&mut parts.method);
        *head.uri_mut() = std::mem::take(&mut parts.uri);
        *head.version_mut() = parts.version;
        *head.headers_mut() = std::mem::take(&mut parts.headers);
        *head.extensions_mut() = std::mem::take(&mut parts.extensions);
        let mut service = tower_layer::Layer::layer(
            &self.layer,
            Handoff {
                ep: &self.ep,
                req: Some((parts, body)),
            },
        );
        let (mut parts, body) = service.call(head).await?.into_parts();
        if let Some(HiddenContentType(value)) = parts.extensions.remove() {
            parts.headers.insert(CONTENT_TYPE, value);
        }
        // Boxed as it is (poem's own `From<http::Response>` maps frames, which loses the
        // exact size hint and with it `Content-Length` on responses the layer passes through).
        let parts = ResponseParts {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            extensions: parts.extensions,
        };
        Ok(Response::from_parts(parts, Body::from(BoxBody::new(body))))
    }
}

/// The `Content-Type` of a compressed event stream, kept out of the layer's sight.
#[derive(Clone)]
struct HiddenContentType(HeaderValue);

/// An event stream that a `Compression` inside this middleware has already compressed (a
/// request without `Accept: text/event-stream` that accepts gzip, as curl `--compressed`,
/// Python's `requests` and most server-side clients send) must not get the layer's plain-text
/// priming and heartbeats spliced into its compressed bytes, which would corrupt it: its
/// `Content-Type` is hidden from the layer, which then passes it through untouched, and put
/// back after. Its events are not held back: poem's encoder flushes whenever the stream
/// pauses.
fn hide_compressed_event_stream<B>(response: &mut http::Response<B>) {
    let headers = response.headers();
    let compressed = headers
        .get(CONTENT_ENCODING)
        .is_some_and(|value| !value.as_bytes().eq_ignore_ascii_case(b"identity"));
    let event_stream = headers.get(CONTENT_TYPE).is_some_and(|value| {
        value.to_str().is_ok_and(|value| {
            let media = value.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/event-stream")
        })
    });
    if compressed && event_stream {
        if let Some(value) = response.headers_mut().remove(CONTENT_TYPE) {
            response.extensions_mut().insert(HiddenContentType(value));
        }
    }
}

/// Whether the request's `Accept` names `text/event-stream`, as every `EventSource` sends.
fn asks_for_event_stream(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value.split(',').any(|item| {
                let media = item.split(';').next().unwrap_or("").trim();
                media.eq_ignore_ascii_case("text/event-stream")
            })
        })
    })
}

/// The service inside the layer: calls the endpoint with poem's request, its head as the
/// layer passed it on.
struct Handoff<'a, E> {
    ep: &'a E,
    req: Option<(RequestParts, Body)>,
}

/// poem's response body type.
type PoemBody = BoxBody<Bytes, io::Error>;

/// Boxed because the endpoint's future type cannot be named; poem boxes per request as well.
type HandoffFuture<'a> =
    Pin<Box<dyn Future<Output = poem::Result<http::Response<PoemBody>>> + Send + 'a>>;

impl<'a, E: Endpoint> Service<http::Request<()>> for Handoff<'a, E> {
    type Response = http::Response<PoemBody>;
    type Error = poem::Error;
    type Future = HandoffFuture<'a>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, head: http::Request<()>) -> Self::Future {
        let (mut parts, body) = self.req.take().expect("one call per request");
        let (head, ()) = head.into_parts();
        parts.method = head.method;
        parts.uri = head.uri;
        parts.version = head.version;
        parts.headers = head.headers;
        parts.extensions = head.extensions;
        let req = Request::from_parts(parts, body);
        let ep = self.ep;
        Box::pin(async move {
            let response = ep.call(req).await?.into_response();
            let mut response = http::Response::from(response);
            hide_compressed_event_stream(&mut response);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_stream_accept_values() {
        let accepts = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(ACCEPT, value.parse().unwrap());
            asks_for_event_stream(&headers)
        };
        assert!(accepts("text/event-stream"));
        assert!(accepts("text/html, Text/Event-Stream;q=0.9"));
        assert!(!accepts("*/*"));
        assert!(!accepts("text/html"));
        assert!(!asks_for_event_stream(&HeaderMap::new()));
    }
}
