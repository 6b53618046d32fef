//! Test helpers: the events of any `http::Response`, such as an axum handler's.
//!
//! Testing an SSE handler takes three lines: call the service, decode, assert.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use http::Response;
//! use http_body_util::Full;
//!
//! // In a real test: `let response = app.oneshot(request).await?;`
//! let response = Response::builder()
//!     .header("content-type", "text/event-stream")
//!     .body(Full::new(bytes::Bytes::from("event: greet\ndata: hi\n\ndata: bye\n\n")))?;
//! let events = tower_sse_client::testing::events(response).await?;
//! assert_eq!(events[0].event_type(), "greet");
//! assert_eq!(events[1].data(), "bye");
//! # Ok(()) }
//! ```
//!
//! For an endless stream, [`take_events`] stops after the first `n` events; wrap it in
//! `tokio::time::timeout` if the handler might never send them.

use futures_util::StreamExt;
use http::{Response, header::CONTENT_TYPE};
use http_body::Body;
use tower_sse_core::MessageEvent;

use crate::{BodyEvents, BoxError, Error, Event, is_event_stream};

/// All events of a finite response, after checking that it is a 2xx `text/event-stream`.
///
/// # Errors
///
/// [`Error::Status`] for a non-2xx status, [`Error::ContentType`] for another content type,
/// [`Error::Body`] if the body fails, [`Error::EventTooLarge`] for an event over 16 MiB.
pub async fn events<B>(response: Response<B>) -> Result<Vec<MessageEvent>, Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    take_events(response, usize::MAX).await
}

/// The first `n` events of a response (fewer if the body ends first), checked as in
/// [`events`]; the rest of the body is dropped.
///
/// # Errors
///
/// As [`events`].
pub async fn take_events<B>(response: Response<B>, n: usize) -> Result<Vec<MessageEvent>, Error>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut stream = event_stream(response)?;
    let mut out = Vec::new();
    while out.len() < n {
        match stream.next().await {
            Some(Ok(Event::Message(event))) => out.push(event),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(out)
}

/// The response's events as a stream, after checking that it is a 2xx `text/event-stream`:
/// for asserting on events as they come.
///
/// # Errors
///
/// [`Error::Status`] for a non-2xx status, [`Error::ContentType`] for another content type.
pub fn event_stream<B>(response: Response<B>) -> Result<BodyEvents<B>, Error> {
    if !response.status().is_success() {
        return Err(Error::Status(response.status()));
    }
    let content_type = response.headers().get(CONTENT_TYPE);
    if !content_type.is_some_and(is_event_stream) {
        return Err(Error::ContentType(content_type.cloned()));
    }
    Ok(BodyEvents::new(response.into_body()))
}
