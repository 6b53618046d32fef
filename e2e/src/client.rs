//! hyper clients: the publisher (`POST /publish`) and streaming GETs.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, task::JoinHandle};

/// The bound on one request's round trip.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/1.1 connection, aborted on drop.
#[derive(Debug)]
struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connect(addr: SocketAddr) -> Result<Connection, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake with {addr}: {e}"))?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Connection { sender, task })
}

/// Publishes events to a demo over one keep-alive connection.
#[derive(Debug)]
pub(crate) struct Publisher {
    addr: SocketAddr,
    connection: Option<Connection>,
}

impl Publisher {
    /// A publisher for the demo at `addr` (connects on first use).
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connection: None,
        }
    }

    /// `POST /publish?event=TYPE` with `data`; the id the demo assigned.
    pub(crate) async fn publish(&mut self, event_type: &str, data: &str) -> Result<String, String> {
        self.publish_query(&format!("event={event_type}"), data)
            .await
    }

    /// `POST /publish?QUERY` with `data`; the id the demo assigned.
    pub(crate) async fn publish_query(
        &mut self,
        query: &str,
        data: &str,
    ) -> Result<String, String> {
        let request = || {
            Request::post(format!("/publish?{query}"))
                .header("host", self.addr.to_string())
                .header("content-type", "text/plain; charset=utf-8")
                .body(Full::new(Bytes::copy_from_slice(data.as_bytes())))
                .map_err(|e| e.to_string())
        };
        let mut connection = match self.connection.take() {
            Some(c) if !c.sender.is_closed() => c,
            _ => connect(self.addr).await?,
        };
        let round_trip = async {
            connection
                .sender
                .ready()
                .await
                .map_err(|e| format!("publish: {e}"))?;
            let response = connection
                .sender
                .send_request(request()?)
                .await
                .map_err(|e| format!("publish: {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
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
        };
        let id = tokio::time::timeout(REQUEST_TIMEOUT, round_trip)
            .await
            .map_err(|_| format!("publish took over {REQUEST_TIMEOUT:?}"))??;
        self.connection = Some(connection);
        Ok(id)
    }
}

/// An open response whose body is read as it arrives; the connection ends on drop.
#[derive(Debug)]
pub(crate) struct OpenResponse {
    /// The response, body not yet read.
    pub(crate) response: Response<Incoming>,
    _connection: Connection,
}

/// `GET path` on `addr` with extra `headers`, returned once the head has arrived.
pub(crate) async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<OpenResponse, String> {
    let mut connection = connect(addr).await?;
    let mut request = Request::get(path).header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, async {
        connection.sender.ready().await?;
        connection.sender.send_request(request).await
    })
    .await
    .map_err(|_| format!("GET {path}: no response head within {REQUEST_TIMEOUT:?}"))?
    .map_err(|e| format!("GET {path}: {e}"))?;
    Ok(OpenResponse {
        response,
        _connection: connection,
    })
}
