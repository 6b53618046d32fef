//! A hyper HTTP/1.1 client that reads event streams the way a browser would.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, task::JoinHandle};
use tower_sse_core::{Decoded, Decoder, MessageEvent};

use crate::NETWORK;

/// One HTTP/1.1 connection.
#[derive(Debug)]
pub struct Client {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    _connection: JoinHandle<()>,
}

impl Client {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Self {
            sender,
            _connection: connection,
        }
    }

    /// Sends `GET path` with `headers`; the response head, bounded in time.
    pub async fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Response<Incoming> {
        let mut request = Request::get(path).header("host", "localhost");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).unwrap();
        tokio::time::timeout(NETWORK, self.sender.send_request(request))
            .await
            .expect("response head in time")
            .unwrap()
    }

    /// `GET path` as an event stream, asking for it as a browser's `EventSource` does
    /// (`Accept: text/event-stream`) and accepting gzip as browsers do: asserts `200 OK` and
    /// returns a [`Reader`].
    pub async fn events(&mut self, path: &str, headers: &[(&str, &str)]) -> Reader {
        let mut all = vec![("accept", "text/event-stream"), ("accept-encoding", "gzip")];
        all.extend_from_slice(headers);
        let response = self.get(path, &all).await;
        assert_eq!(response.status(), StatusCode::OK);
        Reader::new(response)
    }
}

/// An event-stream response being read: raw bytes, frames and decoded events.
#[derive(Debug)]
pub struct Reader {
    /// The response headers.
    pub headers: HeaderMap,
    body: Incoming,
    /// Every byte received so far.
    pub raw: Vec<u8>,
    /// The decoder fed with every byte received.
    pub decoder: Decoder,
}

impl Reader {
    fn new(response: Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            headers: parts.headers,
            body,
            raw: Vec::new(),
            decoder: Decoder::new(),
        }
    }

    /// The next data frame, or `None` at the end of the body; panics after `within`.
    pub async fn frame_within(&mut self, within: Duration) -> Option<Bytes> {
        loop {
            let frame = tokio::time::timeout(within, self.body.frame())
                .await
                .expect("a frame or the end in time")?
                .expect("no body error");
            if let Ok(data) = frame.into_data() {
                self.raw.extend_from_slice(&data);
                self.decoder.feed(&data);
                return Some(data);
            }
        }
    }

    /// The next data frame, or `None` at the end of the body.
    pub async fn frame(&mut self) -> Option<Bytes> {
        self.frame_within(NETWORK).await
    }

    /// The next dispatched event; `None` if the body ends first.
    pub async fn event(&mut self) -> Option<MessageEvent> {
        loop {
            match self.decoder.decode().expect("a well-formed stream") {
                Some(Decoded::Event(event)) => return Some(event),
                Some(_) => continue,
                None => {
                    self.frame().await?;
                }
            }
        }
    }

    /// Reads to the end of the body; every event still undelivered.
    pub async fn rest(&mut self) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.event().await {
            events.push(event);
        }
        events
    }
}

/// A request for [`send`]: `method` on `path` with `Host: localhost` and `body`.
///
/// # Panics
///
/// When `method` or `path` is not valid in a request head.
pub fn request(method: &str, path: &str, body: &'static [u8]) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::from_static(body)))
        .unwrap()
}

/// Sends one request to `addr` on a new HTTP/1.1 connection and returns the response head
/// (the body streams on). Fails the test when the server does not answer within [`NETWORK`].
///
/// # Panics
///
/// When the connection, the handshake or the request fails, or the answer takes too long.
pub async fn send<B>(addr: &str, request: Request<B>) -> Response<Incoming>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    tokio::time::timeout(NETWORK, sender.send_request(request))
        .await
        .expect("an answer in time")
        .unwrap()
}
