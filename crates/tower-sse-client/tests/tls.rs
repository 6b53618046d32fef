//! The `rustls` feature over loopback TLS: a rustls server on 127.0.0.1 serves an axum route
//! through `SseLayer`; the client trusts only the test CA (`Builder::tls_config`) and reads
//! the stream over HTTP/2 or HTTP/1.1, as ALPN decides, through a reconnection that resumes
//! with `Last-Event-ID` and a 204 that ends it. Without the test CA, the handshake fails.
//!
//! The certificates are the demo's test-only ones (`examples/demo/tests/certs`): a throwaway
//! CA and a leaf for `localhost`, `127.0.0.1` and `::1`.

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{Router, body::Body, routing::get};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_sse::SseLayer;
use tower_sse_client::{Error, Event, EventSource, RetryPolicy};

const NETWORK: Duration = Duration::from_secs(20);

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo/tests/certs")
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Event 1 carries the HTTP version the server saw; the stream then ends, the client
/// resumes after id 2, and the server answers 204.
async fn events(request: Request<Body>) -> Response<Body> {
    let resumed = request.headers().get("last-event-id").is_some();
    if resumed {
        return Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Body::empty())
            .unwrap();
    }
    let wire = format!(
        "id: 1\ndata: {:?}\n\nid: 2\ndata: two\n\n",
        request.version()
    );
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(Body::from(Bytes::from(wire)))
        .unwrap()
}

/// A TLS server on 127.0.0.1 offering `alpn`; its port.
async fn serve(alpn: &[&[u8]]) -> u16 {
    let chain = CertificateDer::pem_file_iter(certs().join("ec-cert.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs().join("ec-pkcs8.key")).unwrap();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let app = Router::new()
        .route("/events", get(events))
        .layer(SseLayer::new().retry(Duration::from_millis(10)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return; // a client that refused the certificate
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), TowerToHyperService::new(app))
                    .await;
            });
        }
    });
    port
}

/// A client configuration that trusts the test CA only.
fn trusting_the_test_ca() -> ClientConfig {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs().join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Every message of the stream until it ends, with the errors on the way.
async fn read_all(port: u16) -> (Vec<(String, String)>, Vec<String>) {
    let mut source = EventSource::builder(format!("https://127.0.0.1:{port}/events"))
        .tls_config(trusting_the_test_ca())
        .build()
        .unwrap();
    let mut messages = Vec::new();
    let mut errors = Vec::new();
    let all = async {
        while let Some(item) = source.next().await {
            match item {
                Ok(Event::Message(m)) => messages.push((m.last_event_id().into(), m.data().into())),
                Ok(_) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
    };
    tokio::time::timeout(NETWORK, all)
        .await
        .expect("the stream ends with the 204");
    (messages, errors)
}

fn pairs(messages: &[(String, String)]) -> Vec<(&str, &str)> {
    messages
        .iter()
        .map(|(id, data)| (id.as_str(), data.as_str()))
        .collect()
}

#[tokio::test]
async fn http2_negotiated_by_alpn() {
    let port = serve(&[b"h2", b"http/1.1"]).await;
    let (messages, errors) = read_all(port).await;
    assert_eq!(pairs(&messages), [("1", "HTTP/2.0"), ("2", "two")]);
    // the end of the first response, then the 204 that closes the stream
    assert_eq!(errors, ["the server ended the stream"]);
}

#[tokio::test]
async fn http1_when_the_server_offers_only_http1() {
    let port = serve(&[b"http/1.1"]).await;
    let (messages, errors) = read_all(port).await;
    assert_eq!(pairs(&messages), [("1", "HTTP/1.1"), ("2", "two")]);
    assert_eq!(errors, ["the server ended the stream"]);
}

#[tokio::test]
async fn the_default_roots_refuse_the_test_certificate() {
    let port = serve(&[b"h2", b"http/1.1"]).await;
    let mut source = EventSource::builder(format!("https://127.0.0.1:{port}/events"))
        .retry(RetryPolicy::default().max_retries(0))
        .build()
        .unwrap();
    let item = tokio::time::timeout(NETWORK, source.next()).await.unwrap();
    let Some(Err(Error::Transport(error))) = item else {
        panic!("expected a transport error, got {item:?}");
    };
    let mut chain = error.to_string();
    let mut source_error = std::error::Error::source(&*error);
    while let Some(e) = source_error {
        chain = format!("{chain}: {e}");
        source_error = e.source();
    }
    assert!(chain.contains("certificate"), "{chain}");
    assert!(
        source.next().await.is_none(),
        "not retried with max_retries(0)"
    );
}
