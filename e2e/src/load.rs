//! Scenario 4: many concurrent event streams on loopback to one demo server, a publisher at a
//! steady rate, every delivery checked (in order, none missing) and timed, then every client
//! dropped at once while the server's memory and open files are watched going back down.
//!
//! Each event's data is `SEQ MICROS`: its number and the publish time in microseconds since
//! the harness's epoch (one process, one monotonic clock), so clients compute latency.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Semaphore, watch},
    task::JoinSet,
};
use tower_sse_core::{Decoded, Decoder};

use crate::{
    Settings, Tools,
    client::Publisher,
    process::{Demo, cpu_time, open_files, rss_kib},
    wire::{Dechunker, read_head},
};

/// Connections being opened at once (each holds a permit until its response head arrives).
const CONNECTING_AT_ONCE: usize = 256;
/// The bound on opening every connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(120);
/// How long clients may lag behind the publisher's last event.
const DRAIN_WITHIN: Duration = Duration::from_secs(30);
/// The bound on the server's return to its baseline after the clients drop.
const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// The figures of one load run.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadFigures {
    pub(crate) connections: usize,
    pub(crate) events: usize,
    pub(crate) rate: u32,
    pub(crate) complete_clients: usize,
    pub(crate) deliveries: u64,
    pub(crate) connect_secs: f64,
    pub(crate) publish_secs: f64,
    pub(crate) rss_baseline_kib: u64,
    pub(crate) rss_connected_kib: u64,
    pub(crate) rss_end_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) fds_baseline: usize,
    pub(crate) fds_connected: usize,
    pub(crate) fds_after: usize,
    pub(crate) settle_secs: f64,
    /// Server RSS (KiB) with all connected and after the drop, for each wave after the first.
    pub(crate) reuse_tolerance_pct: u32,
    pub(crate) reuse_tolerance_kib: u64,
    /// CPU used while publishing, in % of one core.
    pub(crate) server_cpu_pct: f64,
    pub(crate) harness_cpu_pct: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) failures: Vec<String>,
}

impl LoadFigures {
    /// Server memory per connection, in KiB, from RSS before and after connecting.
    pub(crate) fn kib_per_connection(&self) -> f64 {
        self.rss_connected_kib.saturating_sub(self.rss_baseline_kib) as f64
            / self.connections.max(1) as f64
    }

    /// One line for the console.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} connections x {} events = {} deliveries ({} complete clients); connect {:.1} s; \
             latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; CPU while publishing: server \
             {:.0}%, harness {:.0}% of a core; RSS {} KiB -> {} KiB connected \
             ({:.1} KiB/connection) -> {} KiB at the end -> {} KiB after the drop (tolerance {} \
             KiB); open files {} -> {} -> {} (back in {:.1} s)",
            self.connections,
            self.events,
            self.deliveries,
            self.complete_clients,
            self.connect_secs,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.server_cpu_pct,
            self.harness_cpu_pct,
            self.rss_baseline_kib,
            self.rss_connected_kib,
            self.kib_per_connection(),
            self.rss_end_kib,
            self.rss_after_kib,
            self.reuse_tolerance_kib,
            self.fds_baseline,
            self.fds_connected,
            self.fds_after,
            self.settle_secs,
        )
    }
}

/// What one client saw.
#[derive(Debug)]
struct ClientResult {
    latencies_us: Vec<u32>,
    received: usize,
    error: Option<String>,
    stream: Option<TcpStream>,
}

/// Runs the load scenario; the figures, and whether every check held.
pub(crate) async fn load(
    tools: &Tools,
    settings: &Settings,
) -> (Result<String, String>, Option<LoadFigures>) {
    let mut figures = LoadFigures {
        connections: settings.load_connections,
        events: settings.load_events(),
        rate: settings.load_rate,
        reuse_tolerance_pct: settings.load_reuse_tolerance_pct,
        ..LoadFigures::default()
    };
    match run(tools, &mut figures).await {
        Err(e) => (Err(e), None),
        Ok(()) if figures.failures.is_empty() => (Ok(figures.summary()), Some(figures)),
        Ok(()) => (
            Err(format!(
                "{}; {}",
                figures.failures.join("; "),
                figures.summary()
            )),
            Some(figures),
        ),
    }
}

