//! The extractor with and without the layer, and a Hub subscription as a response.

use axum::{Router, body::Body, extract::State, http::Request, routing::get};
use http_body_util::BodyExt;
use tower::ServiceExt;
use tower_sse_axum::{Event, Hub, HubStream, LastEventId, SseLayer};

async fn echo(last: LastEventId) -> String {
    format!("{:?} {:?}", last.as_str(), last.log_cursor().is_some())
}

async fn call(app: Router, request: Request<Body>) -> String {
    let response = app.oneshot(request).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn absent_valid_and_invalid_never_reject() {
    let plain = Router::new().route("/", get(echo));
    let layered = plain
        .clone()
        .layer(SseLayer::new().last_event_id_query(Some("cursor")));
    let cases = [
        (
            Request::get("/").body(Body::empty()),
            "None false",
            "None false",
        ),
        (
            Request::get("/")
                .header("last-event-id", "7")
                .body(Body::empty()),
            "Some(\"7\") true",
            "Some(\"7\") true",
        ),
        (
            Request::get("/")
                .header("last-event-id", &b"\xff"[..])
                .body(Body::empty()),
            "None true",
            "None true",
        ),
        // The layer's setting wins when it is there.
        (
            Request::get("/?lastEventId=8&cursor=9").body(Body::empty()),
            "Some(\"8\") true",
            "Some(\"9\") true",
        ),
    ];
    for (request, without_layer, with_layer) in cases {
        let request = request.unwrap();
        let mut copy = Request::get(request.uri().clone())
            .body(Body::empty())
            .unwrap();
        *copy.headers_mut() = request.headers().clone();
        assert_eq!(call(plain.clone(), request).await, without_layer);
        assert_eq!(call(layered.clone(), copy).await, with_layer);
    }
}

#[tokio::test]
async fn hub_stream_is_an_event_stream_that_resumes() {
    let hub = Hub::new();
    let first = hub.publish("t", &Event::new().data("one")).await.unwrap();
    hub.publish("t", &Event::new().data("two")).await.unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|State(hub): State<Hub>, last: LastEventId| async move {
                HubStream(hub.subscribe("t", last.log_cursor()).await.unwrap())
            }),
        )
        .with_state(hub);
    let request = Request::get("/")
        .header("last-event-id", first.id())
        .body(Body::empty());
    let response = app.oneshot(request.unwrap()).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(frame.ends_with(b"data: two\n\n"), "{frame:?}");
}
