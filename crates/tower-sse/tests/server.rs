//! Through real hyper servers on 127.0.0.1: headers over HTTP/1.1 and HTTP/2, client
//! disconnects, and axum's graceful shutdown.

mod common;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use common::{ChannelBody, Script, channel, decode, event_stream};
use http::{
    Request, Response, Version,
    header::{CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING},
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::mpsc,
    time::timeout,
};
use tower::{Layer, service_fn};
use tower_sse::{ShutdownSignal, SseLayer};

/// Generous bound for anything that waits on the network.
const NETWORK: Duration = Duration::from_secs(10);

/// Serves `layer` around a handler that answers every request with an event stream fed by a
/// fresh [`Script`] (sent to the test through the returned channel), on HTTP/1.1 and HTTP/2.
async fn serve(
    layer: SseLayer,
    guard: Option<Arc<AtomicBool>>,
) -> (SocketAddr, mpsc::UnboundedReceiver<Script>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (scripts_tx, scripts) = mpsc::unbounded_channel();
    let handler = service_fn(move |_request: Request<Incoming>| {
        let (script, body) = channel();
        let body: ChannelBody = match &guard {
            Some(flag) => body.with_guard(Arc::clone(flag)),
            None => body,
        };
        scripts_tx.send(script).unwrap();
        async move { Ok::<_, Infallible>(event_stream(body)) }
    });
    let service = layer.layer(handler);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, scripts)
}

type Client = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn http1_client(addr: SocketAddr) -> (Client, tokio::task::JoinHandle<()>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, connection)
}

fn get(version: Version) -> Request<Empty<Bytes>> {
    Request::builder()
        .uri("http://localhost/events")
        .version(version)
        .body(Empty::new())
        .unwrap()
}

async fn next_data(body: &mut Incoming) -> Bytes {
    let frame = timeout(NETWORK, body.frame()).await.expect("frame in time");
    frame.unwrap().unwrap().into_data().unwrap()
}

/// Reads to the end of the body, which must hold no more data.
async fn assert_ends(body: &mut Incoming) {
    let rest = timeout(NETWORK, body.collect())
        .await
        .expect("body ended in time");
    assert_eq!(rest.unwrap().to_bytes(), "");
}

fn assert_event_stream_headers(response: &Response<Incoming>) {
    let headers = response.headers();
    assert_eq!(headers[CONTENT_TYPE], "text/event-stream");
    assert_eq!(headers[CACHE_CONTROL], "no-cache");
    assert_eq!(headers["x-accel-buffering"], "no");
    assert!(!headers.contains_key(CONTENT_LENGTH), "{headers:?}");
    assert!(!headers.contains_key(CONNECTION), "{headers:?}");
    assert!(!headers.contains_key("keep-alive"), "{headers:?}");
}

#[tokio::test]
async fn http1_headers_priming_and_events() {
    let layer = SseLayer::new().retry(Duration::from_secs(2));
    let (addr, mut scripts) = serve(layer, None).await;
    let (mut client, _connection) = http1_client(addr).await;
    let mut response = client.send_request(get(Version::HTTP_11)).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_11);
    assert_event_stream_headers(&response);
    assert_eq!(response.headers()[TRANSFER_ENCODING], "chunked");

    // The priming frame arrives before the handler has written anything.
    let body = response.body_mut();
    assert_eq!(next_data(body).await, "retry: 2000\n\n");
    let script = scripts.recv().await.unwrap();
    script.data("id: 1\ndata: hello\n\n");
    let event = next_data(body).await;
    assert_eq!(
        decode(&event),
        [("message".into(), "hello".into(), "1".into())]
    );
    drop(script);
    assert_ends(body).await;
}

#[tokio::test]
async fn http2_headers_priming_and_events() {
    let (addr, mut scripts) = serve(SseLayer::new(), None).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut response = client.send_request(get(Version::HTTP_2)).await.unwrap();
    assert_eq!(response.version(), Version::HTTP_2);
    assert_event_stream_headers(&response);

    let body = response.body_mut();
    assert_eq!(next_data(body).await, ":\n\n");
    let script = scripts.recv().await.unwrap();
    script.data("event: greet\ndata: hi\n\n");
    assert_eq!(
        decode(&next_data(body).await),
        [("greet".into(), "hi".into(), "".into())]
    );
    drop(script);
    assert_ends(body).await;
}

