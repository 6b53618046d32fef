//! The default HTTP client: hyper-util's legacy (pooled) client.

use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::RequestBody;

/// The connector of the default client: plain TCP, or TCP and rustls with the `rustls`
/// feature (`https://` and `http://`).
#[cfg(not(feature = "rustls"))]
pub type DefaultConnector = HttpConnector;
/// The connector of the default client: plain TCP, or TCP and rustls with the `rustls`
/// feature (`https://` and `http://`).
#[cfg(feature = "rustls")]
pub type DefaultConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The default HTTP client of [`EventSource::get`](crate::EventSource::get) and
/// [`Builder::build`](crate::Builder::build): hyper-util's client, HTTP/1.1 and HTTP/2.
pub type DefaultClient = Client<DefaultConnector, RequestBody>;

pub(crate) fn default_client(
    http2_only: bool,
    #[cfg(feature = "rustls")] tls: Option<rustls::ClientConfig>,
) -> DefaultClient {
    let mut http = HttpConnector::new();
    // Events are small writes that must not wait for Nagle's algorithm.
    http.set_nodelay(true);
    #[cfg(feature = "rustls")]
    let connector = {
        http.enforce_http(false);
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match tls {
            Some(mut config) => {
                // The connector sets ALPN from the enabled HTTP versions (and insists on it).
                config.alpn_protocols.clear();
                builder.with_tls_config(config)
            }
            None => {
                let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
                builder
                    .with_provider_and_webpki_roots(provider)
                    .expect("the ring provider supports the default protocol versions")
            }
        }
        .https_or_http();
        if http2_only {
            builder.enable_http2().wrap_connector(http)
        } else {
            builder.enable_all_versions().wrap_connector(http)
        }
    };
    #[cfg(not(feature = "rustls"))]
    let connector = http;
    Client::builder(TokioExecutor::new())
        .http2_only(http2_only)
        .build(connector)
}
