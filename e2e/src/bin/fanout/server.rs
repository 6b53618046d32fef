//! The server process of one row: accepts subscribers, and on `GO` publishes the events.
//!
//! Every row publishes the same events from a task in the server process (so the
//! publisher's work counts as the server's, alike in every row): `burst` events back to back
//! every `burst / rate` seconds, each with its sequence number and publish time (µs since
//! the Unix epoch) in its JSON data.

use std::{convert::Infallible, io, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    response::{
        IntoResponse, Response,
        sse::{Event as AxumEvent, Sse},
    },
    routing::get,
    serve::ListenerExt,
};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::stream;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::broadcast,
};
use tower::Layer;
use tower_sse::{Hub, SseLayer};
use tower_sse_core::Event;

use crate::sockets::{commands, now_micros};

/// The kinds of server, one per row.
pub(crate) const KINDS: &[(&str, &str)] = &[
    (
        "limit",
        "the limit: plain tokio, pre-encoded chunks, one write per wake-up",
    ),
    (
        "axum-broadcast",
        "hand-rolled: tokio broadcast + axum `Sse` (Event per subscriber)",
    ),
    ("tower-sse-axum", "tower-sse Hub + SseLayer on axum::serve"),
    (
        "tower-sse-hyper",
        "tower-sse Hub + SseLayer on hyper http1 (hyper-util)",
    ),
];

const TOPIC: &str = "fanout";

/// What the publisher feeds, per kind.
#[derive(Clone)]
enum Feed {
    Limit(broadcast::Sender<Bytes>),
    Broadcast(broadcast::Sender<(u64, Arc<str>)>),
    Hub(Hub),
}

/// The JSON data of event `seq`: 64 bytes and more, like the project's small event shape.
fn data(seq: u64) -> String {
    format!(
        "{{\"seq\":{seq},\"t\":{},\"kind\":\"price\",\"symbol\":\"ACME\"}}",
        now_micros()
    )
}

