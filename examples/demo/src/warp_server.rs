//! The demo on warp, through `tower-sse-warp`.

use bytes::Bytes;
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_sse_warp::{
    ClientCursor, EventStream, EventStreamService, ShutdownSignal, SseLayer,
    warp::{
        self, Filter, Reply,
        http::{HeaderMap, Method, Uri, request::Parts},
    },
};

use crate::{app, topics};

/// The request head at `path`, as the hub's authorization hook sees it.
fn head(
    path: &'static str,
) -> impl Filter<Extract = (Parts,), Error = std::convert::Infallible> + Clone {
    let raw_query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    warp::method()
        .and(warp::header::headers_cloned())
        .and(raw_query)
        .map(
            move |method: Method, headers: HeaderMap, query: Option<String>| {
                let uri = match query {
                    Some(query) => format!("{path}?{query}"),
                    None => path.to_owned(),
                };
                let uri = uri.parse().unwrap_or_else(|_| Uri::from_static(path));
                topics::head(method, uri, headers)
            },
        )
}

fn refused(refusal: topics::Refusal) -> warp::reply::Response {
    warp::reply::with_status(refusal.message, refusal.status).into_response()
}

pub(crate) async fn serve(
    listener: TcpListener,
    hub: app::DemoHub,
    layer: SseLayer,
    shutdown: ShutdownSignal,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let index = warp::path::end().map(|| warp::reply::html(app::INDEX_HTML));
    let events = warp::path!("events")
        .and(tower_sse_warp::client_cursor())
        .and(head("/events"))
        .then({
            let hub = hub.clone();
            move |cursor: ClientCursor, head: Parts| {
                let hub = hub.clone();
                async move {
                    match topics::subscribe(&hub, &head, cursor.log_cursor()).await {
                        Ok(subscription) => EventStream::from(subscription).into_response(),
                        Err(refusal) => refused(refusal),
                    }
                }
            }
        });
    let plain = warp::path!("plain").map(|| "plain text, untouched by the layer\n");
    let metrics = warp::path!("metrics").map(|| {
        let body = crate::telemetry::render();
        warp::reply::with_header(body, "content-type", crate::telemetry::METRICS_CONTENT_TYPE)
            .into_response()
    });
    let dashboard =
        warp::path!("dashboard").map(|| warp::reply::html(crate::telemetry::DASHBOARD_HTML));
    let dashboard_js = warp::path!("dashboard.js").map(|| {
        let script = crate::telemetry::DASHBOARD_JS;
        warp::reply::with_header(script, "content-type", "text/javascript; charset=utf-8")
            .into_response()
    });
    let publish = warp::path!("publish")
        .and(warp::post())
        .and(head("/publish"))
        .and(warp::body::bytes())
        .then(move |head: Parts, body: Bytes| {
            let hub = hub.clone();
            async move {
                match topics::publish(&hub, &head, &body).await {
                    Ok(json) => warp::reply::with_header(json, "content-type", "application/json")
                        .into_response(),
                    Err(refusal) => refused(refusal),
                }
            }
        });
    let routes = warp::get()
        .and(
            index
                .or(events)
                .or(plain)
                .or(metrics)
                .or(dashboard)
                .or(dashboard_js),
        )
        .or(publish);
    if let Some(acceptor) = tls {
        // The stack `tower_sse_warp::serve` builds, over TLS.
        let service = layer.layer(EventStreamService::new(warp::service(routes)));
        let make = |_| hyper_util::service::TowerToHyperService::new(service.clone());
        return crate::tls::serve(listener, acceptor, make, shutdown.triggered()).await;
    }
    tower_sse_warp::serve(routes, layer, listener, shutdown.triggered()).await
}
