//! A [tower] layer that makes [Server-Sent Events] production-grade.
//!
//! Wrap any service whose responses are `http::Response<B>` with `B: http_body::Body<Data =
//! Bytes>` (axum routers, hyper services, `warp::service`, ...) in [`SseLayer`]. Responses
//! whose `Content-Type` is `text/event-stream` (parameters allowed, any case) get the behaviour
//! below; every other response passes through untouched: same headers, same body, same frames,
//! at the cost of one branch per frame.
//!
//! # What an event stream gets
//!
//! - **Headers**, each inserted only where the handler set none: `Cache-Control: no-cache`
//!   ([`cache_control`](SseLayer::cache_control)) and `X-Accel-Buffering: no`
//!   ([`accel_buffering`](SseLayer::accel_buffering)), which stop proxies such as nginx from
//!   buffering the stream. `Content-Length` is removed, since the layer adds bytes.
//!   No `Connection` or `Keep-Alive` header is added on any HTTP version: HTTP/2 forbids them
//!   ([RFC 9113, section 8.2.2]), and on HTTP/1.1 persistent connections are the default and
//!   the server (hyper) owns them: these headers are hop-by-hop, so a value set by a handler
//!   could only contradict what the connection actually does.
//! - **Priming.** The first frame is written at once, before the handler's first event, so that
//!   the headers and a first byte get through every proxy even when the first event is minutes
//!   away. It is the `retry` hint when one is set ([`retry`](SseLayer::retry)), and otherwise
//!   the heartbeat comment. A UTF-8 byte order mark at the start of the handler's body is
//!   dropped: clients only skip a BOM at the very start of the stream, and after the priming
//!   frame it would be read as part of the first field name.
//! - **Heartbeats.** When the handler has written nothing for the interval (15 s by default,
//!   [`heartbeat`](SseLayer::heartbeat)), the layer writes a comment
//!   ([`heartbeat_comment`](SseLayer::heartbeat_comment), `:\n\n` by default), which keeps
//!   proxies and load balancers from closing an idle connection. The timer restarts on every
//!   frame and stops when the body ends. A heartbeat only ever goes between events: every
//!   byte written is followed by a [`FrameBoundary`](tower_sse_core::FrameBoundary), and if
//!   the handler has written half an event and paused, the beat is skipped, since its blank
//!   line would dispatch the half-built event. Each stream holds at most one timer, and no
//!   task is spawned.
//! - **Coalescing.** Frames that the handler has ready at the same moment are joined into one
//!   body frame of up to [`coalesce_limit`](SseLayer::coalesce_limit) bytes, so a burst of
//!   small events costs one write instead of one per event. Only frames that are already ready
//!   are joined: an event is never held back to wait for another. A frame as large as the
//!   limit (4 KiB by default) is passed on without a copy.
//! - **Graceful shutdown.** With a [`ShutdownSignal`] ([`shutdown`](SseLayer::shutdown)),
//!   every open stream ends at its next event boundary once the signal is triggered, after an
//!   optional [`final_event`](SseLayer::final_event), so that a server's graceful shutdown
//!   (`axum::serve(..).with_graceful_shutdown(..)`, hyper-util's `GracefulShutdown`) completes
//!   instead of waiting on endless responses. With
//!   [`max_lifetime`](SseLayer::max_lifetime), each stream also ends after a jittered
//!   lifetime, so long-lived clients reconnect and spread over servers without a thundering
//!   herd.
//!
//! # Compression
//!
//! Compression goes outside this layer (with axum: `.layer(SseLayer::new())`, then
//! `.layer(CompressionLayer::new())`). tower-http's `CompressionLayer` skips
//! `text/event-stream` by default, so event streams go out as they are; with a predicate that
//! lets them through (`compress_when(NotForContentType::GRPC)`), it compresses what this layer
//! sends, priming and heartbeats included, and flushes whenever the body pauses, so no event
//! waits for the next. An event stream that reaches this layer already encoded (a
//! `Content-Encoding` other than `identity`: a compression layer inside this one) gets the
//! headers above and is otherwise passed through untouched, without priming, heartbeats,
//! replay or final event: plain text spliced into compressed bytes would corrupt them.
//!
//! # Resumption
//!
//! Every request's last event id (the `Last-Event-ID` header, or the `lastEventId` query
//! parameter for clients that cannot set headers) is validated into a [`ClientCursor`] request
//! extension: UTF-8, no NUL, CR or LF, at most 4096 bytes by default (room for the
//! composite cursor of a 32-topic stream); an invalid value is never echoed and
//! never an error. With [`replay`](SseLayer::replay), the layer resumes event streams itself:
//! it reads what the client missed from the log (the topic is the request path, or
//! [`stream_key`](SseLayer::stream_key)), sends it after the priming frame, then the handler's
//! live body without the events it just replayed. With
//! [`stream_topics`](SseLayer::stream_topics) it resumes streams of several topics from one
//! composite cursor the same way, topic by topic. A client too far behind, or with a cursor
//! the log does not know, is told by the [`GapPolicy`] (an `sse-gap` event by default).
//!
//! # Publish/subscribe with replay
//!
//! [`Hub`] fans events out to subscribers, encoded once, over any
//! [`EventLog`](tower_sse_core::EventLog) (the in-memory [`MemoryLog`](tower_sse_core::MemoryLog)
//! by default): [`Hub::subscribe`] replays what a reconnecting client missed after its
//! `Last-Event-ID` and then goes live with no gap and no duplicate; its [`Subscription`] is a
//! response body the layer wraps like any other.
//!
//! One stream can carry up to 32 topics ([`Hub::subscribe_request`]), resumed together from
//! one composite `Last-Event-ID`; topic names are validated everywhere
//! ([`TopicRules`](tower_sse_core::TopicRules)), and an [`Authorizer`] decides which topics a
//! request may read, in the hub and in the layer ([`SseLayer::authorize`]).
//!
//! Errors from the handler's body are passed on as they are; the server then drops the
//! connection. When the client goes away, the server drops the body and with it the handler's
//! body, the timer and the shutdown registration: nothing outlives the connection.
//!
//! # Example
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//!
//! use bytes::Bytes;
//! use http::{Request, Response, header::CONTENT_TYPE};
//! use http_body_util::{BodyExt, Full};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_sse::SseLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let handler = service_fn(|_request: Request<()>| async {
//!     let body = Full::new(Bytes::from_static(b"data: hello\n\n"));
//!     let response = Response::builder()
//!         .header(CONTENT_TYPE, "text/event-stream")
//!         .body(body)
//!         .unwrap();
//!     Ok::<_, Infallible>(response)
//! });
//! let service = ServiceBuilder::new()
//!     .layer(SseLayer::new().retry(Duration::from_secs(5)))
//!     .service(handler);
//!
//! let response = service.oneshot(Request::new(())).await?;
//! assert_eq!(response.headers()["cache-control"], "no-cache");
//! assert_eq!(response.headers()["x-accel-buffering"], "no");
//! let body = response.into_body().collect().await?.to_bytes();
//! assert_eq!(&body[..], b"retry: 5000\n\ndata: hello\n\n");
//! # Ok(())
//! # }
//! ```
//!
//! With axum, add the layer to a router; it works on axum's own
//! [`Sse`](https://docs.rs/axum/0.8/axum/response/sse/struct.Sse.html) responses (whose
//! `KeepAlive` is then not needed) as well as on any body marked `text/event-stream`:
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::{Router, body::Body, http::header::CONTENT_TYPE, response::Response, routing::get};
//! use futures_util::StreamExt;
//! use tower_sse::{ShutdownSignal, SseLayer};
//!
//! async fn events() -> Response {
//!     let events = futures_util::stream::iter(["data: one\n\n", "data: two\n\n"])
//!         .map(Ok::<_, std::convert::Infallible>);
//!     Response::builder()
//!         .header(CONTENT_TYPE, "text/event-stream")
//!         .body(Body::from_stream(events))
//!         .unwrap()
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let shutdown = ShutdownSignal::new();
//! let app = Router::new().route("/events", get(events)).layer(
//!     SseLayer::new()
//!         .retry(Duration::from_secs(2))
//!         .shutdown(shutdown.clone()),
//! );
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(shutdown.triggered())
//!     .await
//! # }
//! ```
//!
//! # Observability
//!
//! With the `tracing` feature (on by default) each event stream is an `sse_stream` span
//! (target `tower_sse::stream`, level `INFO`) recording its route, whether the client
//! resumed, and at its close the reason, duration and number of events; replay outcomes,
//! gaps, lagging hub subscribers and store failures are events (store failures once per
//! incident). Nothing is recorded per event below `TRACE`. With the `metrics` feature the
//! layer and the hub record the metrics listed in [`metrics`](mod@crate::metrics), through the
//! `metrics` facade.
//!
//! # Runtime
//!
//! Heartbeats and [`max_lifetime`](SseLayer::max_lifetime) use tokio's timer: event-stream
//! bodies must be polled inside a tokio runtime with the time driver enabled, as every tokio
//! server's are. A layer with [`no_heartbeat`](SseLayer::no_heartbeat) and no lifetime needs no
//! timer.
//!
//! [tower]: https://docs.rs/tower
//! [Server-Sent Events]: https://html.spec.whatwg.org/multipage/server-sent-events.html
//! [RFC 9113, section 8.2.2]: https://www.rfc-editor.org/rfc/rfc9113#section-8.2.2

