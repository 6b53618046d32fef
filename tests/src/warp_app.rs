//! The routes on warp, through `tower-sse-warp`.

use tokio::{net::TcpListener, task::JoinHandle};
use tower_sse_warp::{
    ClientCursor, EventStream, Hub, HubRejection, ShutdownSignal, query_topics,
    warp::{Filter, Reply},
};

pub(crate) fn spawn(listener: TcpListener, hub: Hub, shutdown: ShutdownSignal) -> JoinHandle<()> {
    let topics = warp::path!("topics")
        .and(tower_sse_warp::client_cursor())
        .and(tower_sse_warp::request_head())
        .then({
            let hub = hub.clone();
            move |cursor: ClientCursor, head: http::request::Parts| {
                let hub = hub.clone();
                async move {
                    let topics = query_topics(head.uri.query(), "topic", crate::MAX_TOPIC_PARAMS);
                    let topics = topics.iter().map(String::as_str);
                    match hub
                        .subscribe_request(&head, topics, cursor.log_cursor())
                        .await
                    {
                        Ok(subscription) => EventStream::from(subscription).into_response(),
                        Err(error) => HubRejection::from(error).into_response(),
                    }
                }
            }
        });
    let hub_route = warp::path!("hub")
        .and(tower_sse_warp::client_cursor())
        .then(move |cursor: ClientCursor| {
            let hub = hub.clone();
            async move {
                let subscription = hub.subscribe(crate::TOPIC, cursor.log_cursor()).await;
                EventStream::from(subscription.expect("the memory log does not fail"))
            }
        });
    let parts = warp::path!("parts").map(|| EventStream::from_stream(crate::parts()));
    let plain = warp::path!("plain").map(|| "hello");
    let events = warp::path!("events").map(|| EventStream::from_events(crate::own_events()));
    let routes = warp::get().and(hub_route.or(topics).or(parts).or(plain).or(events));
    let layer = crate::layer(&shutdown);
    tokio::spawn(async move {
        tower_sse_warp::serve(routes, layer, listener, shutdown.triggered())
            .await
            .unwrap();
    })
}
