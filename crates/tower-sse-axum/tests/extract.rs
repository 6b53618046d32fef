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

fn request(uri: &str, last_event_id: Option<&str>) -> Request<Body> {
    let mut request = Request::get(uri);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    request.body(Body::empty()).unwrap()
}

/// The extractor returns what the layer decided, whatever its settings; without the layer,
/// what the defaults give.
#[tokio::test]
async fn extractor_agrees_with_the_layer() {
    let plain = Router::new().route("/", get(echo));
    let layered = |layer: SseLayer| plain.clone().layer(layer);
    // (layer, uri, header, without the layer, with it)
    let cases: [(SseLayer, &str, Option<&str>, &str, &str); 7] = [
        (SseLayer::new(), "/", None, "None false", "None false"),
        (
            SseLayer::new(),
            "/",
            Some("7"),
            "Some(\"7\") true",
            "Some(\"7\") true",
        ),
        (
            SseLayer::new(),
            "/?lastEventId=8",
            None,
            "Some(\"8\") true",
            "Some(\"8\") true",
        ),
        // Query fallback off: the parameter means nothing to the layer, so nothing to the
        // extractor either.
        (
            SseLayer::new().last_event_id_query(None),
            "/?lastEventId=42",
            None,
            "Some(\"42\") true",
            "None false",
        ),
        (
            SseLayer::new().last_event_id_query(None),
            "/?lastEventId=42",
            Some("7"),
            "Some(\"7\") true",
            "Some(\"7\") true",
        ),
        // Another name.
        (
            SseLayer::new().last_event_id_query(Some("cursor")),
            "/?lastEventId=8&cursor=9",
            None,
            "Some(\"8\") true",
            "Some(\"9\") true",
        ),
        // Another length limit: invalid for the layer, so invalid (never valid) here.
        (
            SseLayer::new().max_last_event_id_len(4),
            "/",
            Some("12345"),
            "Some(\"12345\") true",
            "None true",
        ),
    ];
    for (layer, uri, header, without_layer, with_layer) in cases {
        assert_eq!(
            call(plain.clone(), request(uri, header)).await,
            without_layer,
            "{uri} {header:?}"
        );
        assert_eq!(
            call(layered(layer), request(uri, header)).await,
            with_layer,
            "{uri} {header:?}"
        );
    }
    // An invalid header never rejects.
    let invalid = Request::get("/")
        .header("last-event-id", &b"\xff"[..])
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(plain.clone(), invalid).await, "None true");
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

/// `Events` encodes each event; an `Err` item ends the body with an error, never skipped.
#[tokio::test]
async fn events_encode_and_an_error_ends_the_body() {
    use axum::response::IntoResponse;
    use tower_sse_axum::Events;

    let items = futures_util::stream::iter([
        Ok(Event::new().id("1").unwrap().data("a")),
        Err(std::io::Error::other("upstream failed")),
        Ok(Event::new().data("never sent")),
    ]);
    let response = Events::new(items).into_response();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let frame = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&frame[..], b"id: 1\ndata: a\n\n");
    let error = body.frame().await.unwrap().unwrap_err();
    assert!(error.to_string().contains("upstream failed"), "{error}");
}
