//! [axum] 0.8 adapter for [tower-sse](tower_sse): everything an axum application needs for
//! production-grade [Server-Sent Events], from this one dependency.
//!
//! [`SseLayer`] is a tower layer, so `Router::layer(SseLayer::new())` works as it is: every
//! `text/event-stream` response of the router (axum's own `Sse`, a [`HubStream`], any body
//! marked as an event stream) gets proxy-safe headers, priming, heartbeats only between
//! events, the `retry` hint and graceful shutdown; other responses pass through untouched.
//! This crate adds the axum glue:
//!
//! - [`LastEventId`], an extractor for the id a reconnecting client resumes from, which never
//!   rejects: absent or invalid is `None`;
//! - [`HubStream`], a [`Subscription`] as an axum response, so a handler returns
//!   `hub.subscribe(..)` without re-encoding anything;
//! - [`Events`], any stream of your own [`Event`]s as a response, the counterpart of axum's
//!   `Sse`;
//! - re-exports of [`tower_sse`] and of [`tower_sse_core`]'s event types.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use axum::{Router, extract::State, http::StatusCode, routing::get};
//! use tower_sse_axum::{Event, Hub, HubStream, LastEventId, ShutdownSignal, SseLayer};
//!
//! async fn events(State(hub): State<Hub>, last: LastEventId) -> Result<HubStream, StatusCode> {
//!     // Replays what the client missed after its last id, then goes live.
//!     let subscription = hub.subscribe("news", last.log_cursor()).await;
//!     subscription.map(HubStream::from).map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new();
//! let shutdown = ShutdownSignal::new();
//! let app = Router::new()
//!     .route("/events", get(events))
//!     .with_state(hub.clone())
//!     .layer(SseLayer::new().retry(Duration::from_secs(2)).shutdown(shutdown.clone()));
//!
//! hub.publish("news", &Event::new().data("hello")).await.ok();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).with_graceful_shutdown(shutdown.triggered()).await
//! # }
//! ```
//!
//! [axum]: https://docs.rs/axum/0.8
//! [Server-Sent Events]: https://html.spec.whatwg.org/multipage/server-sent-events.html

mod events;
mod extract;
mod rejection;
mod response;

pub use events::Events;
pub use extract::LastEventId;
pub use response::HubStream;

pub use rejection::HubRejection;
pub use tower_sse::{
    self, Authorize, Authorizer, ClientCursor, DEFAULT_MAX_LAST_EVENT_ID_LEN, GapPolicy, GapSignal,
    Hub, HubError, InvalidLastEventId, ResponseBody, ShutdownSignal, Sse, SseLayer, Subscription,
    SubscriptionError, ValidLastEventId, query_topics,
};
pub use tower_sse_core::{
    self, Decoded, Decoder, Event, EventError, EventItem, EventLog, LoggedEvent, MemoryLog,
    MessageEvent, ReplayOutcome, Retention, TopicName, TopicRules, TopicSet,
};
