//! Large events through the layer: server CPU and minor page faults per event, beside axum's
//! `Sse`, over one loopback HTTP/1.1 connection with a raw client and with hyper's client.
//!
//! Run with `cargo bench -p tower-sse-benches --bench large`. Knobs (environment):
//! - `LARGE_BENCH_EVENTS`: events per run (default 200,000);
//! - `LARGE_BENCH_SHAPES`: a comma list of `large`, `small` (default both);
//! - `LARGE_BENCH_RUNS`: runs per row, alternating between the rows of a table, the one with the
//!   least server CPU is kept (default 3);
//! - `LARGE_BENCH_ROUTES`: a comma list of route names (`axum`, `layer`, `layer-shared`,
//!   `layer-no-coalesce`; default all), e.g. to profile one server with `perf`;
//! - `LARGE_BENCH_CLIENTS`: a comma list of `raw`, `hyper` (default both);
//! - `LARGE_BENCH_COALESCE`: the layer's `coalesce_limit` on the coalescing routes (default:
//!   the layer's default).
//!
//! The server is axum 0.8 (`axum::serve`) on one thread (a current-thread tokio runtime) of a
//! child process (this binary, started with `LARGE_BENCH_SERVER=1`), with the system
//! allocator (glibc's malloc on Linux), so that the client's allocations share neither its
//! heap nor malloc's process-wide thresholds. Its CPU time and minor page faults are read from
//! `/proc/thread-self/{schedstat,stat}` by a `/stats` route served on that same thread, before
//! and after each run. Shapes are the `encode` bench's:
//! **large** is id `12345`, event `update` and 4,096 bytes of data in 33 lines (4,320 bytes
//! encoded), **small** the same with 64 bytes of JSON (97 bytes encoded).
//!
//! Clients: **raw** writes the request and reads the socket into a 256 KiB buffer, counting
//! bytes until the chunked body's end (it does no HTTP parsing, so it is never the bottleneck);
//! **hyper** is hyper's HTTP/1.1 client, reading body frames.