#[tokio::test]
async fn a_client_disconnect_drops_the_handler_body() {
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let dropped = Arc::new(AtomicBool::new(false));
        // A short heartbeat makes the server write, and so notice the closed socket, soon.
        let layer = SseLayer::new().heartbeat(Duration::from_millis(100));
        let (addr, mut scripts) = serve(layer, Some(Arc::clone(&dropped))).await;

        let stream = TcpStream::connect(addr).await.unwrap();
        let connection = if version == Version::HTTP_2 {
            let (mut client, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .unwrap();
            let connection = tokio::spawn(async move {
                let _ = connection.await;
            });
            let mut response = client.send_request(get(version)).await.unwrap();
            assert_eq!(next_data(response.body_mut()).await, ":\n\n");
            drop((client, response));
            connection
        } else {
            let (mut client, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            let connection = tokio::spawn(async move {
                let _ = connection.await;
            });
            let mut response = client.send_request(get(version)).await.unwrap();
            assert_eq!(next_data(response.body_mut()).await, ":\n\n");
            drop((client, response));
            connection
        };
        // Close the TCP connection from the client side.
        connection.abort();
        let _ = connection.await;

        let script = scripts.recv().await.unwrap();
        let waited = timeout(NETWORK, async {
            while !dropped.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "{version:?}: the handler's body outlived the connection"
        );
        drop(script);
    }
}

#[tokio::test]
async fn axum_graceful_shutdown_completes_with_open_streams() {
    let shutdown = ShutdownSignal::new();
    let layer = SseLayer::new()
        .shutdown(shutdown.clone())
        .final_event(tower_sse::Event::new().data("bye"));
    let (scripts_tx, mut scripts) = mpsc::unbounded_channel();
    let app = axum::Router::new()
        .route(
            "/events",
            axum::routing::get(move || {
                let (script, body) = channel();
                scripts_tx.send(script).unwrap();
                async move { event_stream(axum::body::Body::new(body)) }
            }),
        )
        .layer(layer);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.triggered())
            .into_future(),
    );

    let mut clients = Vec::new();
    for _ in 0..2 {
        let (mut client, _connection) = http1_client(addr).await;
        let mut response = client.send_request(get(Version::HTTP_11)).await.unwrap();
        assert_eq!(next_data(response.body_mut()).await, ":\n\n");
        clients.push((client, response, _connection));
    }
    let first = scripts.recv().await.unwrap();
    let _second = scripts.recv().await.unwrap();
    let (_, mut second, _) = clients.pop().unwrap();
    let (_, mut first_response, _) = clients.pop().unwrap();
    // One stream is in the middle of an event, the other between events.
    first.data("data: half");
    let half = next_data(first_response.body_mut()).await;
    assert_eq!(half, "data: half");

    shutdown.trigger();
    // The stream that was between events ends at once, with the final event only.
    let rest = timeout(NETWORK, second.body_mut().collect())
        .await
        .expect("ended in time");
    assert_eq!(
        decode(&rest.unwrap().to_bytes()),
        [("message".into(), "bye".into(), "".into())]
    );
    // The other one ends once its event is complete.
    first.data(" done\n\ndata: not sent\n\n");
    let rest = timeout(NETWORK, first_response.body_mut().collect())
        .await
        .expect("ended in time");
    let mut bytes = half.to_vec();
    bytes.extend_from_slice(&rest.unwrap().to_bytes());
    let data: Vec<String> = decode(&bytes)
        .into_iter()
        .map(|(_, data, _)| data)
        .collect();
    assert_eq!(data, ["half done", "bye"]);
    timeout(NETWORK, server)
        .await
        .expect("axum::serve finished its graceful shutdown")
        .unwrap()
        .unwrap();
}
