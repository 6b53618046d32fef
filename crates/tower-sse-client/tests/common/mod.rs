//! A scripted HTTP/1.1 server on loopback that sends exact bytes, and a client runner.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use futures_util::StreamExt;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tower_sse_client::{Builder, Error, Event, EventSource, ReadyState};

/// How long a test waits for something that should happen before calling it a failure; a
/// guard against hangs, not a timing assertion.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One request as the server read it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub target: String,
    /// Lower-case names, in order, repeats kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One accepted connection: the request, and the socket to script the response on.
pub struct Conn {
    pub request: Recorded,
    stream: TcpStream,
}

impl Conn {
    /// Sends raw bytes as they are.
    pub async fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
        self.stream.flush().await.expect("flush");
    }

    /// A 200 `text/event-stream` head without a length: the body ends when the socket closes.
    pub async fn ok(&mut self) {
        self.raw(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n").await;
    }

    /// A response with this status line and headers and an empty body.
    pub async fn respond(mut self, status: &str, headers: &[(&str, &str)]) {
        let mut head = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n");
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        self.raw(head.as_bytes()).await;
    }

    /// Sends `bytes` in pieces of `size`, pausing between them so that they arrive apart.
    pub async fn chunks(&mut self, bytes: &[u8], size: usize) {
        for piece in bytes.chunks(size) {
            self.raw(piece).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Drops the connection, as a network failure or a restarting server would.
    pub fn break_connection(self) {
        drop(self);
    }
}

/// A listener that hands each accepted, parsed connection to the test.
pub struct Server {
    pub url: String,
    conns: mpsc::UnboundedReceiver<Conn>,
}

impl Server {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/stream", listener.local_addr().unwrap());
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                stream.set_nodelay(true).unwrap();
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Some(request) = read_request(&mut stream).await {
                        let _ = tx.send(Conn { request, stream });
                    }
                });
            }
        });
        Self { url, conns }
    }

    pub async fn accept(&mut self) -> Conn {
        tokio::time::timeout(PATIENCE, self.conns.recv())
            .await
            .expect("the client did not connect")
            .expect("server gone")
    }

    /// Whether a connection arrives within `wait` (for asserting that none does).
    pub async fn connection_within(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.conns.recv()).await.is_ok()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut chunk = [0; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Recorded {
        method,
        target,
        headers,
        body,
    })
}

/// What the client reported, in order.
#[derive(Debug)]
pub enum Seen {
    Event(Event),
    Error(Error, ReadyState),
    End,
}

/// A client running in its own task, reporting to the test; restartable and closable.
pub struct Client {
    seen: mpsc::UnboundedReceiver<Seen>,
    restart: mpsc::UnboundedSender<()>,
}

impl Client {
    /// Starts the client `builder` configures, in a task of its own.
    pub fn start(builder: Builder) -> Self {
        let mut source = builder.build().expect("valid client configuration");
        let (tx, seen) = mpsc::unbounded_channel();
        let (restart, mut restarts) = mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    item = source.next() => {
                        let report = match item {
                            Some(Ok(event)) => Seen::Event(event),
                            Some(Err(e)) => Seen::Error(e, source.ready_state()),
                            None => Seen::End,
                        };
                        let end = matches!(report, Seen::End);
                        if tx.send(report).is_err() || end {
                            return;
                        }
                    }
                    Some(()) = restarts.recv() => source.restart(),
                }
            }
        });
        Self { seen, restart }
    }

    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(PATIENCE, self.seen.recv())
            .await
            .expect("the client reported nothing")
            .unwrap_or(Seen::End)
    }

    /// The next event that is not `Open`; any error is a failure.
    pub async fn event(&mut self) -> Event {
        loop {
            match self.next().await {
                Seen::Event(Event::Open) => {}
                Seen::Event(event) => return event,
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// The next item that is not an `Open` or an event: an error (or the end).
    pub async fn error(&mut self) -> (Error, ReadyState) {
        loop {
            match self.next().await {
                Seen::Event(Event::Open) => {}
                Seen::Error(e, state) => return (e, state),
                other => panic!("expected an error, got {other:?}"),
            }
        }
    }

    /// Skips one error if the next report is one (the client may report a broken
    /// connection before reconnecting).
    pub async fn ignore_error(&mut self) -> Option<Event> {
        loop {
            match self.next().await {
                Seen::Error(_, ReadyState::Connecting) | Seen::Event(Event::Open) => {}
                Seen::Event(event) => return Some(event),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    pub fn restart(&self) {
        self.restart.send(()).unwrap();
    }
}

/// A message as the contract tests compare it: type, data, id.
pub fn msg(event: &Event) -> (String, String, String) {
    match event {
        Event::Message(m) => (
            m.event_type().to_string(),
            m.data().to_string(),
            m.last_event_id().to_string(),
        ),
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The default builder of the suite: no reconnection delay, comments reported.
pub fn builder(url: &str) -> Builder {
    EventSource::builder(url)
        .retry(tower_sse_client::RetryPolicy::default().initial_delay(Duration::ZERO))
        .comments(true)
}
