//! The routes on axum, through `tower-sse-axum`.

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{StatusCode, header::CONTENT_TYPE, request::Parts},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tower_sse_axum::{
    Events, Hub, HubRejection, HubStream, LastEventId, ShutdownSignal, query_topics,
};

async fn topics(
    State(hub): State<Hub>,
    last: LastEventId,
    head: Parts,
) -> Result<HubStream, HubRejection> {
    let topics = query_topics(head.uri.query(), "topic", crate::MAX_TOPIC_PARAMS);
    let topics = topics.iter().map(String::as_str);
    Ok(HubStream(
        hub.subscribe_request(&head, topics, last.log_cursor())
            .await?,
    ))
}

async fn hub(State(hub): State<Hub>, last: LastEventId) -> Result<HubStream, StatusCode> {
    let subscription = hub.subscribe(crate::TOPIC, last.log_cursor()).await;
    subscription
        .map(HubStream)
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn parts() -> Response {
    (
        [(CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(crate::parts()),
    )
        .into_response()
}

async fn plain() -> &'static str {
    "hello"
}

pub(crate) fn spawn(listener: TcpListener, hub: Hub, shutdown: ShutdownSignal) -> JoinHandle<()> {
    let app = Router::new()
        .route("/hub", get(self::hub))
        .route("/topics", get(topics))
        .route("/parts", get(parts))
        .route("/plain", get(plain))
        .route(
            "/events",
            get(|| async { Events::new(crate::own_events()) }),
        )
        .with_state(hub)
        .layer(crate::layer(&shutdown));
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.triggered())
            .await
            .unwrap();
    })
}
