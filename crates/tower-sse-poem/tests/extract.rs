//! The extractor returns what the middleware's layer decided, whatever its settings.

use poem::{Endpoint, EndpointExt, IntoResponse, Request, get, handler, http::Uri};
use tower_sse_poem::{LastEventId, SseLayer, SseMiddleware};

#[handler]
fn echo(last: LastEventId) -> String {
    format!("{:?} {:?}", last.as_str(), last.log_cursor().is_some())
}

async fn call(ep: impl Endpoint, uri: &str, header: Option<&str>) -> String {
    let mut request = Request::builder().uri(uri.parse::<Uri>().unwrap());
    if let Some(id) = header {
        request = request.header("last-event-id", id);
    }
    let response = ep.call(request.finish()).await.unwrap().into_response();
    response.into_body().into_string().await.unwrap()
}

#[tokio::test]
async fn extractor_agrees_with_the_layer() {
    // (layer, uri, header, without the middleware, with it)
    let cases: [(SseLayer, &str, Option<&str>, &str, &str); 6] = [
        (SseLayer::new(), "/", None, "None false", "None false"),
        (
            SseLayer::new(),
            "/?lastEventId=8",
            None,
            "Some(\"8\") true",
            "Some(\"8\") true",
        ),
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
        (
            SseLayer::new().last_event_id_query(Some("cursor")),
            "/?lastEventId=8&cursor=9",
            None,
            "Some(\"8\") true",
            "Some(\"9\") true",
        ),
        (
            SseLayer::new().max_last_event_id_len(4),
            "/",
            Some("12345"),
            "Some(\"12345\") true",
            "None true",
        ),
    ];
    for (layer, uri, header, without, with) in cases {
        let plain = get(echo);
        assert_eq!(call(plain, uri, header).await, without, "{uri} {header:?}");
        let layered = get(echo).with(SseMiddleware::new(layer));
        assert_eq!(call(layered, uri, header).await, with, "{uri} {header:?}");
    }
}