use std::{
    convert::Infallible,
    env,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    response::{Response, sse::Sse},
    routing::get,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use http::{Request, header::CONTENT_TYPE};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tower_sse::SseLayer;

#[allow(dead_code)] // the shapes only; the encoders are the `encode` bench's
mod encoders;

use encoders::Shape;

/// The routes of one shape: (path suffix, what it is).
const ROUTES: &[(&str, &str)] = &[
    ("axum", "axum Sse (its own encoder)"),
    ("layer", "axum + SseLayer, Event::to_bytes per event"),
    ("layer-shared", "axum + SseLayer, pre-encoded shared Bytes"),
    (
        "layer-no-coalesce",
        "axum + SseLayer, to_bytes per event, coalescing off",
    ),
    // Events arriving in bursts: the handler's stream is pending after every `k` events, so
    // the layer can join at most `k`; compare with the coalescing-off row.
    (
        "layer-burst-1",
        "axum + SseLayer, to_bytes, bursts of 1 event",
    ),
    (
        "layer-burst-4",
        "axum + SseLayer, to_bytes, bursts of 4 events",
    ),
    (
        "layer-burst-16",
        "axum + SseLayer, to_bytes, bursts of 16 events",
    ),
];

/// The burst size of a `*-burst-<k>` route.
fn burst(route: &str) -> Option<usize> {
    route
        .rsplit_once("-burst-")
        .map(|(_, k)| k.parse().unwrap())
}

/// `n` items made by `make`, the stream pending (and woken at once) after every `k`: events
/// that arrive in bursts of `k`.
fn in_bursts<T>(n: usize, k: usize, make: impl FnMut() -> T) -> impl Stream<Item = T> {
    stream::unfold((0, make), move |(i, mut make)| async move {
        if i == n {
            return None;
        }
        if i > 0 && i % k == 0 {
            tokio::task::yield_now().await;
        }
        Some((make(), (i + 1, make)))
    })
}

fn main() {
    let events = env_usize("LARGE_BENCH_EVENTS", 200_000);
    let runs = env_usize("LARGE_BENCH_RUNS", 3).max(1);
    let wanted = env::var("LARGE_BENCH_SHAPES").unwrap_or_else(|_| "large,small".into());
    let shapes: Vec<Shape> = encoders::shapes()
        .into_iter()
        .filter(|s| wanted.split(',').any(|w| w.trim() == s.name))
        .collect();
    if env::var_os(SERVER_ENV).is_some() {
        return serve(&shapes, events);
    }
    let mut server = KillOnDrop(
        Command::new(env::current_exe().unwrap())
            .env(SERVER_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let addr = server_addr(&mut server);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "{events} events per run over one loopback HTTP/1.1 connection; server: axum on one \
         thread, glibc malloc; least server CPU of {runs} runs"
    );
    for shape in &shapes {
        let event_len = encoded(shape).len();
        println!("\n{} events ({event_len} bytes encoded)", shape.name);
        println!(
            "| {:<52} | {:<6} | {:>10} | {:>12} | {:>8} | {:>13} | {:>10} |",
            "server", "client", "events/s", "server µs/ev", "vs axum", "minflt/event", "frames"
        );
        println!(
            "|{:-<54}|{:-<8}|{:->12}|{:->14}|{:->10}|{:->15}|{:->12}|",
            "", "", "", "", "", "", ""
        );
        let routes = env::var("LARGE_BENCH_ROUTES").unwrap_or_default();
        let clients = env::var("LARGE_BENCH_CLIENTS").unwrap_or_default();
        let picked = |list: &str, name: &str| {
            list.is_empty() || list.split(',').any(|item| item.trim() == name)
        };
        for client in [Client::Raw, Client::Hyper] {
            if !picked(&clients, client.name()) {
                continue;
            }
            let mut axum_cpu = None;
            let shape_routes = ROUTES
                .iter()
                .filter(|(r, _)| picked(&routes, r))
                // Bursts matter for small events only: large ones are never joined.
                .filter(|(r, _)| burst(r).is_none() || shape.name == "small");
            let shape_routes: Vec<_> = shape_routes.collect();
            let path = |route: &str| format!("/{}/{route}", shape.name);
            // The runs alternate between the routes (A B C, A B C, ...), so that every route's
            // least CPU is picked from the same stretch of the host's load: on a shared or
            // virtual machine that load drifts over a run of the bench, and routes measured
            // one after the other would carry the drift into their ratios.
            let mut bests: Vec<Option<Run>> = shape_routes.iter().map(|_| None).collect();
            for _ in 0..runs {
                for ((route, _), best) in shape_routes.iter().zip(&mut bests) {
                    let run = rt.block_on(measure(addr, &path(route), client));
                    if best.as_ref().is_none_or(|b| run.cpu < b.cpu) {
                        *best = Some(run);
                    }
                }
            }
            for ((route, name), best) in shape_routes.into_iter().zip(bests) {
                let path = path(route);
                let best = best.expect("at least one run");
                // Every route sends every event (axum's encoder writes the same bytes as
                // ours for these shapes; the layer adds its priming frame).
                let expected = (events * event_len) as u64;
                assert!(
                    best.bytes >= expected && best.bytes <= expected + 64 + events as u64 * 8,
                    "{path}: {} body bytes for {events} events of {event_len}",
                    best.bytes
                );
                let per_event = best.cpu / events as f64 * 1e6;
                let axum = *axum_cpu.get_or_insert(per_event);
                println!(
                    "| {:<52} | {:<6} | {:>10.0} | {:>12.3} | {:>7.2}x | {:>13.4} | {:>10} |",
                    name,
                    client.name(),
                    events as f64 / best.wall.as_secs_f64(),
                    per_event,
                    per_event / axum,
                    best.minflt as f64 / events as f64,
                    best.frames.map_or("-".into(), |f| f.to_string()),
                );
            }
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

fn encoded(shape: &Shape) -> Bytes {
    encoders::event(shape).to_bytes()
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

fn shape_router(shape: &Shape, n: usize) -> Router {
    let shape = Arc::new(shape.clone());
    let layer = match env::var("LARGE_BENCH_COALESCE") {
        Ok(limit) => SseLayer::new().coalesce_limit(limit.parse().expect("a number")),
        Err(_) => SseLayer::new(),
    };
    let per_event = {
        let shape = Arc::clone(&shape);
        move || async move {
            let events = stream::iter(0..n).map(move |_| Ok::<_, Infallible>(encoded(&shape)));
            event_stream(Body::from_stream(events))
        }
    };
    let shared = {
        let event = encoded(&shape);
        move || async move {
            let events = stream::iter(0..n).map(move |_| Ok::<_, Infallible>(event.clone()));
            event_stream(Body::from_stream(events))
        }
    };
    let axum_sse = {
        let shape = Arc::clone(&shape);
        move || async move {
            let events =
                stream::iter(0..n).map(move |_| Ok::<_, Infallible>(encoders::axum_event(&shape)));
            Sse::new(events)
        }
    };
    let mut router = Router::new()
        .route("/axum", get(axum_sse))
        .route("/layer", get(per_event.clone()).layer(layer.clone()))
        .route("/layer-shared", get(shared).layer(layer))
        .route(
            "/layer-no-coalesce",
            get(per_event).layer(SseLayer::new().coalesce_limit(0)),
        );
    for k in ROUTES.iter().filter_map(|(route, _)| burst(route)) {
        let layer_shape = Arc::clone(&shape);
        let layer_bursts = move || async move {
            let events = in_bursts(n, k, move || Ok::<_, Infallible>(encoded(&layer_shape)));
            event_stream(Body::from_stream(events))
        };
        router = router.route(
            &format!("/layer-burst-{k}"),
            get(layer_bursts).layer(SseLayer::new()),
        );
    }
    router
}

/// The server thread's CPU time (ns) and minor page faults, as `"<ns> <minflt>"`.
async fn thread_stats() -> String {
    let read = |file: &str| std::fs::read_to_string(format!("/proc/thread-self/{file}")).unwrap();
    let cpu_ns: u64 = read("schedstat")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stat = read("stat");
    // Fields after the command name (in parentheses, which may hold spaces); minflt is the
    // 10th field of the line, the 8th after the name.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let minflt: u64 = rest.split_whitespace().nth(7).unwrap().parse().unwrap();
    format!("{cpu_ns} {minflt}")
}

/// Set in the child process that serves.
const SERVER_ENV: &str = "LARGE_BENCH_SERVER";

/// The child process: serves every route on one thread (not the main one: a tokio worker,
/// as in a multi-threaded server, allocates from a thread arena of its own) until killed.
fn serve(shapes: &[Shape], n: usize) {
    let mut app = Router::new().route("/stats", get(thread_stats));
    for shape in shapes {
        app = app.nest(&format!("/{}", shape.name), shape_router(shape, n));
    }
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("READY {}", listener.local_addr().unwrap().port());
            axum::serve(listener, app).await.unwrap();
        });
    })
    .join()
    .unwrap();
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn server_addr(server: &mut KillOnDrop) -> SocketAddr {
    let mut line = String::new();
    let stdout = server.0.stdout.take().unwrap();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let port: u16 = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Raw,
    Hyper,
}

impl Client {
    fn name(self) -> &'static str {
        match self {
            Client::Raw => "raw",
            Client::Hyper => "hyper",
        }
    }
}

struct Run {
    wall: Duration,
    /// Server CPU seconds.
    cpu: f64,
    minflt: u64,
    bytes: u64,
    /// Body frames the hyper client received (`None` for the raw client).
    frames: Option<u64>,
}

async fn stats(addr: SocketAddr) -> (u64, u64) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .uri("/stats")
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = client.send_request(request).await.unwrap().into_body();
    let text = String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap());
    (fields.next().unwrap(), fields.next().unwrap())
}

