//! The server of the layer's multi-topic resumption: the [`SseLayer`] resumes streams of
//! several topics itself ([`SseLayer::replay`] with [`SseLayer::stream_topics`]), on each
//! framework through its adapter, over any [`EventLog`] (memory or Redis).
//!
//! `GET /feed?topic=A&topic=B…` streams those topics: the handler returns at once a body
//! that subscribes to the [`Hub`] with no cursor [`LATE`] later (a source that starts late);
//! whatever a reconnecting client missed comes from the layer, read from the log the hub
//! appends to. The layer validates the topics (`400`) and asks [`authorizer`](crate::authorizer)
//! for each (`private/` topics need [`TOKEN`](crate::TOKEN); `403`).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream, stream::BoxStream};
use tokio::{net::TcpListener, task::JoinHandle};
use tower_sse::{Hub, ShutdownSignal, SseLayer, query_topics};
use tower_sse_core::EventLog;

use crate::{Client, Framework, MAX_TOPIC_PARAMS};

/// How long after the handler returned its stream subscribes to the hub.
pub const LATE: Duration = Duration::from_millis(200);

type Live = Arc<dyn Fn(Vec<String>) -> BoxStream<'static, std::io::Result<Bytes>> + Send + Sync>;

/// The layer of the server: the suite's [`layer`](crate::layer), resuming the request's
/// `topic` set from `log`, each topic authorized.
pub fn topics_layer<L: EventLog>(log: L, shutdown: &ShutdownSignal) -> SseLayer {
    crate::layer(shutdown)
        .replay(log)
        .stream_topics(|parts| query_topics(parts.uri.query(), "topic", MAX_TOPIC_PARAMS))
        .authorize(crate::authorizer())
}

/// A server of one framework whose layer resumes multi-topic streams.
#[derive(Debug)]
pub struct LayeredServer {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: ShutdownSignal,
    task: JoinHandle<()>,
}

impl LayeredServer {
    /// Starts `framework`'s server on 127.0.0.1: handlers subscribe to `hub`, the layer
    /// replays from `log` (the hub's log).
    pub async fn start<L>(framework: Framework, hub: Hub<L>, log: L) -> Self
    where
        L: EventLog + Clone,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = ShutdownSignal::new();
        let layer = topics_layer(log, &shutdown);
        let live = late_live(hub);
        let task = match framework {
            Framework::Axum => axum_feed(listener, live, layer, shutdown.clone()),
            Framework::Warp => warp_feed(listener, live, layer, shutdown.clone()),
            Framework::Poem => poem_feed(listener, live, layer, shutdown.clone()),
        };
        Self {
            addr,
            shutdown,
            task,
        }
    }

    /// A client connected to the server.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }
}

impl Drop for LayeredServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.task.abort();
    }
}

/// The live source of every handler: `topics` of `hub`, subscribed [`LATE`], no cursor.
fn late_live<L: EventLog>(hub: Hub<L>) -> Live {
    Arc::new(move |topics: Vec<String>| {
        let hub = hub.clone();
        stream::once(async move {
            tokio::time::sleep(LATE).await;
            let subscription = hub
                .subscribe_topics(topics.iter().map(String::as_str), None)
                .await;
            match subscription {
                Ok(subscription) => subscription.map_err(std::io::Error::other).boxed(),
                // A set the layer refuses too: this body is dropped unread.
                Err(error) => stream::iter([Err(std::io::Error::other(error.to_string()))]).boxed(),
            }
        })
        .flatten()
        .boxed()
    })
}

fn topics_of(query: Option<&str>) -> Vec<String> {
    query_topics(query, "topic", MAX_TOPIC_PARAMS)
}

fn axum_feed(
    listener: TcpListener,
    live: Live,
    layer: SseLayer,
    shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    use axum::{
        Router,
        body::Body,
        extract::State,
        http::{Uri, header::CONTENT_TYPE},
        response::{IntoResponse, Response},
        routing::get,
    };

    async fn feed(State(live): State<Live>, uri: Uri) -> Response {
        let body = Body::from_stream(live(topics_of(uri.query())));
        ([(CONTENT_TYPE, "text/event-stream")], body).into_response()
    }

    let app = Router::new()
        .route("/feed", get(feed))
        .with_state(live)
        .layer(layer);
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.triggered())
            .await
            .unwrap();
    })
}

fn warp_feed(
    listener: TcpListener,
    live: Live,
    layer: SseLayer,
    shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    use tower_sse_warp::{EventStream, warp::Filter};

    let feed = warp::path!("feed")
        .and(warp::get())
        .and(tower_sse_warp::request_head())
        .map(move |head: http::request::Parts| {
            EventStream::from_stream(live(topics_of(head.uri.query())))
        });
    tokio::spawn(async move {
        tower_sse_warp::serve(feed, layer, listener, shutdown.triggered())
            .await
            .unwrap();
    })
}

fn poem_feed(
    listener: TcpListener,
    live: Live,
    layer: SseLayer,
    shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    use poem::{
        Body, EndpointExt, Request, Response, Route, Server, get, handler, listener::TcpAcceptor,
        web::Data,
    };
    use tower_sse_poem::SseMiddleware;

    #[derive(Clone)]
    struct Source(Live);

    #[handler]
    fn feed(live: Data<&Source>, req: &Request) -> Response {
        Response::builder()
            .content_type("text/event-stream")
            .body(Body::from_bytes_stream((live.0.0)(topics_of(
                req.uri().query(),
            ))))
    }

    let app = Route::new()
        .at("/feed", get(feed))
        .data(Source(live))
        .with(SseMiddleware::new(layer));
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, shutdown.triggered(), None)
            .await
            .unwrap();
    })
}
