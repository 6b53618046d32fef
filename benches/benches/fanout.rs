//! Fan-out: one publisher to many subscribers, events delivered per second.
//!
//! `tower-sse` Hub (encode once, share `Bytes`, each subscriber a `Subscription` body) beside
//! the common hand-rolled pattern: a tokio `broadcast` channel of raw messages, each
//! subscriber turning them into axum `Event`s inside its own `Sse` body.
//!
//! Run with `cargo bench -p tower-sse-benches --bench fanout`; `FANOUT_SUBSCRIBERS` (default
//! 10000) and `FANOUT_EVENTS` (default 100) change the shape.

use std::{
    convert::Infallible,
    env,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::response::{IntoResponse, sse};
use futures_util::stream;
use http_body_util::BodyExt;
use tokio::sync::broadcast;
use tower_sse::Hub;
use tower_sse_core::Event;

const DATA: &str = r#"{"kind":"price","symbol":"ACME","value":1234.5678,"seq":42,"ok":1}"#;

fn env_or(name: &str, default: usize) -> usize {
    env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Reads `events` frames (one event each) from a subscriber's body; returns the bytes read.
async fn drain<B>(mut body: B, events: usize) -> usize
where
    B: http_body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: std::fmt::Debug,
{
    let mut bytes = 0;
    for _ in 0..events {
        let frame = body.frame().await.unwrap().unwrap();
        bytes += frame.data_ref().map_or(0, |d| d.len());
    }
    bytes
}

/// Waits for every subscriber and returns the time since `started`; checks that each of the
/// `deliveries` carried at least the event's data.
async fn finish(
    tasks: Vec<tokio::task::JoinHandle<usize>>,
    started: Instant,
    deliveries: usize,
) -> Duration {
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    let elapsed = started.elapsed();
    assert!(total >= deliveries * DATA.len());
    elapsed
}

async fn hub_run(subscribers: usize, events: usize) -> Duration {
    let hub = Hub::new().capacity(events.max(16));
    let mut tasks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let body = hub.subscribe("bench", None).await.unwrap();
        tasks.push(tokio::spawn(drain(body, events)));
    }
    let event = Event::new().event("update").unwrap().data(DATA);
    let started = Instant::now();
    for _ in 0..events {
        hub.publish("bench", &event).await.unwrap();
    }
    finish(tasks, started, subscribers * events).await
}

async fn broadcast_axum_run(subscribers: usize, events: usize) -> Duration {
    let (sender, _) = broadcast::channel::<(u64, Arc<str>)>(events.max(16));
    let mut tasks = Vec::with_capacity(subscribers);
    for _ in 0..subscribers {
        let receiver = sender.subscribe();
        let events_stream = stream::unfold(receiver, |mut receiver| async move {
            let (id, data) = receiver.recv().await.ok()?;
            let event = sse::Event::default()
                .id(id.to_string())
                .event("update")
                .data(&*data);
            Some((Ok::<_, Infallible>(event), receiver))
        });
        let body = sse::Sse::new(events_stream).into_response().into_body();
        tasks.push(tokio::spawn(drain(body, events)));
    }
    let data: Arc<str> = Arc::from(DATA);
    let started = Instant::now();
    for id in 0..events as u64 {
        sender.send((id, Arc::clone(&data))).unwrap();
        // Like the hub's publish, give the runtime a chance to run subscribers.
        tokio::task::yield_now().await;
    }
    finish(tasks, started, subscribers * events).await
}

fn main() {
    // `cargo test --benches` runs bench binaries with no arguments: keep that quick.
    let quick = !env::args().any(|a| a == "--bench");
    let subscribers = env_or("FANOUT_SUBSCRIBERS", if quick { 100 } else { 10_000 });
    let events = env_or("FANOUT_EVENTS", if quick { 10 } else { 100 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let deliveries = (subscribers * events) as f64;
    println!("fan-out: 1 publisher, {subscribers} subscribers, {events} events (best of 3)\n");
    println!("| pattern | deliveries/s | time |");
    println!("| --- | ---: | ---: |");
    let mut rows = Vec::new();
    for (name, which) in [
        ("tower-sse Hub (encode once, shared Bytes)", 0),
        ("tokio broadcast + axum Event per subscriber", 1),
    ] {
        let best = (0..3)
            .map(|_| {
                runtime.block_on(async {
                    match which {
                        0 => hub_run(subscribers, events).await,
                        _ => broadcast_axum_run(subscribers, events).await,
                    }
                })
            })
            .min()
            .unwrap();
        let rate = deliveries / best.as_secs_f64();
        rows.push(rate);
        println!(
            "| {name} | {:.2} M | {:.1} ms |",
            rate / 1e6,
            best.as_secs_f64() * 1e3
        );
    }
    println!("\nHub / hand-rolled: {:.2}x", rows[0] / rows[1]);
}
