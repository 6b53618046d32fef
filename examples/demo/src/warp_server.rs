//! The demo on warp, through `tower-sse-warp`.

use bytes::Bytes;
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_sse_warp::{
    ClientCursor, EventStream, EventStreamService, ShutdownSignal, SseLayer,
    warp::{self, Filter, Reply, http::StatusCode},
};

use crate::app;

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
        .then({
            let hub = hub.clone();
            move |cursor: ClientCursor| {
                let hub = hub.clone();
                async move {
                    match hub.subscribe(app::TOPIC, cursor.log_cursor()).await {
                        Ok(subscription) => EventStream::from(subscription).into_response(),
                        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
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
    let raw_query = warp::query::raw()
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    let publish = warp::path!("publish")
        .and(warp::post())
        .and(raw_query)
        .and(warp::body::bytes())
        .then(move |query: Option<String>, body: Bytes| {
            let hub = hub.clone();
            async move {
                match app::publish(&hub, query.as_deref(), &body).await {
                    Ok(json) => warp::reply::with_header(json, "content-type", "application/json")
                        .into_response(),
                    Err(e) => warp::reply::with_status(
                        e.message,
                        StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                    )
                    .into_response(),
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
