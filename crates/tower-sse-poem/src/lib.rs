//! [poem] 3 adapter for [tower-sse](tower_sse).
//!
//! - [`SseMiddleware`]: [`SseLayer`] as a native poem middleware, `.with(SseMiddleware::new(layer))`.
//!   Every `text/event-stream` response of the endpoint (poem's own `SSE`, a [`HubStream`],
//!   any body marked as an event stream) gets proxy-safe headers, priming, heartbeats only
//!   between events, the `retry` hint and the end at an event boundary on shutdown; other
//!   responses pass through. The layer's own body type does the work: nothing is
//!   re-implemented here.
//! - [`LastEventId`], an extractor for the id a reconnecting client resumes from, which never
//!   rejects.
//! - [`HubStream`], a [`Subscription`] as a poem response, without re-encoding.
//! - [`Events`], any stream of your own [`Event`]s as a response, the counterpart of poem's
//!   `SSE`.
//! - re-exports of [`tower_sse`], of [`tower_sse_core`]'s event types, and of `poem`.
//!
//! # With poem's `Compression`
//!
//! Place [`SseMiddleware`] **outside** poem's
//! [`Compression`](https://docs.rs/poem/3/poem/middleware/struct.Compression.html)
//! (`.with(Compression::new()).with(SseMiddleware::new(layer))`). Then:
//!
//! - a request that asks for an event stream (`Accept: text/event-stream`, which every
//!   `EventSource` sends) loses its `Accept-Encoding` on the way in, so `Compression` leaves
//!   its response alone and it gets everything the layer does, while other routes stay
//!   compressed;
//! - a curl-like request (`Accept: */*` or none, `Accept-Encoding: gzip`, as
//!   `curl --compressed`, Python's `requests` and most server-side clients send) gets its
//!   event stream compressed by `Compression`, whose encoder flushes every time the stream
//!   pauses, so each event still leaves at once. The layer passes such a response through
//!   untouched: its plain-text priming and heartbeats spliced into compressed bytes would
//!   corrupt them. Headers are set by the handler's response type ([`Events`], [`HubStream`]
//!   set `Cache-Control: no-cache`).
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener, web::Data};
//! use tower_sse_poem::{Hub, HubStream, LastEventId, ShutdownSignal, SseLayer, SseMiddleware};
//!
//! #[handler]
//! async fn events(hub: Data<&Hub>, last: LastEventId) -> poem::Result<HubStream> {
//!     // Replays what the client missed after its last id, then goes live.
//!     let subscription = hub.subscribe("news", last.log_cursor()).await;
//!     subscription.map(HubStream).map_err(poem::error::ServiceUnavailable)
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let shutdown = ShutdownSignal::new();
//! let layer = SseLayer::new().retry(Duration::from_secs(2)).shutdown(shutdown.clone());
//! let app = Route::new()
//!     .at("/events", get(events))
//!     .data(Hub::new())
//!     .with(SseMiddleware::new(layer));
//! Server::new(TcpListener::bind("127.0.0.1:3000"))
//!     .run_with_graceful_shutdown(app, shutdown.triggered(), None)
//!     .await
//! # }
//! ```
//!
//! [poem]: https://docs.rs/poem/3

mod events;
mod extract;
mod middleware;
mod rejection;
mod response;

pub use events::Events;
pub use extract::LastEventId;
pub use middleware::{SseEndpoint, SseMiddleware};
pub use response::HubStream;

pub use poem;
pub use rejection::{HubRejection, request_head};
pub use tower_sse::{
    self, Authorize, Authorizer, ClientCursor, DEFAULT_MAX_LAST_EVENT_ID_LEN, GapPolicy, GapSignal,
    Hub, HubError, InvalidLastEventId, ResponseBody, ShutdownSignal, Sse, SseLayer, Subscription,
    SubscriptionError, ValidLastEventId, query_topics,
};
pub use tower_sse_core::{
    self, Decoded, Decoder, Event, EventError, EventItem, EventLog, LoggedEvent, MemoryLog,
    MessageEvent, ReplayOutcome, Retention, TopicName, TopicRules, TopicSet,
};
