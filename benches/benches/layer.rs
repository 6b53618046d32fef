//! The `tower-sse` layer: (a) throughput over one loopback HTTP/1.1 connection, (b) server
//! memory and CPU per idle connection, (c) the pass-through cost on a non-SSE route.
//!
//! Run with `cargo bench -p tower-sse-benches --bench layer`. Knobs (environment):
//! - `LAYER_BENCH_EVENTS`: events per throughput run (default 1,000,000);
//! - `LAYER_BENCH_IDLE`: idle connections per server (default 10,000; the parent and the
//!   server each need one file descriptor per connection, see `ulimit -n`);
//! - `LAYER_BENCH_REQUESTS`: requests per pass-through HTTP run (default 20,000);
//! - `LAYER_BENCH_ONLY`: a comma list of `throughput`, `idle`, `passthrough` (default all);
//! - `LAYER_BENCH_SUBSCRIBER=info`: installs a `tracing` subscriber at `INFO` (formatting to
//!   a sink) before the runs, to measure tower-sse's `tracing` feature with a subscriber
//!   beside the default run without one.
//!
//! (a), (b) and the HTTP half of (c) print tables; the in-process half of (c) is a criterion
//! group. The idle servers run in a child
//! process (this same binary, started with `LAYER_BENCH_IDLE_SERVER=<kind>`) so that the
//! client's memory does not count.

use std::{
    convert::Infallible,
    env,
    hint::black_box,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Body,
    response::{
        Response,
        sse::{Event as AxumEvent, KeepAlive, Sse},
    },
    routing::get,
};
use bytes::{Bytes, BytesMut};
use criterion::Criterion;
use futures_util::{FutureExt, StreamExt, stream};
use http::{Request, header::CONTENT_TYPE};
use http_body::Frame;
use http_body_util::{BodyExt, Either, Empty, Full, StreamBody};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};
use tower::{Layer, Service, ServiceExt, service_fn};
use tower_sse::SseLayer;
use tower_sse_core::Event;

/// 64 bytes of JSON: the `data` of every event.
const JSON: &str = r#"{"sensor":"temp-17","value":21.375,"unit":"C","ok":true,"seq":42}"#;

