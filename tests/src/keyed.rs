//! The server of the layer-replay scenario: the [`SseLayer`] resumes streams itself
//! ([`SseLayer::replay`]) from a topic derived from a request header
//! ([`SseLayer::stream_key`]), on each framework through its adapter.
//!
//! `GET /feed` with `X-Tenant: NAME` streams the live events of the topic
//! [`tenant_topic`]`(NAME)`: the handler reads the header with its framework's own extractor
//! and subscribes to the [`Hub`] with no cursor; whatever a reconnecting client missed comes
//! from the layer, read from the log the hub appends to, under the key the layer computed
//! from the same header.

use std::{net::SocketAddr, sync::Arc};

use tokio::{net::TcpListener, task::JoinHandle};
use tower_sse::{Hub, ShutdownSignal, SseLayer};
use tower_sse_core::MemoryLog;

use crate::{Client, Framework, NETWORK};

/// The request header the stream key is derived from.
pub const TENANT_HEADER: &str = "x-tenant";

/// The topic of a tenant: what the layer's `stream_key` and every handler use.
pub fn tenant_topic(tenant: Option<&str>) -> String {
    format!("tenant/{}", tenant.unwrap_or("none"))
}

/// The layer of the keyed server: the suite's [`layer`](crate::layer), resuming from `log`
/// under the topic named by [`TENANT_HEADER`].
pub fn keyed_layer(log: Arc<MemoryLog>, shutdown: &ShutdownSignal) -> SseLayer {
    crate::layer(shutdown).replay(log).stream_key(|parts| {
        let tenant = parts.headers.get(TENANT_HEADER);
        tenant_topic(tenant.and_then(|value| value.to_str().ok()))
    })
}

/// A server of one framework whose layer replays by a header-derived key.
#[derive(Debug)]
pub struct KeyedServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The hub the handlers subscribe to; its log is the one the layer replays from.
    pub hub: Hub<Arc<MemoryLog>>,
    shutdown: ShutdownSignal,
    task: JoinHandle<()>,
}

impl KeyedServer {
    /// Starts `framework`'s keyed server on 127.0.0.1 with a fresh log.
    pub async fn start(framework: Framework) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(MemoryLog::new());
        let hub = Hub::with_log(Arc::clone(&log));
        let shutdown = ShutdownSignal::new();
        let layer = keyed_layer(log, &shutdown);
        let task = match framework {
            Framework::Axum => axum_feed(listener, hub.clone(), layer, shutdown.clone()),
            Framework::Warp => warp_feed(listener, hub.clone(), layer, shutdown.clone()),
            Framework::Poem => poem_feed(listener, hub.clone(), layer, shutdown.clone()),
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

    /// Publishes `data` under `tenant`'s topic; the id the log assigned.
    pub async fn publish(&self, tenant: &str, data: &str) -> String {
        let event = tower_sse_core::Event::new().data(data);
        let logged = self.hub.publish(&tenant_topic(Some(tenant)), &event).await;
        logged.unwrap().id().to_owned()
    }
}

impl Drop for KeyedServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
        self.task.abort();
    }
}

/// The live subscription every framework's handler returns.
async fn live(hub: &Hub<Arc<MemoryLog>>, tenant: Option<&str>) -> tower_sse::Subscription {
    let topic = tenant_topic(tenant);
    tokio::time::timeout(NETWORK, hub.subscribe(&topic, None))
        .await
        .expect("subscribed in time")
        .expect("the memory log does not fail")
}

fn axum_feed(
    listener: TcpListener,
    hub: Hub<Arc<MemoryLog>>,
    layer: SseLayer,
    shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    use axum::{Router, extract::State, http::HeaderMap, routing::get};
    use tower_sse_axum::HubStream;

    async fn feed(State(hub): State<Hub<Arc<MemoryLog>>>, headers: HeaderMap) -> HubStream {
        let tenant = headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok());
        HubStream(live(&hub, tenant).await)
    }

    let app = Router::new()
        .route("/feed", get(feed))
        .with_state(hub)
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
    hub: Hub<Arc<MemoryLog>>,
    layer: SseLayer,
    shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    use tower_sse_warp::{EventStream, warp::Filter};

    let feed = warp::path!("feed")
        .and(warp::get())
        .and(warp::header::optional::<String>(TENANT_HEADER))
        .then(move |tenant: Option<String>| {
            let hub = hub.clone();
            async move { EventStream::from(live(&hub, tenant.as_deref()).await) }
        });
    tokio::spawn(async move {
        tower_sse_warp::serve(feed, layer, listener, shutdown.triggered())
            .await
            .unwrap();
    })
}

fn poem_feed(
    listener: TcpListener,
    hub: Hub<Arc<MemoryLog>>,
    layer: SseLayer,
    shutdown: ShutdownSignal,
) -> JoinHandle<()> {
    use poem::{
        EndpointExt, Route, Server, get, handler, http::HeaderMap, listener::TcpAcceptor, web::Data,
    };
    use tower_sse_poem::{HubStream, SseMiddleware};

    #[handler]
    async fn feed(hub: Data<&Hub<Arc<MemoryLog>>>, headers: &HeaderMap) -> HubStream {
        let tenant = headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok());
        HubStream(live(&hub, tenant).await)
    }

    let app = Route::new()
        .at("/feed", get(feed))
        .data(hub)
        .with(SseMiddleware::new(layer));
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, shutdown.triggered(), None)
            .await
            .unwrap();
    })
}
