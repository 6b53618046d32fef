//! The demo on poem, through `tower-sse-poem`, with poem's `Compression` inside the SSE
//! middleware: event streams go out uncompressed and at once, the page is compressed.

use poem::{
    Body, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler,
    http::StatusCode,
    listener::TcpAcceptor,
    middleware::Compression,
    post,
    web::{Data, Html},
};
use std::{convert::Infallible, net::SocketAddr, sync::Arc};

use hyper::body::Incoming;
use poem::{
    Endpoint,
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
};
use tokio::net::TcpListener;
use tower_sse_poem::{HubStream, LastEventId, ShutdownSignal, SseLayer, SseMiddleware};

use crate::{app, topics};

#[handler]
fn index() -> Html<&'static str> {
    Html(app::INDEX_HTML)
}

/// The request head, as the hub's authorization hook sees it.
fn head(req: &Request) -> poem::http::request::Parts {
    topics::head(
        req.method().clone(),
        req.uri().clone(),
        req.headers().clone(),
    )
}

#[handler]
async fn events(hub: Data<&app::DemoHub>, last: LastEventId, req: &Request) -> Response {
    match topics::subscribe(&hub, &head(req), last.log_cursor()).await {
        Ok(subscription) => HubStream(subscription).into_response(),
        Err(refusal) => (refusal.status, refusal.message).into_response(),
    }
}

#[handler]
async fn publish(hub: Data<&app::DemoHub>, req: &Request, body: Body) -> Response {
    let body = match body.into_bytes().await {
        Ok(body) => body,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("cannot read the body: {e}\n"),
            )
                .into_response();
        }
    };
    match topics::publish(&hub, &head(req), &body).await {
        Ok(json) => Response::builder()
            .content_type("application/json")
            .body(json),
        Err(refusal) => (refusal.status, refusal.message).into_response(),
    }
}

#[handler]
fn plain() -> &'static str {
    "plain text, untouched by the layer\n"
}

#[handler]
fn metrics() -> Response {
    Response::builder()
        .content_type(crate::telemetry::METRICS_CONTENT_TYPE)
        .body(crate::telemetry::render())
}

#[handler]
fn dashboard() -> Html<&'static str> {
    Html(crate::telemetry::DASHBOARD_HTML)
}

#[handler]
fn dashboard_js() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .body(crate::telemetry::DASHBOARD_JS)
}

pub(crate) async fn serve(
    listener: TcpListener,
    hub: app::DemoHub,
    layer: SseLayer,
    shutdown: ShutdownSignal,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let app = Route::new()
        .at("/", get(index))
        .at("/events", get(events))
        .at("/publish", post(publish))
        .at("/plain", get(plain))
        .at("/metrics", get(metrics))
        .at("/dashboard.js", get(dashboard_js))
        .at("/dashboard", get(dashboard))
        .data(hub)
        .with(Compression::new())
        .with(SseMiddleware::new(layer));
    if let Some(acceptor) = tls {
        let local = listener.local_addr()?;
        // poem's endpoint (middleware included) as a hyper service, the way poem's own
        // server calls it: the request converted with its addresses and scheme.
        let app = Arc::new(app.map_to_response());
        let make = |peer: SocketAddr| {
            let app = Arc::clone(&app);
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let app = Arc::clone(&app);
                async move {
                    let request = Request::from((
                        request,
                        LocalAddr(local.into()),
                        RemoteAddr(peer.into()),
                        Scheme::HTTPS,
                    ));
                    let response = app.get_response(request).await;
                    Ok::<_, Infallible>(hyper::Response::from(response))
                }
            })
        };
        return crate::tls::serve(listener, acceptor, make, shutdown.triggered()).await;
    }
    Server::new_with_acceptor(TcpAcceptor::from_tokio(listener)?)
        .run_with_graceful_shutdown(app, shutdown.triggered(), None)
        .await
}