async fn measure(addr: SocketAddr, path: &str, client: Client) -> Run {
    let (cpu0, flt0) = stats(addr).await;
    let start = Instant::now();
    let (bytes, frames) = match client {
        Client::Raw => (raw_get(addr, path).await, None),
        Client::Hyper => {
            let (bytes, frames) = hyper_get(addr, path).await;
            (bytes, Some(frames))
        }
    };
    let wall = start.elapsed();
    let (cpu1, flt1) = stats(addr).await;
    Run {
        wall,
        cpu: (cpu1 - cpu0) as f64 / 1e9,
        minflt: flt1 - flt0,
        bytes,
        frames,
    }
}

/// Reads the whole response with plain socket reads; returns the body's bytes (chunked
/// framing included, minus the head), ending at the last chunk.
async fn raw_get(addr: SocketAddr, path: &str) -> u64 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    let mut head = None;
    let mut tail = Vec::with_capacity(16);
    loop {
        let read = stream.read(&mut buf).await.unwrap();
        if read == 0 {
            break;
        }
        if head.is_none() {
            let end = buf[..read]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("the head arrives in the first read");
            head = Some(end + 4);
        }
        total += read as u64;
        tail.extend_from_slice(&buf[read.saturating_sub(7)..read]);
        let keep = tail.len().saturating_sub(7);
        tail.drain(..keep);
        if tail.ends_with(b"\r\n0\r\n\r\n") {
            break;
        }
    }
    // The chunk headers are counted too: within the tolerance of the check in `main`.
    total - head.unwrap() as u64
}

async fn hyper_get(addr: SocketAddr, path: &str) -> (u64, u64) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut client, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(path)
        .header("host", "bench")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let mut body = client.send_request(request).await.unwrap().into_body();
    let (mut bytes, mut frames) = (0, 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes += data.len() as u64;
            frames += 1;
        }
    }
    (bytes, frames)
}