impl Feed {
    async fn publish(&self, seq: u64) -> Result<(), String> {
        let data = data(seq);
        match self {
            Self::Limit(sender) => {
                // Encoded once (the same encoder as the Hub's log), framed as one HTTP/1.1
                // chunk, shared by every connection.
                let id = seq.to_string();
                let event = Event::new()
                    .id(&id)
                    .map_err(|e| e.to_string())?
                    .data(&data)
                    .to_bytes();
                let mut chunk = BytesMut::with_capacity(event.len() + 12);
                chunk.put_slice(format!("{:x}\r\n", event.len()).as_bytes());
                chunk.put_slice(&event);
                chunk.put_slice(b"\r\n");
                let _ = sender.send(chunk.freeze());
            }
            Self::Broadcast(sender) => {
                let _ = sender.send((seq, Arc::from(data)));
            }
            Self::Hub(hub) => {
                hub.publish(TOPIC, &Event::new().data(&data))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// Live events a subscriber may fall behind before it loses some (limit, hand-rolled) or
/// catches up from the log (Hub): far more than any run publishes between two of its reads.
const RING: usize = 1 << 14;

/// Runs the server process: prints `READY <port>`, publishes on `GO <events> <rate> <burst>`,
/// prints `PUBLISHED` after the last.
pub(crate) fn run(kind: &str) -> Result<(), String> {
    let runtime = crate::sockets::server_runtime()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let feed = match kind {
            "limit" => {
                let sender = broadcast::channel(RING).0;
                tokio::spawn(serve_limit(listener, sender.clone()));
                Feed::Limit(sender)
            }
            "axum-broadcast" => {
                let sender = broadcast::channel(RING).0;
                let app = Router::new()
                    .route("/events", get(axum_broadcast))
                    .with_state(sender.clone());
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                tokio::spawn(async move { axum::serve(listener, app).await });
                Feed::Broadcast(sender)
            }
            "tower-sse-axum" | "tower-sse-hyper" => {
                let hub = Hub::new().capacity(RING);
                let app = Router::new()
                    .route("/events", get(hub_events))
                    .with_state(hub.clone());
                if kind == "tower-sse-axum" {
                    let app = app.layer(SseLayer::new());
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    tokio::spawn(async move { axum::serve(listener, app).await });
                } else {
                    tokio::spawn(serve_hyper(listener, app));
                }
                Feed::Hub(hub)
            }
            other => return Err(format!("unknown server kind {other:?}")),
        };
        println!("READY {port}");
        let (go, mut started) = tokio::sync::mpsc::unbounded_channel();
        commands(move |line| {
            let _ = go.send(line);
        });
        while let Some(line) = started.recv().await {
            let words: Vec<u64> = line
                .strip_prefix("GO ")
                .map(|rest| {
                    rest.split_whitespace()
                        .filter_map(|w| w.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            if let [events, rate, burst] = words[..] {
                publish(&feed, events, rate, burst).await?;
                println!("PUBLISHED");
            }
        }
        Ok(())
    })
}

async fn publish(feed: &Feed, events: u64, rate: u64, burst: u64) -> Result<(), String> {
    let burst = burst.max(1);
    let period = Duration::from_secs_f64(burst as f64 / rate.max(1) as f64);
    let start = tokio::time::Instant::now();
    let mut seq = 0;
    let mut tick = 0u32;
    while seq < events {
        tokio::time::sleep_until(start + period * tick).await;
        tick += 1;
        for _ in 0..burst.min(events - seq) {
            feed.publish(seq).await?;
            seq += 1;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The limit: no HTTP library, the same encoded bytes, one write per wake-up.

const LIMIT_HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
    cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

async fn serve_limit(listener: TcpListener, sender: broadcast::Sender<Bytes>) {
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let receiver = sender.subscribe();
        tokio::spawn(async move {
            let _ = limit_connection(stream, receiver).await;
        });
    }
}

async fn limit_connection(
    mut stream: TcpStream,
    mut receiver: broadcast::Receiver<Bytes>,
) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    while memchr::memmem::find(&head, b"\r\n\r\n").is_none() {
        let read = stream.read(&mut buf).await?;
        if read == 0 || head.len() > 8192 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..read]);
    }
    stream.write_all(LIMIT_HEAD).await?;
    let mut out = Vec::new();
    loop {
        let first = match receiver.recv().await {
            Ok(chunk) => chunk,
            // The client sees the missing sequence numbers.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        out.clear();
        out.extend_from_slice(&first);
        while out.len() < 32 * 1024 {
            match receiver.try_recv() {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => break,
            }
        }
        stream.write_all(&out).await?;
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-rolled: tokio broadcast + axum `Sse`.

async fn axum_broadcast(
    axum::extract::State(sender): axum::extract::State<broadcast::Sender<(u64, Arc<str>)>>,
) -> impl IntoResponse {
    let receiver = sender.subscribe();
    let events = stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok((id, data)) => {
                    let event = AxumEvent::default().id(id.to_string()).data(&*data);
                    return Some((Ok::<_, Infallible>(event), receiver));
                }
                // The client sees the missing sequence numbers.
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Sse::new(events)
}

// ---------------------------------------------------------------------------------------------
// tower-sse: Hub + SseLayer.

async fn hub_events(axum::extract::State(hub): axum::extract::State<Hub>) -> Response {
    match hub.subscribe(TOPIC, None).await {
        Ok(subscription) => subscription.into_response().map(Body::new),
        Err(e) => (http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// The same router and layer served by hyper's HTTP/1.1 connection directly (hyper-util's
/// `TowerToHyperService`), without `axum::serve`'s auto-detecting builder.
async fn serve_hyper(listener: TcpListener, app: Router) {
    let service = SseLayer::new().layer(app);
    while let Ok((stream, _)) = listener.accept().await {
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