#![cfg_attr(docsrs, feature(doc_cfg))]

mod access;
mod alarm;
mod auth;
mod body;
mod coalesce;
mod future;
mod gap;
pub mod generation;
mod hub;
mod id_field;
mod joined;
mod last_event_id;
mod layer;
pub mod metrics;
mod query;
mod replay;
mod service;
mod shutdown;
mod stream;
mod telemetry;

pub use auth::{Authorize, Authorizer};
pub use body::ResponseBody;
#[doc(hidden)]
pub use coalesce::layer_log_reads;
pub use future::ResponseFuture;
pub use gap::{GapPolicy, GapReason, GapSignal, SSE_GAP, SSE_REPLAY_FROM};
pub use hub::{
    DEFAULT_CAPACITY, DEFAULT_HISTORY_BYTES, DEFAULT_HISTORY_EVENTS, DEFAULT_MAX_REPLAY, Hub,
    HubError, REPLAY_PAGE, REPLAY_PAGE_BYTES, Subscription, SubscriptionError,
};
pub use last_event_id::{
    ClientCursor, DEFAULT_LAST_EVENT_ID_QUERY, DEFAULT_MAX_LAST_EVENT_ID_LEN, InvalidLastEventId,
    LAST_EVENT_ID, ValidLastEventId,
};
pub use layer::{DEFAULT_COALESCE_LIMIT, DEFAULT_HEARTBEAT, HeartbeatStyle, SseLayer};
pub use query::query_topics;
pub use service::Sse;
pub use shutdown::ShutdownSignal;
pub use tower_sse_core::Event;
