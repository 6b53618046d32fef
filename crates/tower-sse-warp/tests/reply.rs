//! An `EventStream` reply served without `EventStreamService` (plain `warp::service`, as
//! `warp::serve` does) still delivers its events; with it, its bytes as they are.

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::StreamExt;
use http::Request;
use http_body_util::{BodyExt, Empty};
use tower::ServiceExt;
use tower_sse_core::{Decoded, Decoder};
use tower_sse_warp::{EventStream, EventStreamService, warp::Filter};

const RAW: &str =
    "retry: 2000\n\n: a comment\nid: 7\nevent: tick\ndata: one\ndata: two\n\ndata: three\n\n";

fn route() -> impl Filter<Extract = (EventStream,), Error = Infallible> + Clone {
    warp::any().map(|| {
        // Split mid-line, so that the fallback has to join frames.
        let chunks = [&RAW[..20], &RAW[20..45], &RAW[45..]];
        EventStream::from_stream(futures_util::stream::iter(chunks).map(Ok::<_, Infallible>))
    })
}

fn decode(bytes: &[u8]) -> Vec<Decoded> {
    let mut decoder = Decoder::new();
    decoder.feed(bytes);
    decoder.finish();
    std::iter::from_fn(|| decoder.decode().unwrap()).collect()
}

async fn body(
    response: http::Response<impl http_body::Body<Data = Bytes, Error: std::fmt::Debug>>,
) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

#[tokio::test]
async fn plain_warp_service_delivers_the_events() {
    let request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
    let response = warp::service(route()).oneshot(request).await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let served = body(response).await;
    assert!(!served.is_empty());
    // The same events, re-encoded by warp.
    assert_eq!(decode(&served), decode(RAW.as_bytes()));
}

#[tokio::test]
async fn with_the_service_the_bytes_pass_as_they_are() {
    let request = Request::get("/").body(Empty::<Bytes>::new()).unwrap();
    let service = EventStreamService::new(warp::service(route()));
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(&body(response).await[..], RAW.as_bytes());
}
