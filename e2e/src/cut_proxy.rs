//! A loopback HTTP/1.1 proxy in front of the demo that cuts event streams in the middle of an
//! event, records what clients send, and serves the browser's test page and report endpoint
//! itself (same origin as `/events`, so `EventSource` needs no CORS).
//!
//! Every request is forwarded with `Connection: close`, so each TCP connection carries one
//! request and the proxy sees every request head. On the n-th `/events` response, when
//! `cuts[n]` is set to K, the proxy forwards K complete events, then the first half of the
//! next one (its `id` and `event` lines and half its `data` line), and closes the connection.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};
use tower_sse_core::{Decoded, Decoder};

use crate::wire::{Dechunker, Head, chunk, find, read_head};

/// An `/events` request as it reached the proxy.
#[derive(Clone, Debug)]
pub(crate) struct StreamRequest {
    /// When its head was complete.
    pub(crate) at: Instant,
    /// Its `Last-Event-ID` header.
    pub(crate) last_event_id: Option<String>,
}

/// A connection the proxy cut in the middle of an event.
#[derive(Clone, Debug)]
pub(crate) struct Cut {
    /// When the connection was closed.
    pub(crate) at: Instant,
    /// Complete events forwarded on that connection before the cut.
    pub(crate) events_before: usize,
    /// The id of the last complete event forwarded.
    pub(crate) last_event_id: String,
    /// The partial event sent last.
    pub(crate) partial: String,
}

/// What the proxy saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProxyLog {
    /// `/events` requests in arrival order.
    pub(crate) streams: Vec<StreamRequest>,
    /// Cuts in order.
    pub(crate) cuts: Vec<Cut>,
    /// The latest report POSTed to `/e2e/report` (the one with the greatest `t`).
    pub(crate) report: Option<serde_json::Value>,
    /// Unexpected failures on connections being cut.
    pub(crate) errors: Vec<String>,
}

#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    page: String,
    cuts: Vec<usize>,
    log: Mutex<ProxyLog>,
}

