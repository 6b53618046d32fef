//! The servers and the client of the cross-framework conformance suite.
//!
//! Every [`Framework`] serves the same routes on 127.0.0.1 behind the same
//! [`SseLayer`], through its adapter crate:
//!
//! - `GET /hub`: the [`Hub`] topic [`TOPIC`], resumed from the client's last event id as the
//!   adapter's extractor reads it;
//! - `GET /parts`: one event written in parts with pauses longer than the heartbeat, a pause
//!   between events, then a second event and the end ([`parts`]);
//! - `GET /events`: [`own_events`] through the adapter's `Events` response;
//! - `GET /plain`: `text/plain` `hello`, with a `Content-Length`;
//! - `GET /topics?topic=A&topic=B…`: those topics of the [`Hub`] on one stream, the request
//!   head passed to [`Hub::subscribe_request`] (`private/` topics need [`TOKEN`] as a bearer
//!   token, [`authorizer`]); refusals through the adapter's `HubRejection`.
//!
//! [`KeyedServer`] serves `GET /feed` behind a layer that replays by itself, from a topic
//! derived from the `X-Tenant` header ([`keyed_layer`]).
//!
//! [`LayeredServer`] serves `GET /feed?topic=A&topic=B…` behind a layer that resumes streams
//! of several topics by itself, over a memory log or a real `redis-server` ([`RedisServer`]).
//!
//! The tests in `tests/` run the same scenarios against each of them with a hyper client and
//! [`tower_sse_core::Decoder`], with bounded waits only.

mod axum_app;
mod client;
mod keyed;
mod layered;
mod poem_app;
mod redis;
mod warp_app;

use std::{convert::Infallible, net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use tokio::{net::TcpListener, task::JoinHandle};
use tower_sse::{Authorizer, Hub, ShutdownSignal, SseLayer};
use tower_sse_core::TopicName;

pub use client::{Client, Reader, request, send};
pub use keyed::{KeyedServer, TENANT_HEADER, keyed_layer, tenant_topic};
pub use layered::{LATE, LayeredServer, topics_layer};
pub use redis::RedisServer;

/// The topic `/hub` serves.
pub const TOPIC: &str = "conformance";

/// The bearer token `private/` topics need.
pub const TOKEN: &str = "let-me-in";

/// The hub's hook: `private/` topics need `Authorization: Bearer` [`TOKEN`].
pub fn authorizer() -> Authorizer {
    Authorizer::new(|head: &http::request::Parts, topic: &TopicName| {
        let allowed = !topic.starts_with("private/")
            || head
                .headers
                .get(http::header::AUTHORIZATION)
                .is_some_and(|value| value.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
        async move { allowed }
    })
}

/// The most `topic` parameters read from one query.
pub const MAX_TOPIC_PARAMS: usize = 64;

/// The heartbeat interval every server uses: short, so that the tests see beats soon.
pub const HEARTBEAT: Duration = Duration::from_millis(200);

/// The `retry` hint every server sends.
pub const RETRY: Duration = Duration::from_millis(1500);

/// How long `/parts` pauses inside and between its events: well over [`HEARTBEAT`].
pub const PAUSE: Duration = Duration::from_millis(700);

/// Generous bound for anything that waits on the network.
pub const NETWORK: Duration = Duration::from_secs(10);

/// A framework the suite runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framework {
    /// axum 0.8 through `tower-sse-axum`.
    Axum,
    /// warp 0.4 through `tower-sse-warp`.
    Warp,
    /// poem 3 through `tower-sse-poem`, with poem's `Compression` inside its middleware.
    Poem,
}

/// The layer every server uses.
pub fn layer(shutdown: &ShutdownSignal) -> SseLayer {
    SseLayer::new()
        .heartbeat(HEARTBEAT)
        .retry(RETRY)
        .shutdown(shutdown.clone())
        .final_event(
            tower_sse_core::Event::new()
                .event("bye")
                .expect("no line break")
                .data("server shutting down"),
        )
}

/// The body of `/parts`: `data: hel`, a pause, `lo\n\n`, a pause, `data: end\n\n`, the end.
pub fn parts() -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    // Each chunk comes after its pause.
    let steps: [(Duration, &'static str); 3] = [
        (Duration::ZERO, "data: hel"),
        (PAUSE, "lo\n\n"),
        (PAUSE, "data: end\n\n"),
    ];
    stream::unfold(0, move |i| async move {
        let (pause, chunk) = *steps.get(i)?;
        tokio::time::sleep(pause).await;
        Some((Ok(Bytes::from_static(chunk.as_bytes())), i + 1))
    })
}

/// The events of `/events`, served with each adapter's response for a stream of
/// [`tower_sse_core::Event`]s: `tick 1` to `tick 3`, with ids `1` to `3`, then the end.
pub fn own_events() -> impl Stream<Item = tower_sse_core::Event<'static>> + Send + 'static {
    stream::iter(1..=3).map(|n| {
        tower_sse_core::Event::new()
            .id(n.to_string())
            .expect("no line break")
            .data(format!("tick {n}"))
    })
}

/// A server of one framework, running on a loopback port.
#[derive(Debug)]
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The hub behind `/hub`.
    pub hub: Hub,
    /// The signal that ends its streams and the server.
    pub shutdown: ShutdownSignal,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Starts `framework`'s server on 127.0.0.1 with a fresh hub.
    pub async fn start(framework: Framework) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub = Hub::new().authorize(authorizer());
        let shutdown = ShutdownSignal::new();
        let task = match framework {
            Framework::Axum => axum_app::spawn(listener, hub.clone(), shutdown.clone()),
            Framework::Warp => warp_app::spawn(listener, hub.clone(), shutdown.clone()),
            Framework::Poem => poem_app::spawn(listener, hub.clone(), shutdown.clone()),
        };
        Self {
            addr,
            hub,
            shutdown,
            task,
        }
    }

    /// A client connected to the server.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Triggers the shutdown signal and waits (bounded) for the server to exit; whether it
    /// did.
    pub async fn stop(self) -> bool {
        self.shutdown.trigger();
        matches!(tokio::time::timeout(NETWORK, self.task).await, Ok(Ok(())))
    }
}
