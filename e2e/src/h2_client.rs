//! The `h2` scenario's client: one HTTP/2 connection over TLS (rustls, ALPN `h2`) to the
//! demo, trusting only the demo's test CA.

use std::{path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, client::conn::http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::{net::TcpStream, task::JoinHandle};
use tokio_rustls::TlsConnector;

use crate::process::Demo;

/// The test certificates of the demo (test only: their keys are public).
pub(crate) const CERT_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/demo/tests/certs");
/// The bound on one request's round trip.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/2 connection over TLS to the demo, trusting only the test CA; aborted on drop.
#[derive(Debug)]
pub(crate) struct H2Client {
    sender: http2::SendRequest<Full<Bytes>>,
    authority: String,
    task: JoinHandle<()>,
}

impl Drop for H2Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl H2Client {
    /// Connects to `demo` (which must serve HTTPS) and checks that ALPN chose `h2`.
    pub(crate) async fn connect(demo: &Demo) -> Result<Self, String> {
        let mut roots = RootCertStore::empty();
        let ca = PathBuf::from(CERT_DIR).join("ca.pem");
        for cert in
            CertificateDer::pem_file_iter(&ca).map_err(|e| format!("{}: {e}", ca.display()))?
        {
            let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connect = async {
            let tcp = TcpStream::connect(demo.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", demo.addr))?;
            let _ = tcp.set_nodelay(true);
            let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
            let tls = TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake with {}: {e}", demo.addr))?;
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            if alpn.as_deref() != Some(b"h2") {
                return Err(format!(
                    "ALPN chose {:?}, not h2",
                    alpn.map(|a| String::from_utf8_lossy(&a).into_owned())
                ));
            }
            http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .map_err(|e| format!("HTTP/2 handshake: {e}"))
        };
        let (sender, connection) = tokio::time::timeout(REQUEST_TIMEOUT, connect)
            .await
            .map_err(|_| format!("no HTTP/2 connection within {REQUEST_TIMEOUT:?}"))??;
        let task = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            authority: format!("localhost:{}", demo.addr.port()),
            task,
        })
    }

    /// `method path` with `headers` and an empty body; the response once its head is in.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response<Incoming>, String> {
        self.send_body(method, path, headers, Bytes::new()).await
    }

    async fn send_body(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Response<Incoming>, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).map_err(|e| e.to_string())?;
        let round_trip = async {
            self.sender.ready().await?;
            self.sender.send_request(request).await
        };
        tokio::time::timeout(REQUEST_TIMEOUT, round_trip)
            .await
            .map_err(|_| format!("no response head within {REQUEST_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())
    }

    /// `POST /publish?event=TYPE` with `data`; the id the demo assigned.
    pub(crate) async fn publish(&mut self, event_type: &str, data: &str) -> Result<String, String> {
        let response = self
            .send_body(
                "POST",
                &format!("/publish?event={event_type}"),
                &[("content-type", "text/plain; charset=utf-8")],
                Bytes::copy_from_slice(data.as_bytes()),
            )
            .await
            .map_err(|e| format!("publish: {e}"))?;
        let status = response.status();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| "publish: no body in time".to_owned())?
            .map_err(|e| format!("publish body: {e}"))?
            .to_bytes();
        let body = String::from_utf8_lossy(&body).into_owned();
        if !status.is_success() {
            return Err(format!("publish answered {status}: {body}"));
        }
        let json: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| format!("publish answer {body:?}: {e}"))?;
        json["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("publish answer without an id: {body}"))
    }
}
