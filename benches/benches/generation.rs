//! Generations (`tower_sse::generation`): what the stack adds to the time to first token, in
//! process and over Redis, and the latency of a resume on another instance.
//!
//! Run with `cargo bench -p tower-sse-benches --bench generation` (needs `redis-server` on the
//! `PATH`; `cargo xtask ci` installs it; the bench starts its own on a free loopback port).
//! Knob: `GENERATION_BENCH_SAMPLES` (samples per row, default 300).
//!
//! Every reader is a real HTTP/1.1 client on loopback, reading a hyper server that answers
//! `GET /g/{id}` with [`Generations::open`]; times run until the client's `read` returns the
//! bytes of the token.
//!
//! - **token → client**: the reader is connected and waiting; the producer emits one token at
//!   `t0`; time until the client has it. This is what the stack adds to a model's time to
//!   first token (log append, fan-out, HTTP write, loopback).
//! - **start → first token at client**: `Generations::start` (idempotency claim, marker
//!   append, record write) with a producer that emits at once, then the `GET`: the whole path
//!   from the request to the first token for a new answer.
//! - **resume on another instance**: an answer of 100 tokens produced on instance A (finished);
//!   a client opens `GET` on instance B with `Last-Event-ID` of token 50; time until it has
//!   token 51. Both instances are in this process, each with its own hub, Redis connections
//!   and HTTP server.

use std::{
    convert::Infallible,
    env,
    net::{SocketAddr, TcpListener as StdListener},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};
use tower_sse::{
    Hub,
    generation::{GenerationConfig, Generations, Opened, Resume},
};
use tower_sse_core::{ClaimStore, EventLog, MemoryClaimStore, MemoryLog};
use tower_sse_redis::{RedisClaimStore, RedisLog};

