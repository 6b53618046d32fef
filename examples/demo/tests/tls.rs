//! `--tls-cert`/`--tls-key`: the demo binary on every framework with every key form (RSA in
//! PKCS#1 and PKCS#8, ECDSA P-256 in SEC1 and PKCS#8), checked over real loopback TLS with a
//! client that trusts only the test CA: HTTP/2 and HTTP/1.1 by ALPN, the layer's headers and
//! priming on `/events`, no connection-specific header on HTTP/2; and bad files refused.

use std::{path::PathBuf, process::Stdio, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Response, Version, body::Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    time::timeout,
};
use tokio_rustls::TlsConnector;

const NETWORK: Duration = Duration::from_secs(10);

fn cert_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
}

/// Starts the demo with `--tls-cert cert --tls-key key`; returns it and its port.
async fn start(framework: &str, cert: &str, key: &str) -> (Child, u16) {
    let dir = cert_dir();
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0", "--framework", framework])
        .args(["--retry-ms", "1500", "--tick-ms", "0"])
        .arg("--tls-cert")
        .arg(dir.join(cert))
        .arg("--tls-key")
        .arg(dir.join(key))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    timeout(NETWORK, stdout.read_line(&mut line))
        .await
        .expect("the address in time")
        .unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on https://127.0.0.1:")
        .unwrap_or_else(|| panic!("first line {line:?}"));
    (child, addr.parse().unwrap())
}

/// A TLS connection to `localhost:port` that trusts only the test CA and offers `alpn`.
async fn connect(port: u16, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert_dir().join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp);
    let tls = timeout(NETWORK, tls).await.unwrap().unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
    tls
}

fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::builder()
        .uri(format!("https://localhost{path}"))
        .body(Empty::new())
        .unwrap()
}

async fn h2_get(port: u16, path: &str) -> Response<Incoming> {
    let io = TokioIo::new(connect(port, b"h2").await);
    let (mut sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
        .await
        .unwrap();
    tokio::spawn(connection);
    timeout(NETWORK, sender.send_request(get(path)))
        .await
        .unwrap()
        .unwrap()
}

async fn h1_get(port: u16, path: &str) -> Response<Incoming> {
    let io = TokioIo::new(connect(port, b"http/1.1").await);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(connection);
    let mut request = get(path);
    *request.uri_mut() = path.parse().unwrap();
    request
        .headers_mut()
        .insert("host", "localhost".parse().unwrap());
    timeout(NETWORK, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn first_chunk(response: Response<Incoming>) -> String {
    let mut body = response.into_body();
    let frame = timeout(NETWORK, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
}

const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

async fn check(framework: &str, cert: &str, key: &str) {
    let (_child, port) = start(framework, cert, key).await;
    let what = format!("{framework} with {key}");

    let events = h2_get(port, "/events").await;
    assert_eq!(events.version(), Version::HTTP_2, "{what}");
    assert_eq!(events.status(), 200, "{what}");
    assert_eq!(
        events.headers()["content-type"],
        "text/event-stream",
        "{what}"
    );
    assert_eq!(events.headers()["cache-control"], "no-cache", "{what}");
    for name in CONNECTION_SPECIFIC {
        assert!(
            !events.headers().contains_key(name),
            "{what}: `{name}` on an HTTP/2 response: {:?}",
            events.headers()
        );
    }
    assert_eq!(first_chunk(events).await, "retry: 1500\n\n", "{what}");

    let plain = h1_get(port, "/events").await;
    assert_eq!(plain.version(), Version::HTTP_11, "{what}");
    assert_eq!(
        plain.headers()["content-type"],
        "text/event-stream",
        "{what}"
    );
    assert_eq!(first_chunk(plain).await, "retry: 1500\n\n", "{what}");

    let page = h1_get(port, "/plain").await;
    assert_eq!(page.status(), 200, "{what}");
    let body = page.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"plain text, untouched by the layer\n", "{what}");
}

async fn every_key_form(framework: &str) {
    for (cert, key) in [
        ("rsa-cert.pem", "rsa-pkcs1.key"),
        ("rsa-cert.pem", "rsa-pkcs8.key"),
        ("ec-cert.pem", "ec-sec1.key"),
        ("ec-cert.pem", "ec-pkcs8.key"),
    ] {
        check(framework, cert, key).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_over_tls_with_every_key_form() {
    every_key_form("axum").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warp_over_tls_with_every_key_form() {
    every_key_form("warp").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poem_over_tls_with_every_key_form() {
    every_key_form("poem").await;
}

/// Runs the demo expecting it to refuse to start; returns its exit code and stderr.
async fn refused(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = timeout(NETWORK, output).await.unwrap().unwrap();
    assert!(
        output.stdout.is_empty(),
        "printed {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn bad_tls_files_are_refused_before_listening() {
    let dir = cert_dir();
    let path = |name: &str| dir.join(name).into_os_string();
    let (flag_cert, flag_key) = ("--tls-cert".as_ref(), "--tls-key".as_ref());

    // A key that belongs to another certificate.
    let (ec, rsa) = (path("ec-cert.pem"), path("rsa-pkcs8.key"));
    let (code, stderr) = refused(&[flag_cert, &ec, flag_key, &rsa]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("ec-cert.pem") && stderr.contains("rsa-pkcs8.key"),
        "{stderr}"
    );

    // A certificate file given as the key.
    let (code, stderr) = refused(&[flag_cert, &ec, flag_key, &ec]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--tls-key") && stderr.contains("no `PRIVATE KEY`"),
        "{stderr}"
    );

    // A key file given as the certificate.
    let key = path("ec-sec1.key");
    let (code, stderr) = refused(&[flag_cert, &key, flag_key, &key]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--tls-cert"), "{stderr}");

    // A file that does not exist.
    let missing = path("missing.pem");
    let (code, stderr) = refused(&[flag_cert, &missing, flag_key, &key]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");

    // One flag without the other: a usage error.
    let (code, stderr) = refused(&[flag_cert, &ec]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--tls-cert needs --tls-key"), "{stderr}");
}
