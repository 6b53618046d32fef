//! The limit row of the storm: the same routes as the demo (`GET /events` with a
//! `Last-Event-ID`, `POST /publish` answering `{"id":"…"}`), served with no library — no
//! hyper, no tower-sse, no log trait — by `storm --serve-limit`, in a process of its own like
//! the demo. Events live in one `Vec<Bytes>` (the id is the index), a reconnecting client
//! gets its backlog as one write, and every live wake-up writes everything queued for that
//! client in one call. What it measures is what the machine itself allows: the cost of
//! 10,000 sockets, their writes and the storm clients' reads on the same cores, with nothing
//! of ours in the way. Our rows are read against it.
//!
//! With `--publish-runtime` (the storm's `--publish-runtime on`), `POST /publish` also has a
//! listener of its own, served by a one-thread runtime on its own thread, as the demo's
//! `--publish-addr` does: then the limit's publisher gets its rate during the storm too, and
//! the rows compare at the same offered load.

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::broadcast,
};

/// Published frames, by id; the channel carries each one to the live readers.
struct State {
    frames: Vec<Bytes>,
    sender: broadcast::Sender<Bytes>,
}

/// Serves until killed. Prints `listening on http://ADDR` first, as the demo does, and with
/// `publish_runtime` `publishing on http://ADDR` next (the demo's `--publish-addr` lines).
pub(crate) async fn serve(publish_runtime: bool) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    // 2^16 events: far more than a storm publishes while a reader is descheduled.
    let (sender, _) = broadcast::channel(1 << 16);
    let state = Arc::new(Mutex::new(State {
        frames: Vec::new(),
        sender,
    }));
    if publish_runtime {
        let publish = std::net::TcpListener::bind("127.0.0.1:0")?;
        publish.set_nonblocking(true)?;
        println!("publishing on http://{}", publish.local_addr()?);
        let state = Arc::clone(&state);
        super::runtime_thread("limit-publish").spawn(async move {
            let listener = TcpListener::from_std(publish).expect("a tokio listener");
            accept(listener, state).await
        });
    }
    accept(listener, state).await
}

/// Serves every connection of `listener` on the current runtime.
async fn accept(listener: TcpListener, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let _ = connection(stream, state).await;
        });
    }
}

/// One request head: method, path, `Last-Event-ID`, `Content-Length`.
struct Head {
    method: String,
    path: String,
    last_event_id: Option<String>,
    content_length: usize,
}

async fn read_head(reader: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut head = Head {
        method,
        path,
        last_event_id: None,
        content_length: 0,
    };
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok(Some(head));
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("last-event-id") {
            head.last_event_id = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.parse().unwrap_or(0);
        }
    }
}

async fn connection(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader).await? {
        let mut body = vec![0; head.content_length];
        reader.read_exact(&mut body).await?;
        match (head.method.as_str(), head.path.as_str()) {
            ("POST", "/publish") => {
                let id = {
                    let mut state = state.lock().expect("not poisoned");
                    let id = state.frames.len();
                    let data = String::from_utf8_lossy(&body);
                    let frame = Bytes::from(format!("id: {id}\ndata: {data}\n\n"));
                    state.frames.push(frame.clone());
                    let _ = state.sender.send(frame);
                    id
                };
                let json = format!("{{\"id\":\"{id}\"}}");
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
                    json.len()
                );
                reader.get_mut().write_all(response.as_bytes()).await?;
            }
            ("GET", "/events") => return events(reader.into_inner(), head, state).await,
            _ => {
                reader
                    .get_mut()
                    .write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                    .await?;
            }
        }
    }
    Ok(())
}

/// The backlog after the client's id and the live frames, on a body that ends when the
/// connection closes (no chunked encoding: nothing between the frames and the socket).
async fn events(
    mut stream: TcpStream,
    head: Head,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    let mut out = BytesMut::from(
        &b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n"[..],
    );
    let from = head
        .last_event_id
        .and_then(|id| id.parse::<usize>().ok())
        .map_or(0, |id| id + 1);
    // Joining the channel and reading the backlog under one lock: no gap, no duplicate.
    let mut receiver = {
        let state = state.lock().expect("not poisoned");
        for frame in state.frames.get(from..).unwrap_or_default() {
            out.extend_from_slice(frame);
        }
        state.sender.subscribe()
    };
    stream.write_all(&out).await?;
    loop {
        out.clear();
        match receiver.recv().await {
            Ok(frame) => out.extend_from_slice(&frame),
            // A lagging reader is cut: its client sees lost events, not silence.
            Err(_) => return Ok(()),
        }
        // Everything else already queued, in the same write.
        loop {
            match receiver.try_recv() {
                Ok(frame) => out.extend_from_slice(&frame),
                Err(broadcast::error::TryRecvError::Empty) => break,
                Err(_) => return Ok(()),
            }
        }
        stream.write_all(&out).await?;
    }
}
