//! The client process: `n` raw HTTP/1.1 subscribers that check and time every event.
//!
//! Each connection is a task that reads into its worker thread's one large buffer (so 10,000
//! idle connections hold no buffer each), undoes the chunked coding, splits event blocks and
//! parses only the sequence number and publish time of each. It checks that event `k` is the
//! `k`-th it gets (no loss, no duplicate, no reordering) and puts the publish-to-receive
//! latency in a shared histogram.

use std::{
    cell::RefCell,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use tokio::{net::TcpStream, sync::Semaphore};

use crate::sockets::{
    BlockSplitter, Dechunker, commands, connect_from, now_micros, number_after, request_stream,
};

/// Latency histogram: 10 µs buckets up to 5 s, then one overflow bucket.
struct Histogram {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const BUCKET_US: u64 = 10;
const BUCKETS: usize = 500_000;

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: (0..=BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }

    fn record(&self, micros: u64) {
        let bucket = ((micros / BUCKET_US) as usize).min(BUCKETS);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(micros, Ordering::Relaxed);
    }

    /// The latency (µs, the bucket's upper edge) at or below which `p` of the samples are.
    fn percentile(&self, p: f64) -> u64 {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((total as f64) * p).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                // Past the last bucket: the largest sample is the best bound there is.
                return if i == BUCKETS {
                    self.max.load(Ordering::Relaxed)
                } else {
                    (i as u64 + 1) * BUCKET_US
                };
            }
        }
        self.max.load(Ordering::Relaxed)
    }
}

/// What all connections found.
#[derive(Default)]
struct Totals {
    received: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    malformed: AtomicU64,
    complete: AtomicUsize,
    failed: AtomicUsize,
    first_error: std::sync::Mutex<Option<String>>,
}

thread_local! {
    /// One read buffer per worker thread, shared by all of its connections.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; 256 * 1024]);
}

/// One connection's verdict so far.
struct Check {
    dechunker: Dechunker,
    blocks: BlockSplitter,
    next: u64,
    received: u64,
    lost: u64,
    duplicated: u64,
    malformed: u64,
}

impl Check {
    fn feed(&mut self, bytes: &[u8], now: u64, latency: &Histogram) -> Result<(), String> {
        let Self {
            dechunker,
            blocks,
            next,
            received,
            lost,
            duplicated,
            malformed,
        } = self;
        let mut result = Ok(());
        dechunker.feed(bytes, |payload| {
            if result.is_err() {
                return;
            }
            result = blocks.feed(payload, |block| {
                if !block.windows(5).any(|w| w == b"data:") {
                    return; // priming, heartbeat or retry hint
                }
                let (Some(seq), Some(sent)) = (
                    number_after(block, b"\"seq\":"),
                    number_after(block, b"\"t\":"),
                ) else {
                    *malformed += 1;
                    return;
                };
                *received += 1;
                latency.record(now.saturating_sub(sent));
                if seq < *next {
                    *duplicated += 1;
                    return;
                }
                *lost += seq - *next;
                *next = seq + 1;
            });
        })?;
        result
    }
}

