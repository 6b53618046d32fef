//! The encode bench's owned-`Bytes` rows as ratios that hold on a noisy machine: every encoder
//! runs in short rounds, the encoders alternating within each round, and each keeps its
//! fastest round. Criterion (`--bench encode`) times each row for seconds, one row after the
//! other, so on a shared or virtual machine a drift in the host's load between two rows moves
//! their ratio; here every encoder sees the same moments of the run.
//!
//! Run with `cargo bench -p tower-sse-benches --bench encode_ratio`; `ENCODE_RATIO_ROUNDS`
//! (default 40) sets the rounds. Prints one markdown table per shape.

use std::{
    env,
    hint::black_box,
    time::{Duration, Instant},
};

use bytes::{Bytes, BytesMut};

mod encoders;

use encoders::{AxumStream, Shape};

/// An encoder under test: its name and one event's encoding.
type Encoder<'s> = (&'static str, Box<dyn FnMut() -> Bytes + 's>);

/// One encoder's name and its best time per event so far.
struct Row {
    name: &'static str,
    best: Duration,
    times: Vec<Duration>,
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` means another tool is asking.
    if env::args().any(|a| a == "--list") {
        return;
    }
    let rounds = env::var("ENCODE_RATIO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40usize)
        .max(1);
    for shape in encoders::shapes() {
        encoders::check_equivalent(&shape);
        // About 2 ms per encoder and round.
        let per_round = if shape.data.len() > 1024 {
            2_000
        } else {
            20_000
        };
        table(&shape, rounds, per_round);
    }
}

fn table(shape: &Shape, rounds: usize, per_round: u32) {
    let mut axum = AxumStream::new(shape);
    let mut encoded = BytesMut::new();
    encoders::tower_sse_core(shape, &mut encoded);
    let encoded = encoded.freeze();
    let mut copy = BytesMut::new();
    let mut encoders: Vec<Encoder<'_>> = vec![
        (
            "tower-sse-core (to_bytes)",
            Box::new(|| encoders::tower_sse_core_to_bytes(black_box(shape))),
        ),
        ("axum", Box::new(move || axum.next())),
        ("warp", Box::new(|| encoders::warp(black_box(shape)))),
        ("poem", Box::new(|| encoders::poem(black_box(shape)))),
        // The limit: the encoded bytes copied into a reused buffer, no allocation.
        (
            "memcpy (the limit)",
            Box::new(move || {
                encoders::memcpy(black_box(&encoded), &mut copy);
                Bytes::new()
            }),
        ),
    ];
    let mut rows: Vec<Row> = encoders
        .iter()
        .map(|(name, _)| Row {
            name,
            best: Duration::MAX,
            times: Vec::with_capacity(rounds),
        })
        .collect();
    for _ in 0..rounds {
        for ((_, encode), row) in encoders.iter_mut().zip(&mut rows) {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(encode());
            }
            let per_event = start.elapsed() / per_round;
            row.best = row.best.min(per_event);
            row.times.push(per_event);
        }
    }
    let axum = rows[1].best.as_secs_f64();
    println!(
        "\n{} events ({} bytes of data), {rounds} rounds of {per_round} events per encoder, \
         encoders alternating:\n",
        shape.name,
        shape.data.len()
    );
    println!("| encoder | best round | median round | axum's best / this best |");
    println!("| --- | ---: | ---: | ---: |");
    for row in &mut rows {
        row.times.sort();
        let median = row.times[row.times.len() / 2];
        println!(
            "| {} | {:.1} ns | {:.1} ns | {:.2}x |",
            row.name,
            row.best.as_secs_f64() * 1e9,
            median.as_secs_f64() * 1e9,
            axum / row.best.as_secs_f64()
        );
    }
}
