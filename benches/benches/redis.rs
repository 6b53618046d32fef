//! The Redis log beside `MemoryLog`: publish throughput, replay latency, and the cross-server
//! delay of a hub over Redis.
//!
//! Run with `cargo bench -p tower-sse-benches --bench redis` (needs `redis-server` on the
//! `PATH`; `cargo xtask ci` installs it). The bench starts its own server on a free loopback
//! port, without persistence, and stops it at the end. Knobs (environment):
//! `REDIS_BENCH_EVENTS` (events per publish run, default 100,000) and `REDIS_BENCH_READS`
//! (reads per replay row, default 2,000).
//!
//! - Publish: one topic, the small event of the encode bench (`update`, 64 bytes of JSON).
//!   `append` awaited one at a time (one round trip each); 64 `append`s in flight over the one
//!   multiplexed connection (Redis pipelines them); `append_batch` of 1,000 (one script call).
//! - Replay: a topic of 100,000 events (unbounded retention), `read_after` from the middle
//!   for the next 100, and from the last event (a client that is up to date); median and p99
//!   of single reads, one at a time.
//! - Cross-server: two hubs over one Redis (`Hub::with_live_log`); an event published on A,
//!   time until a subscriber on B has it; one at a time.

use std::{
    env,
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tower_sse::Hub;
use tower_sse_core::{Event, EventLog, LoggedEvent, MemoryLog, ReplayOutcome, Retention};
use tower_sse_redis::RedisLog;

const PAGE: usize = 100;
const REPLAY_EVENTS: usize = 100_000;

fn knob(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: usize) -> Event<'static> {
    Event::new().event("update").expect("valid").data(format!(
        "{{\"n\":{i:>8},\"payload\":\"{}\"}}",
        "x".repeat(38)
    ))
}

/// `redis-server` on a free port, killed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = env::temp_dir().join(format!("tower-sse-redis-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a data directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on the PATH: run `cargo xtask ci` or apt-get install it");
        Self { child, port, dir }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn connect(server: &Server, prefix: &str) -> RedisLog {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match RedisLog::builder(server.url())
            .key_prefix(prefix)
            .retention(Retention::unbounded().max_events(1_000_000))
            .connect()
            .await
        {
            Ok(log) => return log,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
}

fn row(name: &str, events: usize, elapsed: Duration) {
    println!(
        "| {name} | {:.0} | {:.2} s |",
        events as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
}

/// Median and 99th percentile.
fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn publish(server: &Server, events: usize) {
    let batch: Vec<Event<'static>> = (0..events).map(event).collect();
    println!("publish: {events} events of ~100 bytes to one topic\n");
    println!("| log, method | events/s | time |");
    println!("| --- | ---: | ---: |");

    let memory = MemoryLog::builder()
        .retention(Retention::unbounded().max_events(events))
        .build();
    let started = Instant::now();
    for e in &batch {
        memory.append("bench", e).await.expect("append");
    }
    row("MemoryLog, append", events, started.elapsed());

    let sequential = events.min(20_000);
    let log = connect(server, "publish-seq:").await;
    let started = Instant::now();
    for e in &batch[..sequential] {
        log.append("bench", e).await.expect("append");
    }
    row(
        &format!("RedisLog, append one at a time ({sequential})"),
        sequential,
        started.elapsed(),
    );

    let log = connect(server, "publish-concurrent:").await;
    let started = Instant::now();
    let per_task = events / 64;
    let tasks: Vec<_> = (0..64)
        .map(|t| {
            let log = log.clone();
            let mine: Vec<Event<'static>> = batch[t * per_task..(t + 1) * per_task].to_vec();
            tokio::spawn(async move {
                for e in &mine {
                    log.append("bench", e).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("publisher");
    }
    row(
        "RedisLog, append, 64 in flight",
        per_task * 64,
        started.elapsed(),
    );

    let log = connect(server, "publish-batch:").await;
    let started = Instant::now();
    for chunk in batch.chunks(1000) {
        log.append_batch("bench", chunk)
            .await
            .expect("append_batch");
    }
    row("RedisLog, append_batch of 1,000", events, started.elapsed());
    println!();
}

async fn replay(server: &Server, reads: usize) {
    let batch: Vec<Event<'static>> = (0..REPLAY_EVENTS).map(event).collect();
    let memory = MemoryLog::builder()
        .retention(Retention::unbounded().max_events(REPLAY_EVENTS))
        .build();
    let mut in_memory: Vec<LoggedEvent> = Vec::with_capacity(REPLAY_EVENTS);
    for e in &batch {
        in_memory.push(memory.append("bench", e).await.expect("append"));
    }
    let redis = connect(server, "replay:").await;
    let mut in_redis: Vec<LoggedEvent> = Vec::with_capacity(REPLAY_EVENTS);
    for chunk in batch.chunks(1000) {
        in_redis.extend(redis.append_batch("bench", chunk).await.expect("append"));
    }

    println!(
        "replay: resume within {REPLAY_EVENTS} events, next {PAGE}; {reads} reads one at a time\n"
    );
    println!("| log, cursor | median | p99 |");
    println!("| --- | ---: | ---: |");
    for (name, log_events, is_redis) in [
        ("MemoryLog", &in_memory, false),
        ("RedisLog", &in_redis, true),
    ] {
        for (position, cursor) in [
            ("middle", log_events[REPLAY_EVENTS / 2].id()),
            ("last (caught up)", log_events[REPLAY_EVENTS - 1].id()),
        ] {
            let mut samples = Vec::with_capacity(reads);
            for _ in 0..reads {
                let started = Instant::now();
                let replay = if is_redis {
                    redis.read_after("bench", Some(cursor), PAGE).await
                } else {
                    memory
                        .read_after("bench", Some(cursor), PAGE)
                        .await
                        .map_err(|_| unreachable!())
                }
                .expect("read");
                samples.push(started.elapsed());
                assert_eq!(replay.outcome, ReplayOutcome::Resumed);
                let expected = if position == "middle" { PAGE } else { 0 };
                assert_eq!(replay.events.len(), expected);
            }
            let (median, p99) = percentiles(samples);
            println!("| {name}, {position} | {} | {} |", us(median), us(p99));
        }
    }
    println!();
}

async fn cross_server(server: &Server, events: usize) {
    let a = Hub::with_live_log(connect(server, "hub:").await);
    let b = Hub::with_live_log(connect(server, "hub:").await);
    let mut on_b = b.subscribe("room", None).await.expect("subscribe");
    let mut samples = Vec::with_capacity(events);
    for i in 0..events {
        let started = Instant::now();
        let logged = a.publish("room", &event(i)).await.expect("publish");
        let frame = on_b.next().await.expect("live").expect("no error");
        samples.push(started.elapsed());
        assert_eq!(&frame, logged.frame());
    }
    let (median, p99) = percentiles(samples);
    println!(
        "cross-server: publish on hub A until a subscriber on hub B has it ({events} events, one at a time)\n"
    );
    println!("| median | p99 |");
    println!("| ---: | ---: |");
    println!("| {} | {} |", us(median), us(p99));
}

fn main() {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let events = knob("REDIS_BENCH_EVENTS", 100_000).max(64);
    let reads = knob("REDIS_BENCH_READS", 2_000).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let server = Server::start();
    runtime.block_on(async {
        publish(&server, events).await;
        replay(&server, reads).await;
        cross_server(&server, 2_000).await;
    });
}