/// Runs the client process: connects `n` subscribers to `addr` from `sources` addresses,
/// prints `CONNECTED` once every response head is in, then `RESULT {json}` once every
/// connection has event `events - 1` or `deadline` has passed.
pub(crate) fn run(
    addr: SocketAddr,
    n: usize,
    events: u64,
    sources: usize,
    threads: usize,
    deadline: Duration,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        commands(|_| {});
        let latency = Arc::new(Histogram::new());
        let totals = Arc::new(Totals::default());
        let connected = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(Semaphore::new(256));
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            let permit = Arc::clone(&gate)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let stream = connect_from(addr, i, sources)
                .await
                .map_err(|e| format!("connection {i}: {e}"))?;
            let (latency, totals, connected) = (
                Arc::clone(&latency),
                Arc::clone(&totals),
                Arc::clone(&connected),
            );
            tasks.push(tokio::spawn(async move {
                let outcome =
                    subscriber(stream, events, &latency, &totals, &connected, permit).await;
                if let Err(e) = outcome {
                    totals.failed.fetch_add(1, Ordering::Relaxed);
                    totals.first_error.lock().unwrap().get_or_insert(e);
                }
            }));
        }
        let wait = tokio::time::Instant::now() + Duration::from_secs(120);
        while connected.load(Ordering::Relaxed) < n {
            if tokio::time::Instant::now() > wait || totals.failed.load(Ordering::Relaxed) > 0 {
                let error = totals.first_error.lock().unwrap().clone();
                return Err(format!(
                    "{} of {n} connected; {}",
                    connected.load(Ordering::Relaxed),
                    error.unwrap_or_else(|| "timed out".into())
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!("CONNECTED");
        let finish = tokio::time::Instant::now() + deadline;
        for task in tasks {
            if tokio::time::timeout_at(finish, task).await.is_err() {
                break;
            }
        }
        let incomplete = n - totals.complete.load(Ordering::Relaxed);
        let expected = n as u64 * events;
        let received = totals.received.load(Ordering::Relaxed);
        let result = json!({
            "received": received,
            // Never delivered: skipped ones plus whatever incomplete connections still miss.
            "lost": expected.saturating_sub(received - totals.duplicated.load(Ordering::Relaxed))
                .max(totals.lost.load(Ordering::Relaxed)),
            "duplicated": totals.duplicated.load(Ordering::Relaxed),
            "malformed": totals.malformed.load(Ordering::Relaxed),
            "incomplete": incomplete,
            "failed": totals.failed.load(Ordering::Relaxed),
            "error": totals.first_error.lock().unwrap().clone(),
            "p50_us": latency.percentile(0.50),
            "p99_us": latency.percentile(0.99),
            "max_us": latency.max.load(Ordering::Relaxed),
            "done_at_us": now_micros(),
        });
        println!("RESULT {result}");
        Ok(())
    })
}

async fn subscriber(
    mut stream: TcpStream,
    events: u64,
    latency: &Histogram,
    totals: &Totals,
    connected: &AtomicUsize,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), String> {
    let rest = request_stream(&mut stream, "/events")
        .await
        .map_err(|e| e.to_string())?;
    drop(permit);
    connected.fetch_add(1, Ordering::Relaxed);
    let mut check = Check {
        dechunker: Dechunker::default(),
        blocks: BlockSplitter::default(),
        next: 0,
        received: 0,
        lost: 0,
        duplicated: 0,
        malformed: 0,
    };
    check.feed(&rest, now_micros(), latency)?;
    let outcome = loop {
        if check.next >= events {
            totals.complete.fetch_add(1, Ordering::Relaxed);
            break Ok(());
        }
        if let Err(e) = stream.readable().await {
            break Err(e.to_string());
        }
        let read = READ_BUFFER.with_borrow_mut(|buffer| match stream.try_read(buffer) {
            Ok(0) => Err("the server closed the stream".to_owned()),
            Ok(read) => check
                .feed(&buffer[..read], now_micros(), latency)
                .map(|()| read),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e.to_string()),
        });
        if let Err(e) = read {
            break Err(e);
        }
    };
    totals.received.fetch_add(check.received, Ordering::Relaxed);
    totals.lost.fetch_add(check.lost, Ordering::Relaxed);
    totals
        .duplicated
        .fetch_add(check.duplicated, Ordering::Relaxed);
    totals
        .malformed
        .fetch_add(check.malformed, Ordering::Relaxed);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check() -> Check {
        Check {
            dechunker: Dechunker::default(),
            blocks: BlockSplitter::default(),
            next: 0,
            received: 0,
            lost: 0,
            duplicated: 0,
            malformed: 0,
        }
    }

    fn chunked(seqs: &[u64]) -> Vec<u8> {
        let mut wire = b"3\r\n:\n\n\r\n".to_vec();
        for seq in seqs {
            let event = format!("id: {seq}\ndata: {{\"seq\":{seq},\"t\":100}}\n\n");
            wire.extend_from_slice(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes());
        }
        wire
    }

    /// The verdict a smoke run fails on: a skipped number is lost, a repeated or older one
    /// duplicated, and the latency is taken from the event's publish time.
    #[test]
    fn lost_duplicated_and_reordered_events_are_counted() {
        let latency = Histogram::new();
        let mut in_order = check();
        in_order
            .feed(&chunked(&[0, 1, 2, 3]), 150, &latency)
            .unwrap();
        assert_eq!(
            (in_order.received, in_order.lost, in_order.duplicated),
            (4, 0, 0)
        );
        assert_eq!(in_order.next, 4);
        assert_eq!(latency.percentile(0.5), 50 + BUCKET_US);

        let mut broken = check();
        broken
            .feed(&chunked(&[0, 2, 1, 2, 3]), 150, &latency)
            .unwrap();
        assert_eq!(broken.lost, 1, "1 was skipped when 2 came");
        assert_eq!(broken.duplicated, 2, "the late 1 and the second 2");
        assert_eq!(broken.next, 4);
    }
}
