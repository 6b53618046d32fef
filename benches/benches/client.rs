//! Client-side decoding: `tower-sse-core`'s `Decoder` (alone and as `tower-sse-client`'s
//! `BodyEvents`) beside `eventsource-stream`, on small events and on one 8 MiB line fed in
//! 1,024 chunks; and whole streams over loopback, `tower-sse-client` beside
//! `reqwest-eventsource`.
//!
//! The small-events group runs twice: in wall time, and in the thread's CPU time
//! (`client_decode_small_events_cpu`), which leaves out the time the bench waits for a core
//! while other builds share the machine.

use std::{
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use bytes::Bytes;
use criterion::{
    Criterion, Throughput, criterion_group, criterion_main,
    measurement::{Measurement, ValueFormatter, WallTime},
};
use futures_util::{Stream, StreamExt, stream};
use http_body_util::StreamBody;
use tokio::io::AsyncWriteExt;
use tower_sse_core::{Decoded, Decoder};

/// ~1 MiB of small events, like a token or price feed: an id and a ~60-byte JSON data line.
fn small_events() -> Vec<u8> {
    let mut wire = Vec::new();
    let mut i = 0u64;
    while wire.len() < 1 << 20 {
        wire.extend_from_slice(
            format!(
                "id: {i}\ndata: {{\"token\":\"lorem ipsum\",\"index\":{i},\"logprob\":-0.25}}\n\n"
            )
            .as_bytes(),
        );
        i += 1;
    }
    wire
}

fn count_events(wire: &[u8]) -> usize {
    wire.windows(2).filter(|w| w == b"\n\n").count()
}

/// Drains a stream that never waits (its input is all in memory).
fn drain<S: Stream>(s: S) -> usize {
    let mut s = pin!(s);
    let mut cx = Context::from_waker(Waker::noop());
    let mut n = 0;
    loop {
        match s.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => {
                black_box(item);
                n += 1;
            }
            Poll::Ready(None) => return n,
            Poll::Pending => unreachable!("in-memory input never waits"),
        }
    }
}

fn decoder(chunks: &[Bytes], max: usize) -> usize {
    let mut decoder = Decoder::new().max_event_size(max);
    let mut n = 0;
    for chunk in chunks {
        decoder.feed(chunk);
        while let Some(item) = decoder.decode().expect("within the limit") {
            if let Decoded::Event(event) = item {
                black_box(&event);
                n += 1;
            }
        }
    }
    n
}

fn body_events(chunks: &[Bytes], max: usize) -> usize {
    let frames = stream::iter(
        chunks
            .iter()
            .cloned()
            .map(|c| Ok::<_, std::convert::Infallible>(http_body::Frame::data(c))),
    );
    drain(tower_sse_client::BodyEvents::new(StreamBody::new(frames)).max_event_size(max))
}

fn eventsource_stream(chunks: &[Bytes]) -> usize {
    use eventsource_stream::Eventsource;
    let s = stream::iter(
        chunks
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
    );
    drain(s.eventsource())
}

/// The small events as a network would deliver them: 16 KiB reads.
fn small_event_chunks() -> (Vec<Bytes>, usize, u64) {
    let wire = small_events();
    let events = count_events(&wire);
    let chunks = wire.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    (chunks, events, wire.len() as u64)
}

fn decode_small_events<M: Measurement>(c: &mut Criterion<M>, name: &str) {
    let (chunks, events, bytes) = small_event_chunks();
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("tower-sse-core Decoder", |b| {
        b.iter(|| assert_eq!(decoder(&chunks, 1 << 20), events));
    });
    group.bench_function("tower-sse-client BodyEvents", |b| {
        b.iter(|| assert_eq!(body_events(&chunks, 1 << 20), events));
    });
    group.bench_function("eventsource-stream", |b| {
        b.iter(|| assert_eq!(eventsource_stream(&chunks), events));
    });
    group.finish();
}

/// The CPU time of the bench's thread (Linux `CLOCK_THREAD_CPUTIME_ID`).
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Nanoseconds, like wall time: the same units and throughput.
        static WALL_TIME: WallTime = WallTime;
        WALL_TIME.formatter()
    }
}

#[allow(unsafe_code)]
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` only writes the `timespec` it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

fn decode_cpu(c: &mut Criterion<ThreadCpuTime>) {
    decode_small_events(c, "client_decode_small_events_cpu");
}

fn decode(c: &mut Criterion) {
    decode_small_events(c, "client_decode_small_events");

    // One 8 MiB single-line event in 1,024 chunks of 8 KiB.
    let mut line = b"data: ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 8 << 20));
    line.extend_from_slice(b"\n\n");
    let chunks: Vec<Bytes> = line
        .chunks(line.len().div_ceil(1024))
        .map(Bytes::copy_from_slice)
        .collect();
    assert_eq!(chunks.len(), 1024);
    let mut group = c.benchmark_group("client_8mib_line_1024_chunks");
    group
        .sample_size(10)
        .throughput(Throughput::Bytes(line.len() as u64));
    group.bench_function("tower-sse-core Decoder", |b| {
        b.iter(|| assert_eq!(decoder(&chunks, 16 << 20), 1));
    });
    group.bench_function("tower-sse-client BodyEvents", |b| {
        b.iter(|| assert_eq!(body_events(&chunks, 16 << 20), 1));
    });
    group.measurement_time(Duration::from_secs(1));
    group.bench_function("eventsource-stream", |b| {
        b.iter(|| assert_eq!(eventsource_stream(&chunks), 1));
    });
    group.finish();
}

/// A loopback server that answers every request with `wire` as an event stream, then closes.
async fn serve(wire: Bytes) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let wire = wire.clone();
            tokio::spawn(async move {
                let mut buf = [0; 4096];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
                let head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                let _ = socket.write_all(head).await;
                let _ = socket.write_all(&wire).await;
            });
        }
    });
    url
}

fn loopback(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let wire = small_events();
    let events = count_events(&wire);
    let url = runtime.block_on(serve(Bytes::from(wire.clone())));
    let mut group = c.benchmark_group("client_loopback_1mib_small_events");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("tower-sse-client", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut source = tower_sse_client::EventSource::get(&url).unwrap();
                let mut n = 0;
                while let Some(Ok(item)) = source.next().await {
                    if let tower_sse_client::Event::Message(m) = item {
                        black_box(m);
                        n += 1;
                    }
                }
                assert_eq!(n, events);
            })
        });
    });
    group.bench_function("reqwest-eventsource", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut source = reqwest_eventsource::EventSource::get(&url);
                let mut n = 0;
                while let Some(Ok(item)) = source.next().await {
                    if let reqwest_eventsource::Event::Message(m) = item {
                        black_box(m);
                        n += 1;
                    }
                }
                assert_eq!(n, events);
            })
        });
    });
    group.finish();
}

criterion_group!(benches, decode, loopback);
criterion_group! {
    name = cpu;
    config = Criterion::default().with_measurement(ThreadCpuTime);
    targets = decode_cpu
}
criterion_main!(benches, cpu);