/// `redis-server` on a free port, killed on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start() -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH: run `cargo xtask ci` or apt-get install it");
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn row(name: &str, samples: Vec<Duration>) {
    let n = samples.len();
    let (p50, p99) = percentiles(samples);
    println!(
        "| {name} | {n} | {:.0} µs | {:.0} µs |",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

/// An HTTP server answering `GET /g/{id}` (with `Last-Event-ID`) from `generations`.
async fn serve<L: EventLog, S: ClaimStore>(generations: Generations<L, S>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let generations = generations.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let generations = generations.clone();
                    async move {
                        let id = request.uri().path().trim_start_matches("/g/").to_owned();
                        let last = request
                            .headers()
                            .get("last-event-id")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let resume = Resume::from_request(last.as_deref(), None).expect("resume");
                        let response = match generations.open(&id, resume).await {
                            Ok(Opened::Stream(stream)) => stream.into_response().map(Either::Left),
                            _ => {
                                let mut r = Response::new(Either::Right(Empty::new()));
                                *r.status_mut() = StatusCode::NOT_FOUND;
                                r
                            }
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Sends `GET /g/{id}`; the response is read by [`read_until`]. (Without a layer priming the
/// stream, the head goes out with the first event.)
async fn get(addr: SocketAddr, id: &str, last_event_id: Option<&str>) -> (TcpStream, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut head = format!("GET /g/{id} HTTP/1.1\r\nhost: bench\r\n");
    if let Some(last) = last_event_id {
        head.push_str(&format!("last-event-id: {last}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.expect("write");
    (stream, Vec::new())
}

/// Reads until `needle` has arrived.
async fn read_until(stream: &mut TcpStream, mut seen: Vec<u8>, needle: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 8192];
    while !seen.windows(needle.len()).any(|w| w == needle) {
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before {:?}", String::from_utf8_lossy(needle));
        seen.extend_from_slice(&buf[..n]);
    }
    seen
}

/// Token → client, with the reader connected first.
async fn token_to_client<L: EventLog, S: ClaimStore>(
    generations: &Generations<L, S>,
    addr: SocketAddr,
    samples: usize,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let emitted = Arc::new(Mutex::new(None));
        let stamp = Arc::clone(&emitted);
        let id = generations
            .start(None, move |sink| async move {
                let _ = go_rx.await;
                *stamp.lock().expect("stamp") = Some(Instant::now());
                sink.token("first").await.map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .expect("start")
            .id;
        let (mut stream, seen) = get(addr, &id, None).await;
        // Let the server open the generation and subscribe before the token comes.
        tokio::time::sleep(Duration::from_millis(5)).await;
        go_tx.send(()).expect("producer waiting");
        let seen = read_until(&mut stream, seen, b"\"text\":\"first\"").await;
        let arrived = Instant::now();
        let t0 = emitted.lock().expect("stamp").expect("emitted");
        out.push(arrived - t0);
        read_until(&mut stream, seen, b"event: done").await;
    }
    out
}

/// Start → first token at the client, the producer emitting at once.
async fn start_to_first_token<L: EventLog, S: ClaimStore>(
    generations: &Generations<L, S>,
    addr: SocketAddr,
    samples: usize,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t0 = Instant::now();
        let id = generations
            .start(None, |sink| async move {
                sink.token("first").await.map_err(|e| e.to_string())?;
                Ok(())
            })
            .await
            .expect("start")
            .id;
        let (mut stream, seen) = get(addr, &id, None).await;
        read_until(&mut stream, seen, b"\"text\":\"first\"").await;
        out.push(t0.elapsed());
    }
    out
}

/// Resume on instance B of an answer produced on A.
async fn resume_elsewhere(
    a: &Generations<RedisLog, RedisClaimStore>,
    b_addr: SocketAddr,
    a_addr: SocketAddr,
    samples: usize,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        let id = a
            .start(None, |sink| async move {
                for i in 0..100 {
                    sink.token(&format!("t{i}"))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(())
            })
            .await
            .expect("start")
            .id;
        // Read it whole on A, to learn the id of token 50.
        let (mut stream, mut seen) = get(a_addr, &id, None).await;
        let mut buf = [0u8; 65536];
        while !seen.windows(11).any(|w| w == b"event: done") {
            let n = stream.read(&mut buf).await.expect("read");
            assert!(n > 0);
            seen.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&seen);
        let at = text.find("\"text\":\"t50\"").expect("token 50");
        let before = &text[..at];
        let id_line = before.rfind("id: ").expect("an id");
        let last = before[id_line + 4..]
            .lines()
            .next()
            .expect("id line")
            .to_owned();
        let t0 = Instant::now();
        let (mut stream, seen) = get(b_addr, &id, Some(&last)).await;
        read_until(&mut stream, seen, b"\"text\":\"t51\"").await;
        out.push(t0.elapsed());
    }
    out
}

fn config() -> GenerationConfig {
    GenerationConfig::default()
}

fn main() {
    let samples = env::var("GENERATION_BENCH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_usize)
        .max(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let server = Server::start();
    runtime.block_on(async {
        // Give redis-server a moment to listen.
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", server.port)).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!("| row | samples | p50 | p99 |\n| --- | ---: | ---: | ---: |");
        let memory = Generations::new(
            Hub::with_log(MemoryLog::new()),
            MemoryClaimStore::new(),
            config(),
        );
        let memory_addr = serve(memory.clone()).await;
        row(
            "token → client, MemoryLog (in process)",
            token_to_client(&memory, memory_addr, samples).await,
        );
        row(
            "start → first token at client, MemoryLog",
            start_to_first_token(&memory, memory_addr, samples).await,
        );

        let instance = || async {
            let log = RedisLog::connect(&server.url()).await.expect("redis");
            let store = RedisClaimStore::new(&log);
            Generations::new(Hub::with_live_log(log), store, config())
        };
        let a = instance().await;
        let b = instance().await;
        let (a_addr, b_addr) = (serve(a.clone()).await, serve(b.clone()).await);
        row(
            "token → client, RedisLog (live tail)",
            token_to_client(&a, a_addr, samples).await,
        );
        row(
            "start → first token at client, RedisLog",
            start_to_first_token(&a, a_addr, samples).await,
        );
        row(
            "resume on another instance (B, Last-Event-ID), RedisLog",
            resume_elsewhere(&a, b_addr, a_addr, samples).await,
        );
    });
    drop(server);
}
