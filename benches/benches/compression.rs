//! gzip on an event stream: tower-http's `CompressionLayer` outside the `SseLayer`, with a
//! predicate that lets `text/event-stream` through, beside the same stream uncompressed.
//! The events have the demo ticker's shape (`event: tick`, the log's id, `{"n":N,
//! "unix_ms":T}`), published one at a time; the client reads over loopback HTTP/1.1, inflates
//! as bytes arrive and decodes. Printed: bytes on the wire per event, and the latency from
//! `publish` to the decoded event (each event must arrive before the next is published, which
//! only holds if the compressor flushes at every event boundary).
//!
//! Run with `cargo bench -p tower-sse-benches --bench compression`. Knobs (environment):
//! `COMPRESSION_BENCH_EVENTS` (default 500), `COMPRESSION_BENCH_INTERVAL_MS` (default 10).

use std::{
    io::Write,
    net::SocketAddr,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Body,
    extract::State,
    http::{Response, header::CONTENT_TYPE},
    routing::get,
};
use bytes::Bytes;
use flate2::write::GzDecoder;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower_http::compression::{CompressionLayer, predicate::NotForContentType};
use tower_sse::{Hub, SseLayer};
use tower_sse_core::{Decoded, Decoder, Event};

const TOPIC: &str = "ticker";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn ticker(State(hub): State<Hub>) -> Response<Body> {
    let subscription = hub.subscribe(TOPIC, None).await.expect("memory log");
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(Body::new(subscription))
        .unwrap()
}

async fn serve(compress: bool) -> (SocketAddr, Hub) {
    let hub = Hub::new();
    let routes = Router::new()
        .route("/ticker", get(ticker))
        .with_state(hub.clone())
        .layer(SseLayer::new());
    let app = match compress {
        // Everything but gRPC: event streams included, unlike tower-http's default.
        true => routes.layer(CompressionLayer::new().compress_when(NotForContentType::GRPC)),
        false => routes,
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hub)
}

struct Figures {
    wire_bytes: usize,
    plain_bytes: usize,
    latencies: Vec<Duration>,
}

async fn run(compress: bool, events: usize, interval: Duration) -> Figures {
    let (addr, hub) = serve(compress).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get("/ticker")
        .header("host", "localhost")
        .header("accept-encoding", "gzip")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let gzip = response.headers().get("content-encoding").is_some();
    assert_eq!(gzip, compress, "{:?}", response.headers());
    let mut body = response.into_body();
    let mut inflate = GzDecoder::new(Vec::new());
    let mut decoder = Decoder::new();
    let (mut wire_bytes, mut plain_bytes) = (0, 0);

    // Read the priming frame first, so that only the events are counted.
    let mut read = async |wire: &mut usize, plain: &mut usize, decoder: &mut Decoder| {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("an event within 10 s: held back")
            .expect("not ended")
            .unwrap();
        let Ok(data) = frame.into_data() else { return };
        *wire += data.len();
        if gzip {
            inflate.write_all(&data).unwrap();
            inflate.flush().unwrap();
            let out = std::mem::take(inflate.get_mut());
            *plain += out.len();
            decoder.feed(&out);
        } else {
            *plain += data.len();
            decoder.feed(&data);
        }
    };
    let (mut w0, mut p0) = (0, 0);
    read(&mut w0, &mut p0, &mut decoder).await;

    let mut latencies = Vec::with_capacity(events);
    for n in 1..=events {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let event = Event::new()
            .event("tick")
            .unwrap()
            .data(format!(r#"{{"n":{n},"unix_ms":{unix_ms}}}"#));
        let published = Instant::now();
        hub.publish(TOPIC, &event).await.unwrap();
        loop {
            match decoder.decode().unwrap() {
                Some(Decoded::Event(event)) => {
                    assert!(event.data().starts_with(&format!(r#"{{"n":{n},"#)));
                    break;
                }
                Some(_) => continue,
                None => read(&mut wire_bytes, &mut plain_bytes, &mut decoder).await,
            }
        }
        latencies.push(published.elapsed());
        tokio::time::sleep(interval).await;
    }
    Figures {
        wire_bytes,
        plain_bytes,
        latencies,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let events = env_or("COMPRESSION_BENCH_EVENTS", 500) as usize;
    let interval = Duration::from_millis(env_or("COMPRESSION_BENCH_INTERVAL_MS", 10));
    println!(
        "{events} ticker events, one every {} ms, over loopback HTTP/1.1\n",
        interval.as_millis()
    );
    println!(
        "| stream                                   | wire bytes/event | plain bytes/event | saved | latency p50 | p99 | max |"
    );
    println!(
        "|------------------------------------------|-----------------:|------------------:|------:|------------:|----:|----:|"
    );
    let mut plain_per_event = 0.0;
    for compress in [false, true] {
        let mut figures = run(compress, events, interval).await;
        figures.latencies.sort();
        let wire = figures.wire_bytes as f64 / events as f64;
        let plain = figures.plain_bytes as f64 / events as f64;
        if !compress {
            plain_per_event = wire;
        }
        let saved = 100.0 * (1.0 - wire / plain_per_event);
        let us = |d: Duration| format!("{} µs", d.as_micros());
        println!(
            "| {:<40} | {wire:>16.1} | {plain:>17.1} | {saved:>4.0} % | {:>11} | {} | {} |",
            if compress {
                "gzip (CompressionLayer outside SseLayer)"
            } else {
                "uncompressed (SseLayer only)"
            },
            us(percentile(&figures.latencies, 0.5)),
            us(percentile(&figures.latencies, 0.99)),
            us(*figures.latencies.last().unwrap()),
        );
    }
}
