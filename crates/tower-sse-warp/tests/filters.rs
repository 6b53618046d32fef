//! The filters return what the layer decided, whatever its settings.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use tower::{Layer, ServiceExt};
use tower_sse_warp::{ClientCursor, SseLayer, warp::Filter};

fn request(uri: &str, header: Option<&str>) -> Request<Empty<Bytes>> {
    let mut request = Request::get(uri);
    if let Some(id) = header {
        request = request.header("last-event-id", id);
    }
    request.body(Empty::new()).unwrap()
}

fn route() -> impl Filter<Extract = (String,), Error = std::convert::Infallible> + Clone {
    tower_sse_warp::client_cursor()
        .and(tower_sse_warp::last_event_id())
        .map(
            |cursor: ClientCursor, last: Option<tower_sse_warp::ValidLastEventId>| {
                assert_eq!(cursor.last_event_id(), last.as_ref());
                format!("{:?} {:?}", cursor.as_str(), cursor.log_cursor().is_some())
            },
        )
}

async fn body(
    response: http::Response<impl http_body::Body<Data = Bytes, Error: std::fmt::Debug>>,
) -> String {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn filters_agree_with_the_layer() {
    // (layer, uri, header, without the layer, with it)
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
        let plain = warp::service(route());
        let response = plain.oneshot(request(uri, header)).await.unwrap();
        assert_eq!(body(response).await, without, "{uri} {header:?}");
        let layered = layer.layer(warp::service(route()));
        let response = layered.oneshot(request(uri, header)).await.unwrap();
        assert_eq!(body(response).await, with, "{uri} {header:?}");
    }
}