fn main() {
    if let Ok(kind) = env::var("LAYER_BENCH_IDLE_SERVER") {
        return idle_server(&kind);
    }
    if env::var("LAYER_BENCH_SUBSCRIBER").is_ok_and(|v| v == "info") {
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_writer(std::io::sink)
            .init();
        println!("tracing: a subscriber at INFO (formatting to a sink)");
    }
    let only = env::var("LAYER_BENCH_ONLY").unwrap_or_default();
    let run = |part: &str| only.is_empty() || only.split(',').any(|p| p.trim() == part);
    if run("throughput") {
        throughput(env_usize("LAYER_BENCH_EVENTS", 1_000_000));
    }
    if run("idle") {
        idle(env_usize("LAYER_BENCH_IDLE", 10_000));
    }
    if run("passthrough") {
        pass_through();
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

fn encoded_event() -> Bytes {
    Event::new()
        .id("12345")
        .unwrap()
        .event("update")
        .unwrap()
        .data(JSON)
        .to_bytes()
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// (a) Throughput

/// The routes of the throughput run: (path, what it is).
const ROUTES: &[(&str, &str)] = &[
    ("/layer", "axum + SseLayer, event encoded per event"),
    ("/layer-shared", "axum + SseLayer, pre-encoded shared Bytes"),
    (
        "/layer-no-coalesce",
        "axum + SseLayer, coalescing off (coalesce_limit 0)",
    ),
    ("/axum", "axum Sse + KeepAlive (its own encoder)"),
    ("/raw-layer", "hyper + SseLayer, one frame per event"),
    ("/raw-frames", "hyper, pre-encoded, one frame per event"),
    (
        "/raw-large",
        "hyper, pre-encoded, 64 KiB frames (the limit)",
    ),
];

fn throughput_router(n: usize) -> Router {
    let per_event = move || async move {
        let events = stream::iter(0..n).map(|_| Ok::<_, Infallible>(encoded_event()));
        event_stream(Body::from_stream(events))
    };
    let shared = move || async move {
        let event = encoded_event();
        let events = stream::iter(0..n).map(move |_| Ok::<_, Infallible>(event.clone()));
        event_stream(Body::from_stream(events))
    };
    let axum_sse = move || async move {
        let events = stream::iter(0..n).map(|_| {
            Ok::<_, Infallible>(AxumEvent::default().id("12345").event("update").data(JSON))
        });
        Sse::new(events).keep_alive(KeepAlive::default())
    };
    Router::new()
        .route("/layer", get(per_event).layer(SseLayer::new()))
        .route("/layer-shared", get(shared).layer(SseLayer::new()))
        .route(
            "/layer-no-coalesce",
            get(shared).layer(SseLayer::new().coalesce_limit(0)),
        )
        .route("/axum", get(axum_sse))
}

type RawBody = StreamBody<stream::BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

/// A bare hyper response of `n` pre-encoded events, one frame per event or in 64 KiB frames.
fn raw_response(path: &str, n: usize) -> http::Response<RawBody> {
    let event = encoded_event();
    let frames: stream::BoxStream<'static, _> = if path == "/raw-large" {
        let per_frame = (64 * 1024) / event.len();
        let mut big = BytesMut::with_capacity(per_frame * event.len());
        for _ in 0..per_frame {
            big.extend_from_slice(&event);
        }
        let big = big.freeze();
        let (full, rest) = (n / per_frame, n % per_frame);
        let tail = big.slice(..rest * event.len());
        stream::iter(0..full)
            .map(move |_| big.clone())
            .chain(stream::iter((rest > 0).then_some(tail)))
            .map(|b| Ok(Frame::data(b)))
            .boxed()
    } else {
        stream::iter(0..n)
            .map(move |_| Ok(Frame::data(event.clone())))
            .boxed()
    };
    http::Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(StreamBody::new(frames))
        .unwrap()
}

/// Starts the throughput servers on their own thread (one core): axum and bare hyper.
fn start_throughput_servers(n: usize) -> (SocketAddr, SocketAddr) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let axum_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let raw_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((
                axum_listener.local_addr().unwrap(),
                raw_listener.local_addr().unwrap(),
            ))
            .unwrap();
            tokio::spawn(async move {
                axum::serve(axum_listener, throughput_router(n))
                    .await
                    .unwrap()
            });
            let handler = service_fn(move |req: Request<hyper::body::Incoming>| {
                let response = raw_response(req.uri().path(), n);
                async move { Ok::<_, Infallible>(response) }
            });
            let layered = SseLayer::new().layer(handler);
            loop {
                let (stream, _) = raw_listener.accept().await.unwrap();
                let (handler, layered) = (handler, layered.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (handler, layered) = (handler, layered.clone());
                        async move {
                            // `Either`, not a boxed body: the bare route must pay nothing extra.
                            if req.uri().path() == "/raw-layer" {
                                let response = layered.oneshot(req).await?;
                                Ok::<_, Infallible>(response.map(Either::Left))
                            } else {
                                let response = handler.oneshot(req).await?;
                                Ok(response.map(Either::Right))
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                        .await;
                });
            }
        })
    });
    rx.recv().unwrap()
}

struct Run {
    elapsed: Duration,
    bytes: u64,
    frames: u64,
}

/// One GET over a fresh HTTP/1.1 connection, reading the whole body.
async fn fetch(addr: SocketAddr, path: &str) -> Run {
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
    let start = Instant::now();
    let mut body = client.send_request(request).await.unwrap().into_body();
    let (mut bytes, mut frames) = (0, 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes += data.len() as u64;
            frames += 1;
        }
    }
    Run {
        elapsed: start.elapsed(),
        bytes,
        frames,
    }
}