/// The running proxy; dropping it stops it and closes every connection it holds.
#[derive(Debug)]
pub(crate) struct CutProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl CutProxy {
    /// Listens on a free loopback port in front of `upstream`, serving `page` at `/e2e.html`
    /// and cutting the n-th `/events` response after `cuts[n]` events.
    pub(crate) async fn start(
        upstream: SocketAddr,
        page: String,
        cuts: Vec<usize>,
    ) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("proxy: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let shared = Arc::new(Shared {
            upstream,
            page,
            cuts,
            log: Mutex::new(ProxyLog::default()),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// Where the proxy listens.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A copy of what the proxy has seen so far.
    pub(crate) fn log(&self) -> ProxyLog {
        self.shared.log.lock().expect("proxy log").clone()
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet), which abort with it.
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = Arc::clone(&shared);
                connections.spawn(async move {
                    // Browsers open spare connections that may stay idle; bound them too.
                    let _ = tokio::time::timeout(
                        Duration::from_secs(300),
                        handle(stream, shared),
                    )
                    .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(mut client: TcpStream, shared: Arc<Shared>) -> Result<(), String> {
    let Some((head, rest)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let path = head.target().split('?').next().unwrap_or("").to_owned();
    match path.as_str() {
        "/e2e.html" => {
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{}",
                shared.page.len(),
                shared.page
            );
            client
                .write_all(response.as_bytes())
                .await
                .map_err(|e| e.to_string())
        }
        "/e2e/report" => receive_report(client, &head, rest, &shared).await,
        _ => forward(client, &head, rest, &path, shared).await,
    }
}

async fn receive_report(
    mut client: TcpStream,
    head: &Head,
    mut body: Vec<u8>,
    shared: &Shared,
) -> Result<(), String> {
    let length: usize = head
        .field("content-length")
        .and_then(|v| v.parse().ok())
        .filter(|&n| n <= 1 << 20)
        .ok_or("report without a usable Content-Length")?;
    let mut buf = [0u8; 8192];
    while body.len() < length {
        let n = client.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("report body cut short".to_owned());
        }
        body.extend_from_slice(&buf[..n]);
    }
    let report: serde_json::Value =
        serde_json::from_slice(&body[..length]).map_err(|e| format!("report: {e}"))?;
    {
        let mut log = shared.log.lock().expect("proxy log");
        let t = |r: &serde_json::Value| r["t"].as_f64().unwrap_or(0.0);
        if log.report.as_ref().is_none_or(|old| t(old) <= t(&report)) {
            log.report = Some(report);
        }
    }
    client
        .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        .await
        .map_err(|e| e.to_string())
}

async fn forward(
    mut client: TcpStream,
    head: &Head,
    rest: Vec<u8>,
    path: &str,
    shared: Arc<Shared>,
) -> Result<(), String> {
    let mut upstream = TcpStream::connect(shared.upstream)
        .await
        .map_err(|e| format!("upstream: {e}"))?;
    upstream
        .write_all(&head.to_bytes_with_connection("close"))
        .await
        .map_err(|e| e.to_string())?;
    upstream.write_all(&rest).await.map_err(|e| e.to_string())?;
    if path != "/events" {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        return Ok(());
    }
    let index = {
        let mut log = shared.log.lock().expect("proxy log");
        log.streams.push(StreamRequest {
            at: Instant::now(),
            last_event_id: head.field("last-event-id").map(str::to_owned),
        });
        log.streams.len() - 1
    };
    match shared.cuts.get(index).copied() {
        Some(cut_after) => {
            let result = cut_stream(client, upstream, cut_after, &shared).await;
            if let Err(e) = &result {
                let mut log = shared.log.lock().expect("proxy log");
                log.errors
                    .push(format!("/events connection {}: {e}", index + 1));
            }
            result
        }
        None => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            Ok(())
        }
    }
}

/// Forwards the response, whole frames at a time, until the event after `cut_after` complete
/// events, of which it forwards the first half before closing both connections.
async fn cut_stream(
    mut client: TcpStream,
    mut upstream: TcpStream,
    cut_after: usize,
    shared: &Shared,
) -> Result<(), String> {
    let io = |e: std::io::Error| e.to_string();
    let (head, mut input) = read_head(&mut upstream)
        .await?
        .ok_or("upstream closed before responding")?;
    client
        .write_all(&head.to_bytes_with_connection("close"))
        .await
        .map_err(io)?;
    let chunked = head.is_chunked();
    let frame_out = |bytes: &[u8]| {
        if chunked {
            chunk(bytes)
        } else {
            bytes.to_vec()
        }
    };
    let mut dechunker = Dechunker::default();
    let mut body = Vec::new();
    let mut decoder = Decoder::new();
    let mut events = 0usize;
    let mut last_id = String::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if chunked {
            dechunker.feed(&input, &mut body)?;
        } else {
            body.extend_from_slice(&input);
        }
        let mut out = Vec::new();
        // The layer writes LF line ends only, so a frame ends at the first blank line.
        while let Some(end) = find(&body, b"\n\n") {
            let frame: Vec<u8> = body.drain(..end + 2).collect();
            decoder.feed(&frame);
            let mut dispatched = false;
            while let Some(decoded) = decoder.decode().map_err(|e| e.to_string())? {
                dispatched |= matches!(decoded, Decoded::Event(_));
            }
            if dispatched && events == cut_after {
                let cut = cut_point(&frame);
                out.extend_from_slice(&frame[..cut]);
                client.write_all(&frame_out(&out)).await.map_err(io)?;
                client.flush().await.map_err(io)?;
                let _ = client.shutdown().await;
                drop(client);
                drop(upstream);
                shared.log.lock().expect("proxy log").cuts.push(Cut {
                    at: Instant::now(),
                    events_before: events,
                    last_event_id: last_id,
                    partial: String::from_utf8_lossy(&frame[..cut]).into_owned(),
                });
                return Ok(());
            }
            if dispatched {
                events += 1;
                decoder.last_event_id().clone_into(&mut last_id);
            }
            out.extend_from_slice(&frame);
        }
        if !out.is_empty() {
            client.write_all(&frame_out(&out)).await.map_err(io)?;
        }
        if chunked && dechunker.is_done() {
            client.write_all(b"0\r\n\r\n").await.map_err(io)?;
            return Err(format!(
                "the stream ended after {events} events, before the cut"
            ));
        }
        let n = upstream.read(&mut buf).await.map_err(io)?;
        if n == 0 {
            return Err(format!(
                "upstream closed after {events} events, before the cut"
            ));
        }
        input = buf[..n].to_vec();
    }
}

/// The middle of the frame's last line: the `id` and `event` lines go out whole, the `data`
/// line only half.
fn cut_point(frame: &[u8]) -> usize {
    let body = &frame[..frame.len() - 2];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    start + (body.len() - start) / 2
}

#[cfg(test)]
mod tests {
    use super::cut_point;

    #[test]
    fn cuts_in_the_middle_of_the_data_line() {
        let frame = b"id: a-7\nevent: e2e\ndata: e2e-4\n\n";
        assert_eq!(&frame[..cut_point(frame)], b"id: a-7\nevent: e2e\ndata:");
    }
}
