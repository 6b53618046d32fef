//! Allocations per event for each encoder of the `encode` bench.
//!
//! Run with `cargo bench -p tower-sse-benches --bench alloc_count`. A counting global
//! allocator lives in this binary only, so the timed `encode` run uses the plain system
//! allocator. Each encoder first runs long enough for its buffers to grow, then the calls into
//! the allocator (`alloc`, `alloc_zeroed`, `realloc`) are counted over many events.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use bytes::{Bytes, BytesMut};

mod encoders;

use encoders::{AxumStream, Shape};

const WARM_UP: u64 = 1_000;
const EVENTS: u64 = 10_000;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static REALLOCS: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting calls that may take memory.
struct Counting;

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so it
// upholds `GlobalAlloc`'s contract exactly when `System` does; the counters are plain atomics.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        REALLOCS.fetch_add(1, Relaxed);
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is (see the impl).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and reallocations per call of `encode_one`, after a warm-up.
fn per_event(mut encode_one: impl FnMut()) -> (f64, f64) {
    for _ in 0..WARM_UP {
        encode_one();
    }
    let (allocs, reallocs) = (ALLOCS.load(Relaxed), REALLOCS.load(Relaxed));
    for _ in 0..EVENTS {
        encode_one();
    }
    let per = |now: u64, before: u64| (now - before) as f64 / EVENTS as f64;
    (
        per(ALLOCS.load(Relaxed), allocs),
        per(REALLOCS.load(Relaxed), reallocs),
    )
}

fn consume(bytes: Bytes) {
    drop(black_box(bytes));
}

fn count(shape: &Shape) -> Vec<(&'static str, (f64, f64))> {
    let mut buf = BytesMut::new();
    let reused = per_event(|| {
        buf.clear();
        encoders::tower_sse_core(black_box(shape), &mut buf);
        black_box(&buf[..]);
    });
    let mut buf = BytesMut::new();
    let split = per_event(|| {
        encoders::tower_sse_core(black_box(shape), &mut buf);
        consume(buf.split().freeze());
    });
    let to_bytes = per_event(|| consume(encoders::tower_sse_core_to_bytes(black_box(shape))));
    let mut axum = AxumStream::new(shape);
    let axum = per_event(|| consume(axum.next()));
    let axum_response = per_event(|| consume(encoders::axum_response_per_event(black_box(shape))));
    let warp = per_event(|| consume(encoders::warp(black_box(shape))));
    let poem = per_event(|| consume(encoders::poem(black_box(shape))));
    let mut encoded = BytesMut::new();
    encoders::tower_sse_core(shape, &mut encoded);
    let mut copy = BytesMut::new();
    let memcpy = per_event(|| {
        encoders::memcpy(black_box(&encoded), &mut copy);
        black_box(&copy[..]);
    });
    vec![
        ("tower-sse-core (reused buffer)", reused),
        ("tower-sse-core (split+freeze)", split),
        ("tower-sse-core (to_bytes)", to_bytes),
        ("axum", axum),
        ("axum (Sse response per event)", axum_response),
        ("warp", warp),
        ("poem", poem),
        ("memcpy (the limit)", memcpy),
    ]
}

fn main() {
    println!("allocations per event ({EVENTS} events after {WARM_UP} warm-up events)");
    println!(
        "{:<6} {:<32} {:>7} {:>9}",
        "shape", "encoder", "allocs", "reallocs"
    );
    for shape in encoders::shapes() {
        encoders::check_equivalent(&shape);
        for (name, (allocs, reallocs)) in count(&shape) {
            println!("{:<6} {name:<32} {allocs:>7.2} {reallocs:>9.2}", shape.name);
        }
    }
}