fn throughput(n: usize) {
    let (axum_addr, raw_addr) = start_throughput_servers(n);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event_len = encoded_event().len() as u64;
    println!(
        "\n(a) throughput: {n} events of {event_len} bytes (id 12345, event update, 64-byte \
         JSON data), one loopback HTTP/1.1 connection, server and client one thread each; \
         best of 3"
    );
    println!(
        "| {:<52} | {:>12} | {:>8} | {:>12} |",
        "server", "events/s", "MB/s", "client reads"
    );
    println!("|{:-<54}|{:->14}|{:->10}|{:->14}|", "", "", "", "");
    for (path, name) in ROUTES {
        let addr = if path.starts_with("/raw") {
            raw_addr
        } else {
            axum_addr
        };
        let best = (0..3)
            .map(|_| rt.block_on(fetch(addr, path)))
            .min_by_key(|run| run.elapsed)
            .unwrap();
        // Every route sends every event; axum's encoder may format the same event a few
        // bytes differently, and the layer adds its priming frame.
        assert!(
            best.bytes.abs_diff(n as u64 * event_len) <= n as u64 * 4 + 16,
            "{path}: {} bytes for {n} events",
            best.bytes
        );
        let secs = best.elapsed.as_secs_f64();
        println!(
            "| {:<52} | {:>12.0} | {:>8.0} | {:>12} |",
            name,
            n as f64 / secs,
            best.bytes as f64 / secs / 1e6,
            best.frames
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Idle connections

const IDLE_KINDS: &[(&str, &str)] = &[
    ("hyper", "bare hyper, pending body, no heartbeat"),
    ("hyper-layer", "hyper + SseLayer (1 s heartbeat)"),
    ("axum-keepalive", "axum Sse + KeepAlive (1 s)"),
    ("axum-layer", "axum + SseLayer (1 s heartbeat)"),
];

/// The child process: serves pending event streams of one kind until killed.
fn idle_server(kind: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("READY {}", listener.local_addr().unwrap().port());
        let layer = SseLayer::new().heartbeat(Duration::from_secs(1));
        match kind {
            "axum-keepalive" => {
                let handler = || async {
                    let events = stream::pending::<Result<AxumEvent, Infallible>>();
                    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(1)))
                };
                let app = Router::new().route("/events", get(handler));
                axum::serve(listener, app).await.unwrap();
            }
            "axum-layer" => {
                let handler = || async {
                    let events = stream::pending::<Result<Bytes, Infallible>>();
                    event_stream(Body::from_stream(events))
                };
                let app = Router::new().route("/events", get(handler)).layer(layer);
                axum::serve(listener, app).await.unwrap();
            }
            "hyper" | "hyper-layer" => {
                let handler = service_fn(|_req: Request<hyper::body::Incoming>| async {
                    let body =
                        StreamBody::new(stream::pending::<Result<Frame<Bytes>, Infallible>>());
                    Ok::<_, Infallible>(
                        http::Response::builder()
                            .header(CONTENT_TYPE, "text/event-stream")
                            .body(body)
                            .unwrap(),
                    )
                });
                let with_layer = kind == "hyper-layer";
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let io = TokioIo::new(stream);
                    let http = hyper::server::conn::http1::Builder::new();
                    if with_layer {
                        let service = TowerToHyperService::new(layer.clone().layer(handler));
                        tokio::spawn(async move { http.serve_connection(io, service).await });
                    } else {
                        let service = TowerToHyperService::new(handler);
                        tokio::spawn(async move { http.serve_connection(io, service).await });
                    }
                }
            }
            other => panic!("unknown idle server kind {other}"),
        }
    });
}

