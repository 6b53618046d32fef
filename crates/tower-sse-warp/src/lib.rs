//! [warp] 0.4 adapter for [tower-sse](tower_sse).
//!
//! warp 0.4's reply body has no public streaming constructor, so a filter cannot hand
//! [`SseLayer`] a body to manage from inside; the layer applies at the service level instead.
//! [`warp::service`] turns a filter into a tower `Service`, [`SseLayer`] wraps it, and
//! [`serve`] runs the whole stack on hyper in one call, with graceful shutdown. Every
//! `text/event-stream` reply of the filter, warp's own [`warp::sse::reply`] included, then
//! gets proxy-safe headers, priming, heartbeats only between events, the `retry` hint and
//! the end at an event boundary on shutdown; every other reply passes through untouched.
//!
//! This crate adds:
//!
//! - [`serve`]: `warp::service(filter)` behind the layer, served with hyper-util;
//! - [`last_event_id`] and [`client_cursor`]: filters for the id a reconnecting client resumes
//!   from, which never reject;
//! - [`EventStream`]: a reply that streams any body, such as a [`Hub`] [`Subscription`], or
//!   your own events ([`EventStream::from_events`]),
//!   without re-encoding; [`EventStreamService`] (part of [`serve`]) puts the body in place;
//! - re-exports of [`tower_sse`] and of [`tower_sse_core`]'s event types.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use tower_sse_warp::{ClientCursor, EventStream, Hub, ShutdownSignal, SseLayer, warp::Filter};
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = Hub::new();
//! let events = warp::path("events")
//!     .and(tower_sse_warp::client_cursor())
//!     .then({
//!         let hub = hub.clone();
//!         move |cursor: ClientCursor| {
//!             let hub = hub.clone();
//!             async move {
//!                 // Replays what the client missed after its last id, then goes live.
//!                 EventStream::from(hub.subscribe("news", cursor.log_cursor()).await.unwrap())
//!             }
//!         }
//!     });
//!
//! let shutdown = ShutdownSignal::new();
//! let layer = SseLayer::new().retry(Duration::from_secs(2)).shutdown(shutdown.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! tower_sse_warp::serve(events, layer, listener, shutdown.triggered()).await
//! # }
//! ```
//!
//! [warp]: https://docs.rs/warp/0.4

mod filters;
mod incident;
mod rejection;
mod reply;
mod serve;

pub use filters::{client_cursor, last_event_id};
pub use reply::{EventStream, EventStreamBody, EventStreamFuture, EventStreamService};
pub use serve::serve;

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
pub use warp;

/// The error type of bodies carried by an [`EventStream`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
