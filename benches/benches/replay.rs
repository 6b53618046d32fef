//! Replay lookup: resuming from the middle of a 1,000,000-event `MemoryLog` and collecting
//! the next 100 events, beside a linear scan of the same events for the cursor.
//!
//! Run with `cargo bench -p tower-sse-benches --bench replay`. Both sides return the same
//! 100 `LoggedEvent`s (checked before timing); only how the cursor is found differs: the log
//! parses the id and binary-searches its queue, the scan compares ids from the start.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use tower_sse_core::{Event, LoggedEvent, MemoryLog, ReplayOutcome, Retention};

const EVENTS: usize = 1_000_000;
const PAGE: usize = 100;
const TOPIC: &str = "bench";

/// The hand-rolled alternative: events in a `Vec`, found by comparing ids.
fn scan_after(events: &[LoggedEvent], cursor: &str, limit: usize) -> Vec<LoggedEvent> {
    match events.iter().position(|event| event.id() == cursor) {
        Some(i) => events[i + 1..].iter().take(limit).cloned().collect(),
        None => Vec::new(),
    }
}

fn replay(c: &mut Criterion) {
    let log = MemoryLog::builder()
        .retention(Retention::unbounded().max_events(EVENTS))
        .build();
    let events: Vec<LoggedEvent> = (0..EVENTS)
        .map(|i| {
            let event = Event::new()
                .event("update")
                .expect("valid")
                .data(format!("{{\"n\":{i}}}"));
            log.append_sync(TOPIC, &event).expect("append")
        })
        .collect();
    let middle = events[EVENTS / 2].id().to_owned();
    let last = events[EVENTS - 1].id().to_owned();

    let from_log = log.read_after_sync(TOPIC, Some(&middle), PAGE);
    assert_eq!(from_log.outcome, ReplayOutcome::Resumed);
    assert_eq!(from_log.events.len(), PAGE);
    assert_eq!(from_log.events, scan_after(&events, &middle, PAGE));

    let mut group = c.benchmark_group("replay/resume 100 of 1M");
    group.bench_function("MemoryLog::read_after (middle)", |b| {
        b.iter(|| log.read_after_sync(TOPIC, Some(black_box(&middle)), PAGE));
    });
    group.bench_function("linear scan of Vec<LoggedEvent> (middle)", |b| {
        b.iter(|| scan_after(black_box(&events), black_box(&middle), PAGE));
    });
    // A client that is up to date reconnects: the common case, nothing to replay.
    group.bench_function("MemoryLog::read_after (caught up)", |b| {
        b.iter(|| log.read_after_sync(TOPIC, Some(black_box(&last)), PAGE));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = replay
}
criterion_main!(benches);
