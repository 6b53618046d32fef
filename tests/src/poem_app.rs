//! The routes on poem, through `tower-sse-poem`, with poem's `Compression` inside the
//! middleware (so the suite also proves that compression does not hold events back).

use futures_util::TryStreamExt;
use poem::{
    Body, EndpointExt, IntoResponse, Request, Response, Route, Server, get, handler,
    listener::{Acceptor, TcpAcceptor},
    middleware::Compression,
    web::Data,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tower_sse_poem::{
    Events, Hub, HubRejection, HubStream, LastEventId, ShutdownSignal, SseMiddleware, query_topics,
    request_head,
};

#[handler]
async fn topics(hub: Data<&Hub>, last: LastEventId, req: &Request) -> poem::Result<HubStream> {
    let head = request_head(req);
    let topics = query_topics(req.uri().query(), "topic", crate::MAX_TOPIC_PARAMS);
    let topics = topics.iter().map(String::as_str);
    let subscription = hub
        .subscribe_request(&head, topics, last.log_cursor())
        .await;
    Ok(HubStream(subscription.map_err(HubRejection::from)?))
}

#[handler]
async fn hub_stream(hub: Data<&Hub>, last: LastEventId) -> poem::Result<HubStream> {
    let subscription = hub.subscribe(crate::TOPIC, last.log_cursor()).await;
    subscription
        .map(HubStream)
        .map_err(poem::error::ServiceUnavailable)
}

#[handler]
fn parts() -> Response {
    Response::builder()
        .content_type("text/event-stream")
        .body(Body::from_bytes_stream(
            crate::parts().map_err(std::io::Error::other),
        ))
}

#[handler]
fn own_events() -> impl IntoResponse {
    Events::new(crate::own_events())
}

#[handler]
fn plain() -> impl IntoResponse {
    "hello"
}

pub(crate) fn spawn(listener: TcpListener, hub: Hub, shutdown: ShutdownSignal) -> JoinHandle<()> {
    let app = Route::new()
        .at("/hub", get(hub_stream))
        .at("/topics", get(topics))
        .at("/parts", get(parts))
        .at("/plain", get(plain))
        .at("/events", get(own_events))
        .data(hub)
        .with(Compression::new())
        .with(SseMiddleware::new(crate::layer(&shutdown)));
    let acceptor = TcpAcceptor::from_tokio(listener).unwrap();
    let _ = acceptor.local_addr();
    tokio::spawn(async move {
        Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(app, shutdown.triggered(), None)
            .await
            .unwrap();
    })
}
