//! `--tls-cert PEM --tls-key PEM`: one rustls acceptor in front of all three frameworks.
//!
//! The listener accepts TCP, completes the TLS handshake (ALPN offers `h2` and `http/1.1`)
//! and hands the stream to hyper-util's auto builder, which serves HTTP/2 or HTTP/1.1 by what
//! was negotiated. Each framework gives a hyper service that already has the `SseLayer` in
//! it (axum's router and warp's stack are tower services, poem's endpoint is wrapped), so the
//! layer is in the path over TLS exactly as over plain TCP.
//!
//! Decisions: the `ring` provider (builds faster than aws-lc-rs and needs no cmake or nasm);
//! TLS 1.2 and 1.3; no client authentication; a handshake must finish within
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and sends nothing holds a socket for that
//! long at most.

use std::{future::Future, io, net::SocketAddr, path::Path, sync::Arc, time::Duration};

use hyper::{Request, Response, body::Incoming};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
};
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client has to complete the TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or SEC1;
/// RSA, ECDSA or Ed25519) and builds the acceptor, with ALPN `h2` then `http/1.1`.
///
/// # Errors
///
/// A message naming the file when a file cannot be read, holds no certificate or no key, or
/// when the key does not match the certificate.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no `BEGIN CERTIFICATE` block",
            cert.display()
        ));
    }
    // `from_pem_file` takes the first key of any of the three forms (`PRIVATE KEY`,
    // `RSA PRIVATE KEY`, `EC PRIVATE KEY`) and skips other blocks.
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => format!(
            "--tls-key {}: no `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY` block \
             (an encrypted key must be decrypted first)",
            key.display()
        ),
        e => format!("--tls-key {}: {e}", key.display()),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            format!(
                "--tls-cert {} with --tls-key {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves HTTPS on `listener` until `shutdown` completes, then waits for open connections to
/// finish (the layer's shutdown signal ends event streams at an event boundary).
///
/// `make` builds the service of one connection from the client's address.
pub(crate) async fn serve<M, S, B>(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    make: M,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    M: Fn(SocketAddr) -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = make(peer);
        let acceptor = acceptor.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        // The handshake runs in the connection's task, so a slow client never holds up the
        // accept loop.
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
            else {
                return;
            };
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .into_owned();
            // A connection error ends that connection only.
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