fn proc_field(pid: u32, file: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/{file}")).expect("/proc is readable")
}

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = proc_field(pid, "status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// User plus system CPU time of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = proc_field(pid, "stat");
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Opens `n` event-stream connections that read (and count) whatever the server sends.
async fn open_idle(addr: SocketAddr, n: usize, received: Arc<AtomicU64>) {
    let connected = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(256));
    for _ in 0..n {
        let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
        let (connected, received) = (Arc::clone(&connected), Arc::clone(&received));
        tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream
                .write_all(b"GET /events HTTP/1.1\r\nhost: bench\r\n\r\n")
                .await
                .unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 512];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let read = stream.read(&mut buf).await.unwrap();
                assert!(read > 0, "server closed the connection");
                head.extend_from_slice(&buf[..read]);
            }
            connected.fetch_add(1, Ordering::SeqCst);
            drop(permit);
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => received.fetch_add(read as u64, Ordering::Relaxed),
                };
            }
        });
    }
    while connected.load(Ordering::SeqCst) < n {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn idle(n: usize) {
    const WINDOW: Duration = Duration::from_secs(3);
    let ticks_per_second = clock_ticks_per_second();
    println!(
        "\n(b) idle: {n} open event-stream connections (HTTP/1.1), server in a child process \
         (multi-thread tokio runtime); RSS after the connections, CPU over {}s",
        WINDOW.as_secs()
    );
    println!(
        "| {:<40} | {:>14} | {:>17} | {:>13} | {:>16} |",
        "server", "RSS delta", "per connection", "over bare", "CPU / heartbeat"
    );
    println!(
        "|{:-<42}|{:->16}|{:->19}|{:->15}|{:->18}|",
        "", "", "", "", ""
    );
    let mut bare = None;
    for (kind, name) in IDLE_KINDS {
        let mut child = KillOnDrop(
            Command::new(env::current_exe().unwrap())
                .env("LAYER_BENCH_IDLE_SERVER", kind)
                .stdout(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let pid = child.0.id();
        let mut line = String::new();
        BufReader::new(child.0.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().strip_prefix("READY ").unwrap().parse().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));

        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let received = Arc::new(AtomicU64::new(0));
        // One warm-up connection, so one-time allocations do not count per connection.
        rt.block_on(open_idle(addr, 1, Arc::new(AtomicU64::new(0))));
        std::thread::sleep(Duration::from_millis(300));
        let before = rss(pid);
        rt.block_on(async {
            open_idle(addr, n, Arc::clone(&received)).await;
            // Let every timer fire at least once before measuring.
            tokio::time::sleep(Duration::from_millis(1500)).await;
        });
        let after = rss(pid);
        let (ticks0, bytes0) = (cpu_ticks(pid), received.load(Ordering::Relaxed));
        rt.block_on(async { tokio::time::sleep(WINDOW).await });
        let (ticks1, bytes1) = (cpu_ticks(pid), received.load(Ordering::Relaxed));
        drop(child);
        drop(rt);

        let per_connection = after.saturating_sub(before) as f64 / n as f64;
        let over_bare = match bare {
            None => {
                bare = Some(per_connection);
                "-".to_string()
            }
            Some(bare) => format!("{:+.0} B", per_connection - bare),
        };
        // The layer and axum both send 3-byte heartbeats (`:\n\n`), 8 bytes on the wire with
        // their chunk framing (`3\r\n` + payload + `\r\n`).
        let beats = (bytes1 - bytes0) as f64 / 8.0;
        let cpu = (ticks1 - ticks0) as f64 / ticks_per_second;
        let per_beat = if beats >= 1.0 {
            format!("{:.2} µs", cpu / beats * 1e6)
        } else {
            format!("({:.2} s idle CPU)", cpu)
        };
        println!(
            "| {:<40} | {:>11.1} MB | {:>15.0} B | {:>13} | {:>16} |",
            name,
            after.saturating_sub(before) as f64 / 1e6,
            per_connection,
            over_bare,
            per_beat
        );
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Pass-through

fn json_response() -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(JSON.as_bytes())))
        .unwrap()
}

/// Requests per second to a JSON route over one keep-alive HTTP/1.1 connection, with and
/// without the layer: what the per-response cost amounts to once there is a real server.
fn pass_through_http(requests: usize) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let bare = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let layered = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((bare.local_addr().unwrap(), layered.local_addr().unwrap()))
                .unwrap();
            let handler = service_fn(|_req: Request<hyper::body::Incoming>| async {
                Ok::<_, Infallible>(json_response())
            });
            let with_layer = SseLayer::new().layer(handler);
            tokio::spawn(async move {
                loop {
                    let (stream, _) = layered.accept().await.unwrap();
                    let service = TowerToHyperService::new(with_layer.clone());
                    tokio::spawn(
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service),
                    );
                }
            });
            loop {
                let (stream, _) = bare.accept().await.unwrap();
                let service = TowerToHyperService::new(handler);
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        })
    });
    let (bare, layered) = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let run = |addr: SocketAddr| {
        rt.block_on(async move {
            let stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (mut client, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let start = Instant::now();
            for _ in 0..requests {
                let request = Request::builder()
                    .uri("/json")
                    .header("host", "bench")
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let response = client.send_request(request).await.unwrap();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                assert_eq!(body.len(), JSON.len());
            }
            start.elapsed()
        })
    };
    println!(
        "\n(c) pass-through over HTTP/1.1: {requests} sequential JSON requests on one \
         keep-alive loopback connection; 5 alternating rounds"
    );
    println!(
        "| {:<24} | {:>14} | {:>14} |",
        "server", "best µs/req", "median µs/req"
    );
    println!("|{:-<26}|{:->16}|{:->16}|", "", "", "");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        without.push(run(bare));
        with.push(run(layered));
    }
    for (name, mut runs) in [("hyper, no layer", without), ("hyper + SseLayer", with)] {
        runs.sort();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / requests as f64;
        println!(
            "| {:<24} | {:>14.2} | {:>14.2} |",
            name,
            per(runs[0]),
            per(runs[runs.len() / 2])
        );
    }
}

fn pass_through() {
    pass_through_http(env_usize("LAYER_BENCH_REQUESTS", 20_000));
    let handler = service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(json_response()) });
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = c.benchmark_group("passthrough");
    let mut bare = handler;
    group.bench_function("no layer", |b| {
        b.iter(|| black_box(request(&mut bare)));
    });
    let mut layered = SseLayer::new().layer(handler);
    group.bench_function("SseLayer", |b| {
        b.iter(|| black_box(request(&mut layered)));
    });
    group.finish();
    c.final_summary();
}

/// Calls the service and reads the body; everything is ready at once, so no runtime is needed.
fn request<S, B>(service: &mut S) -> Bytes
where
    S: Service<Request<()>, Response = http::Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes, Error = Infallible> + Unpin,
{
    let response = service
        .call(Request::new(()))
        .now_or_never()
        .unwrap()
        .unwrap();
    let mut body = response.into_body();
    let frame = body.frame().now_or_never().unwrap().unwrap().unwrap();
    frame.into_data().unwrap()
}
