//! The demo on axum, through `tower-sse-axum`.

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{header::CONTENT_TYPE, request::Parts},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use tokio::net::TcpListener;
use tower_sse_axum::{HubStream, LastEventId, ShutdownSignal, SseLayer};

use crate::{app, topics};

async fn index() -> Html<&'static str> {
    Html(app::INDEX_HTML)
}

async fn events(State(hub): State<app::DemoHub>, last: LastEventId, head: Parts) -> Response {
    match topics::subscribe(&hub, &head, last.log_cursor()).await {
        Ok(subscription) => HubStream(subscription).into_response(),
        Err(refusal) => (refusal.status, refusal.message).into_response(),
    }
}

pub(crate) async fn publish(State(hub): State<app::DemoHub>, head: Parts, body: Bytes) -> Response {
    match topics::publish(&hub, &head, &body).await {
        Ok(json) => ([(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(refusal) => (refusal.status, refusal.message).into_response(),
    }
}

async fn plain() -> &'static str {
    "plain text, untouched by the layer\n"
}

async fn metrics() -> Response {
    let body = crate::telemetry::render();
    (
        [(CONTENT_TYPE, crate::telemetry::METRICS_CONTENT_TYPE)],
        body,
    )
        .into_response()
}

async fn dashboard_js() -> Response {
    let script = crate::telemetry::DASHBOARD_JS;
    ([(CONTENT_TYPE, "text/javascript; charset=utf-8")], script).into_response()
}

pub(crate) async fn serve(
    listener: TcpListener,
    hub: app::DemoHub,
    layer: SseLayer,
    shutdown: ShutdownSignal,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(index))
        .route("/events", get(events))
        .route("/publish", post(publish))
        .route("/plain", get(plain))
        .route("/metrics", get(metrics))
        .route("/dashboard.js", get(dashboard_js))
        .route(
            "/dashboard",
            get(|| async { Html(crate::telemetry::DASHBOARD_HTML) }),
        )
        .with_state(hub)
        .layer(layer);
    if let Some(acceptor) = tls {
        // The router (layer included) is a tower service; hyper-util adapts it.
        let make = |_| hyper_util::service::TowerToHyperService::new(app.clone());
        return crate::tls::serve(listener, acceptor, make, shutdown.triggered()).await;
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.triggered())
        .await
}
