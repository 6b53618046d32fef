//! A reconnecting, spec-exact [Server-Sent Events] client over any tower HTTP service.
//!
//! [`EventSource`] is a [`Stream`](futures_util::Stream) of [`Event`]s, like the browser's
//! `EventSource`, decoding with the incremental WHATWG decoder of `tower-sse-core` (each byte
//! is looked at once, however the stream is chunked):
//!
//! - any method and body (`POST`, as LLM APIs use), custom headers;
//! - `Last-Event-ID` on every reconnection (and, optionally, on the first request);
//! - the server's `retry` honoured: a first reconnection waits that long plus at most 50 %
//!   jitter; consecutive failures back off exponentially up to a maximum
//!   ([`RetryPolicy`]); retries go on indefinitely unless limited;
//! - a read timeout that reconnects a stream gone silent;
//! - `204 No Content` ends the stream; a non-2xx status or a wrong `Content-Type` is a typed
//!   [`Error`] (5xx and network errors retried, 4xx not, configurable);
//! - redirects followed (10 at most by default), credentials dropped across origins;
//! - memory bounded by a maximum event size (16 MiB by default): a larger event is an
//!   [`Error::EventTooLarge`] and is skipped, never an out-of-memory;
//! - [`close`](EventSource::close) and [`restart`](EventSource::restart).
//!
//! The stream is driven by its poller: no task is spawned for it. The default client
//! (feature `client`, on by default) is hyper-util's, HTTP/1.1 and HTTP/2; the `rustls`
//! feature adds `https://` (ring, webpki roots, or a private CA with `Builder::tls_config`).
//! Any other `tower::Service<http::Request<Full<Bytes>>>` works with [`Builder::build_with`].
//!
//! # Example
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use tower_sse_client::{Event, EventSource};
//!
//! # async fn run() -> Result<(), tower_sse_client::Error> {
//! let mut source = EventSource::builder("http://127.0.0.1:3000/v1/completions")
//!     .method("POST")
//!     .header("content-type", "application/json")
//!     .body(r#"{"prompt":"hello","stream":true}"#)
//!     .build()?;
//! while let Some(item) = source.next().await {
//!     match item {
//!         Ok(Event::Message(event)) if event.data() == "[DONE]" => source.close(),
//!         Ok(Event::Message(event)) => print!("{}", event.data()),
//!         Ok(_) => {}
//!         Err(error) => eprintln!("{error}"), // reconnects unless the stream then ends
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Testing SSE handlers
//!
//! With the `testing` feature (on by default), [`testing::events`] turns any
//! `http::Response` into its decoded events:
//!
//! ```ignore
//! let response = app.oneshot(Request::get("/events").body(Body::empty())?).await?;
//! let events = tower_sse_client::testing::events(response).await?;
//! assert_eq!(events[0].data(), "hello");
//! ```
//!
//! [Server-Sent Events]: https://html.spec.whatwg.org/multipage/server-sent-events.html

#![cfg_attr(docsrs, feature(doc_cfg))]

mod body;
#[cfg(feature = "client")]
mod client;
mod error;
mod retry;
mod source;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use body::BodyEvents;
#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use client::{DefaultClient, DefaultConnector};
pub use error::{BoxError, Error};
pub use retry::{DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY, RetryPolicy};
pub use source::{
    Builder, DEFAULT_MAX_EVENT_SIZE, DEFAULT_MAX_REDIRECTS, EventSource, ReadyState, RequestBody,
};
pub use tower_sse_core::MessageEvent;

/// What an [`EventSource`] or [`BodyEvents`] yields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A response was accepted (2xx, `text/event-stream`): the browser's `open` event.
    Open,
    /// An event was dispatched: its type, data and the last event id.
    Message(MessageEvent),
    /// A comment line, without its colon (only when asked for with `comments(true)`).
    Comment(String),
}

/// Whether a `Content-Type` is `text/event-stream` (any case, parameters allowed).
fn is_event_stream(value: &http::HeaderValue) -> bool {
    let essence = value
        .as_bytes()
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default();
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}