async fn run(tools: &Tools, figures: &mut LoadFigures) -> Result<(), String> {
    let epoch = Instant::now();
    let mut demo = Demo::start(
        &tools.demo,
        &["--tick-ms", "0", "--heartbeat-ms", "1000"],
        &tools.log_path("demo-load"),
    )
    .await?;
    let pid = demo.pid;

    // Warm up what the first connection and the first publish allocate once, so the
    // baseline is a server that has served, not a fresh one.
    let mut publisher = Publisher::new(demo.addr);
    publisher.publish("warmup", "0 0").await?;
    drop(open_stream(demo.addr).await?);
    tokio::time::sleep(Duration::from_secs(1)).await;
    figures.rss_baseline_kib = rss_kib(pid)?;
    figures.fds_baseline = open_files(pid)?;

    let (give_up, give_up_rx) = watch::channel(false);
    let connected = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let permits = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut clients = JoinSet::new();
    let started = Instant::now();
    for _ in 0..figures.connections {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let counters = (Arc::clone(&connected), Arc::clone(&failed));
        let give_up = give_up_rx.clone();
        let events = figures.events;
        let addr = demo.addr;
        clients.spawn(async move { client(addr, events, epoch, permit, counters, give_up).await });
        if started.elapsed() > CONNECT_WITHIN {
            return Err(format!(
                "could not start {} clients within {CONNECT_WITHIN:?}",
                figures.connections
            ));
        }
    }
    while connected.load(Ordering::Relaxed) < figures.connections {
        if started.elapsed() > CONNECT_WITHIN || failed.load(Ordering::Relaxed) > 0 {
            let _ = give_up.send(true);
            let mut errors = Vec::new();
            while let Some(done) = clients.try_join_next() {
                if let Ok(ClientResult { error: Some(e), .. }) = done
                    && errors.len() < 3
                {
                    errors.push(e);
                }
            }
            return Err(format!(
                "{} of {} clients connected within {CONNECT_WITHIN:?}; first errors: {:?}",
                connected.load(Ordering::Relaxed),
                figures.connections,
                errors
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    figures.connect_secs = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    demo.check_alive()?;
    figures.rss_connected_kib = rss_kib(pid)?;
    figures.fds_connected = open_files(pid)?;
    println!(
        "    load: {} connected in {:.1} s; publishing {} events at {}/s",
        figures.connections, figures.connect_secs, figures.events, figures.rate
    );

    let started = Instant::now();
    let server_cpu = cpu_time(pid)?;
    let harness_cpu = cpu_time(std::process::id())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / figures.rate.max(1));
    for seq in 1..=figures.events {
        tick.tick().await;
        let micros = epoch.elapsed().as_micros();
        if let Err(e) = publisher.publish("load", &format!("{seq} {micros}")).await {
            let _ = give_up.send(true);
            return Err(format!("publishing event {seq}: {e}"));
        }
    }
    figures.publish_secs = started.elapsed().as_secs_f64();
    figures.server_cpu_pct = cpu_pct(cpu_time(pid)?, server_cpu, started);
    figures.harness_cpu_pct = cpu_pct(cpu_time(std::process::id())?, harness_cpu, started);
    let give_up_at = tokio::time::Instant::now() + DRAIN_WITHIN;
    let mut results = Vec::with_capacity(figures.connections);
    loop {
        match tokio::time::timeout_at(give_up_at, clients.join_next()).await {
            Ok(Some(Ok(result))) => results.push(result),
            Ok(Some(Err(e))) => figures.failures.push(format!("a client task failed: {e}")),
            Ok(None) => break,
            Err(_) => {
                // Late clients stop reading and report what they have.
                let _ = give_up.send(true);
                while let Some(done) = clients.join_next().await {
                    if let Ok(result) = done {
                        results.push(result);
                    }
                }
                break;
            }
        }
    }
    demo.check_alive()?;
    figures.rss_end_kib = rss_kib(pid)?;

    let mut latencies: Vec<u32> = Vec::with_capacity(results.len() * figures.events);
    let mut streams = Vec::with_capacity(results.len());
    let mut errors = Vec::new();
    for result in results {
        figures.deliveries += result.received as u64;
        if result.received == figures.events && result.error.is_none() {
            figures.complete_clients += 1;
        }
        if let Some(e) = result.error {
            errors.push(e);
        }
        latencies.extend_from_slice(&result.latencies_us);
        streams.extend(result.stream);
    }
    if figures.complete_clients != figures.connections {
        figures.failures.push(format!(
            "{} of {} clients received every event in order; first errors: {:?}",
            figures.complete_clients,
            figures.connections,
            &errors[..errors.len().min(3)]
        ));
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| f64::from(*us) / 1000.0)
    };
    figures.p50_ms = at(0.50);
    figures.p99_ms = at(0.99);
    figures.max_ms = latencies
        .last()
        .map_or(f64::NAN, |us| f64::from(*us) / 1000.0);
    drop(latencies);

    // Every client at once. The demo runs on jemalloc with background purging, so the
    // memory the connections took goes back to the OS: wait for the open files and the RSS
    // to come back to the baseline (RSS within a tolerance of the growth).
    drop(streams);
    let growth = figures
        .rss_connected_kib
        .saturating_sub(figures.rss_baseline_kib);
    figures.reuse_tolerance_kib = growth * u64::from(figures.reuse_tolerance_pct) / 100;
    let rss_target = figures.rss_baseline_kib + figures.reuse_tolerance_kib;
    let (fds, rss, secs) = settle(pid, figures.fds_baseline, rss_target).await?;
    (
        figures.fds_after,
        figures.rss_after_kib,
        figures.settle_secs,
    ) = (fds, rss, secs);
    if fds > figures.fds_baseline {
        figures.failures.push(format!(
            "{fds} open files {secs:.0} s after the drop (baseline {})",
            figures.fds_baseline
        ));
    }
    if rss > rss_target {
        figures.failures.push(format!(
            "server RSS {rss} KiB {secs:.0} s after the drop (baseline {} KiB + tolerance {} \
             KiB, {}% of the {growth} KiB the connections took)",
            figures.rss_baseline_kib, figures.reuse_tolerance_kib, figures.reuse_tolerance_pct
        ));
    }
    demo.check_alive()?;
    Ok(())
}

/// Waits (at most `SETTLE_WITHIN` from now) for the server's open files to come back to
/// `baseline` and its RSS to `rss_target` or below: open files, RSS and the seconds it took.
async fn settle(pid: u32, baseline: usize, rss_target: u64) -> Result<(usize, u64, f64), String> {
    let dropped = Instant::now();
    loop {
        let fds = open_files(pid)?;
        let rss = rss_kib(pid)?;
        let secs = dropped.elapsed().as_secs_f64();
        if (fds <= baseline && rss <= rss_target) || dropped.elapsed() >= SETTLE_WITHIN {
            return Ok((fds, rss, secs));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Connects (a few tries) and reads the response head of `GET /events`; the stream and the
/// bytes read past the head.
async fn open_stream(addr: SocketAddr) -> Result<(TcpStream, Vec<u8>), String> {
    let mut last = String::new();
    for attempt in 0..5u64 {
        match TcpStream::connect(addr).await {
            Ok(mut stream) => {
                stream
                    .write_all(request(addr).as_bytes())
                    .await
                    .map_err(|e| e.to_string())?;
                let (head, rest) = read_head(&mut stream)
                    .await?
                    .ok_or("closed before the response head")?;
                if head.status() != Some(200) || !head.is_chunked() {
                    return Err(format!("unexpected response head {:?}", head.start));
                }
                return Ok((stream, rest));
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100 * (attempt + 1))).await;
    }
    Err(format!("connect: {last}"))
}

/// CPU time used since `before`, in % of one core over the wall time since `since`.
fn cpu_pct(now: Duration, before: Duration, since: Instant) -> f64 {
    now.saturating_sub(before).as_secs_f64() / since.elapsed().as_secs_f64() * 100.0
}

fn request(addr: SocketAddr) -> String {
    format!("GET /events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n")
}

/// One event-stream client: connects (a few tries), reads until `events` events or until
/// told to give up, and checks that event n carries sequence number n.
async fn client(
    addr: SocketAddr,
    events: usize,
    epoch: Instant,
    permit: tokio::sync::OwnedSemaphorePermit,
    (connected, failed): (Arc<AtomicUsize>, Arc<AtomicUsize>),
    mut give_up: watch::Receiver<bool>,
) -> ClientResult {
    let mut result = ClientResult {
        latencies_us: Vec::with_capacity(events),
        received: 0,
        error: None,
        stream: None,
    };
    let (mut stream, rest) = match open_stream(addr).await {
        Ok(opened) => opened,
        Err(e) => {
            failed.fetch_add(1, Ordering::Relaxed);
            result.error = Some(e);
            return result;
        }
    };
    drop(permit);
    connected.fetch_add(1, Ordering::Relaxed);

    let mut dechunker = Dechunker::default();
    let mut decoder = Decoder::new();
    let mut body = Vec::with_capacity(1024);
    let mut buf = vec![0u8; 2048];
    if let Err(e) = dechunker.feed(&rest, &mut body) {
        result.error = Some(e);
    }
    'read: while result.error.is_none() {
        decoder.feed(&body);
        body.clear();
        loop {
            let event = match decoder.decode() {
                Ok(Some(Decoded::Event(event))) => event,
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    result.error = Some(e.to_string());
                    break 'read;
                }
            };
            let now = epoch.elapsed().as_micros();
            let mut fields = event.data().split(' ');
            let seq = fields.next().and_then(|s| s.parse::<usize>().ok());
            let sent = fields.next().and_then(|s| s.parse::<u128>().ok());
            let (Some(seq), Some(sent)) = (seq, sent) else {
                result.error = Some(format!("unexpected event data {:?}", event.data()));
                break 'read;
            };
            if seq != result.received + 1 {
                result.error = Some(format!("event {seq} where {} was due", result.received + 1));
                break 'read;
            }
            result.received += 1;
            result
                .latencies_us
                .push(u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX));
            if result.received == events {
                break 'read;
            }
        }
        let n = tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) => {
                    result.error = Some(format!("stream ended after {} events", result.received));
                    break;
                }
                Ok(n) => n,
                Err(e) => {
                    result.error = Some(format!("read after {} events: {e}", result.received));
                    break;
                }
            },
            _ = give_up.wait_for(|g| *g) => {
                result.error = Some(format!("gave up after {} of {events} events", result.received));
                break;
            }
        };
        if let Err(e) = dechunker.feed(&buf[..n], &mut body) {
            result.error = Some(e);
        }
    }
    result.stream = Some(stream);
    result
}
