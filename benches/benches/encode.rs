//! Encoding throughput: tower-sse-core beside axum's, warp's and poem's own SSE encoders and
//! a memcpy of the same output bytes (the limit).
//!
//! Run with `cargo bench -p tower-sse-benches --bench encode`; allocations per event come from
//! `cargo bench -p tower-sse-benches --bench alloc_count`. Every encoder builds its event from
//! the same borrowed inputs on every iteration; see `encoders/mod.rs` for how each one's bytes
//! are obtained.

use std::{hint::black_box, time::Duration};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod encoders;

use encoders::{AxumStream, Shape};

fn encode(c: &mut Criterion) {
    for shape in encoders::shapes() {
        encoders::check_equivalent(&shape);
        bench_shape(c, &shape);
    }
}

fn bench_shape(c: &mut Criterion, shape: &Shape) {
    let mut group = c.benchmark_group(format!("encode/{}", shape.name));
    group.throughput(Throughput::Elements(1));

    // Into one buffer, cleared before each event: what a connection's write buffer does.
    let mut buf = BytesMut::new();
    group.bench_function("tower-sse-core (reused buffer)", |b| {
        b.iter(|| {
            buf.clear();
            encoders::tower_sse_core(black_box(shape), &mut buf);
            black_box(&buf[..]);
        });
    });

    // Each event split off as its own `Bytes`, as a fan-out does, and dropped right away; the
    // buffer then takes its space back, so the steady state allocates nothing.
    let mut buf = BytesMut::new();
    group.bench_function("tower-sse-core (split+freeze)", |b| {
        b.iter(|| {
            encoders::tower_sse_core(black_box(shape), &mut buf);
            buf.split().freeze()
        });
    });

    // An owned `Bytes` per event, kept by the caller: what a response body frame needs, and
    // what axum's row below produces.
    group.bench_function("tower-sse-core (to_bytes)", |b| {
        b.iter(|| encoders::tower_sse_core_to_bytes(black_box(shape)));
    });

    let mut axum = AxumStream::new(shape);
    group.bench_function("axum", |b| b.iter(|| axum.next()));

    group.bench_function("axum (Sse response per event)", |b| {
        b.iter(|| encoders::axum_response_per_event(black_box(shape)));
    });

    group.bench_function("warp", |b| b.iter(|| encoders::warp(black_box(shape))));

    group.bench_function("poem", |b| b.iter(|| encoders::poem(black_box(shape))));

    let mut encoded = BytesMut::new();
    encoders::tower_sse_core(shape, &mut encoded);
    let mut copy = BytesMut::new();
    group.bench_function("memcpy (the limit)", |b| {
        b.iter(|| {
            encoders::memcpy(black_box(&encoded), &mut copy);
            black_box(&copy[..]);
        });
    });

    group.finish();
}

criterion_group! {
    name = benches;
    // Short, so that the whole run stays within a few minutes on a shared 2-core machine.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = encode
}
criterion_main!(benches);
