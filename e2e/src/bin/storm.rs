//! The reconnect storm (`cargo xtask bench storm`): many clients reconnect at once with a
//! `Last-Event-ID`, each some way behind, while a publisher keeps publishing to the same topic.
//!
//! The server is the real demo binary (release), over `MemoryLog` or `RedisLog` (a
//! redis-server this tool starts on a free port). Every client's stream is checked against
//! what was published: each event after its cursor exactly once, in order, with the id and
//! data the publisher got back. The result is a markdown table row per log, ready to paste
//! into BENCHMARKS.md.
//!
//! ```text
//! storm --demo PATH [--log memory|redis|limit|both|all] [--clients N] [--behind N]
//!       [--rate N] [--window-ms N] [--publish-runtime off|on|both] [--ring N] [--smoke]
//! storm --serve-limit [--publish-runtime]
//! ```
//!
//! `--publish-runtime on` starts the demo with `--publish-addr`: the publisher posts to a
//! listener served by a runtime of its own (the demo's production setting for a publisher
//! that must stay fast during a storm); `both` runs each of memory and redis without it and
//! with it (rows `memory` and `memory, publish runtime`). The limit follows the same setting
//! (`limit, publish runtime`: its `POST /publish` on a listener and one-thread runtime of its
//! own), so that each of our rows has a limit row at the same offered load.
//!
//! `limit` is the physical limit of the same storm on the same machine: the routes served
//! with no library (`storm --serve-limit`, see `limit.rs`). `both` is memory and redis, `all`
//! the three.
//!
//! The publisher sends one request at a time and waits for its answer, so `--rate` is what
//! it aims at: the **published/s in the storm** column is what it reached while the clients
//! reconnected (slow answers lower it, and with it the live load the storm puts on the
//! server). Read the latencies beside it.
//!
//! `--ring N` starts the demo with `--ring-capacity N`: how many live events each topic
//! buffers for a subscriber that falls behind before it catches up from the log (the demo's
//! default is the hub's, 1,024; the limit's channel holds 65,536).
//!
//! With `STORM_DEBUG` set in the environment, each run also prints on stderr how many
//! publishes fell in the storm's window (the publisher is sequential: a slow round trip
//! delays the next) and the 30 slowest, with when they were sent.
//!
//! A client whose stream fails (the server ends a subscription whose log read failed, so that
//! the client resumes) reconnects as a browser's `EventSource` would: after 500 ms, with the
//! id of the last event it got; the **reconnects** column counts them, and the events on
//! either side are checked as one stream.
//!
//! Exit status 1 when any client lost or duplicated an event, or got a wrong one.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    process::{ExitCode, Stdio},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, client::conn::http1};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpSocket, TcpStream},
    process::{Child, Command},
};

/// Source addresses clients connect from, so that 10,000 connections do not exhaust one
/// address's ephemeral ports (127.0.0.0/8 is all loopback on Linux).
const SOURCES: u8 = 8;

#[derive(Clone, Debug)]
struct Settings {
    demo: PathBuf,
    logs: Vec<&'static str>,
    clients: usize,
    behind: usize,
    rate: u64,
    window: Duration,
    /// Without and/or with the demo's `--publish-addr` (memory and redis rows).
    publish_runtime: Vec<bool>,
    /// The demo's `--ring-capacity`, when given.
    ring: Option<u64>,
    /// The most a run may take before it is declared failed.
    deadline: Duration,
}

fn parse() -> Result<Settings, String> {
    let mut settings = Settings {
        demo: PathBuf::from("target/release/example-demo"),
        logs: vec!["memory", "redis"],
        clients: 10_000,
        behind: 1_000,
        rate: 1_000,
        window: Duration::from_secs(1),
        publish_runtime: vec![false],
        ring: None,
        deadline: Duration::from_secs(60),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--smoke" {
            settings.clients = 300;
            settings.behind = 100;
            settings.rate = 200;
            settings.deadline = Duration::from_secs(30);
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not {value:?}"))
        };
        match flag.as_str() {
            "--demo" => settings.demo = PathBuf::from(&value),
            "--log" => {
                settings.logs = match value.as_str() {
                    "memory" => vec!["memory"],
                    "redis" => vec!["redis"],
                    "limit" => vec!["limit"],
                    "both" => vec!["memory", "redis"],
                    "all" => vec!["limit", "memory", "redis"],
                    _ => {
                        return Err(format!(
                            "--log is memory, redis, limit, both or all, not {value:?}"
                        ));
                    }
                }
            }
            "--clients" => settings.clients = number()? as usize,
            "--behind" => settings.behind = number()?.max(1) as usize,
            "--rate" => settings.rate = number()?.max(1),
            "--ring" => settings.ring = Some(number()?.max(1)),
            "--window-ms" => settings.window = Duration::from_millis(number()?),
            "--publish-runtime" => {
                settings.publish_runtime = match value.as_str() {
                    "off" => vec![false],
                    "on" => vec![true],
                    "both" => vec![false, true],
                    _ => {
                        return Err(format!(
                            "--publish-runtime is off, on or both, not {value:?}"
                        ));
                    }
                }
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(settings)
}

#[path = "storm/limit.rs"]
mod limit;

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--serve-limit") {
        let publish_runtime = std::env::args().nth(2).as_deref() == Some("--publish-runtime");
        if let Err(e) = limit::serve(publish_runtime).await {
            eprintln!("storm --serve-limit: {e}");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    let settings = match parse() {
        Ok(settings) => settings,
        Err(message) => {
            eprintln!("storm: {message}");
            return ExitCode::from(2);
        }
    };
    // Every client is a socket here and in the server (which inherits the limit).
    if let Err(e) = rlimit::increase_nofile_limit(settings.clients as u64 * 2 + 4096) {
        eprintln!("storm: could not raise RLIMIT_NOFILE: {e}");
    }
    println!(
        "| log | clients | behind | lost | duplicated | wrong | gap signals | all live (s) | publish p50 / p99 (ms) | published/s in the storm | live p50 / p99 (ms) | peak RSS (MiB) | per client (KiB) | server CPU (s) | clients' CPU (s) | log reads | Redis connections | reconnects |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut failed = false;
    for log in settings.logs.clone() {
        for publish_runtime in settings.publish_runtime.clone() {
            match storm(&settings, log, publish_runtime).await {
                Ok(report) => {
                    println!("{}", report.row());
                    failed |= !report.clean();
                }
                Err(e) => {
                    println!("| {} | failed: {e} |", label(log, publish_runtime));
                    failed = true;
                }
            }
        }
    }
    if failed {
        eprintln!("storm: lost, duplicated or wrong events, or a failed run");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// A runtime of its own, on its own thread, for the publisher and the observer: what they
/// measure is the server's latency, so they must not queue behind the 10,000 storm clients'
/// tasks in this process's runtime (clients on other machines would not share a scheduler
/// with them either).
fn measuring_runtime() -> tokio::runtime::Handle {
    runtime_thread("storm-measure")
}

/// A one-thread tokio runtime on a thread of its own named `name`, living until the process
/// exits; its handle spawns onto it.
fn runtime_thread(name: &str) -> tokio::runtime::Handle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a one-thread runtime");
            tx.send(runtime.handle().clone())
                .expect("the caller waits for it");
            runtime.block_on(std::future::pending::<()>());
        })
        .expect("a runtime thread");
    rx.recv().expect("the runtime started")
}

/// A child killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// User + system CPU time of a process, in seconds.
fn cpu_seconds(stat: &str) -> f64 {
    std::fs::read_to_string(stat)
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let fields: Vec<&str> = after.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Starts a throwaway redis-server on a free port.
async fn start_redis() -> Result<(Guard, SocketAddr), String> {
    let port = free_port()?;
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--maxclients",
            "20000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return Ok((Guard(child), addr));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("redis-server did not listen within 5 s".into())
}

/// One Redis command over a fresh connection (inline protocol); the bulk or status reply.
async fn redis_command(addr: SocketAddr, command: &str) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{command}\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(len) = first.strip_prefix('$') {
        let len: usize = len.trim().parse().map_err(|_| "bad bulk length")?;
        let mut body = vec![0; len + 2];
        reader
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        body.truncate(len);
        return String::from_utf8(body).map_err(|e| e.to_string());
    }
    Ok(first)
}

/// Connections to Redis other than the one asking.
async fn redis_clients(addr: SocketAddr) -> usize {
    redis_command(addr, "CLIENT LIST")
        .await
        .map(|list| list.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Log reads the server issued: `XRANGE`, `XREVRANGE` and `XREAD` calls.
async fn redis_reads(addr: SocketAddr) -> u64 {
    let Ok(stats) = redis_command(addr, "INFO commandstats").await else {
        return 0;
    };
    stats
        .lines()
        .filter(|line| {
            line.starts_with("cmdstat_xrange:")
                || line.starts_with("cmdstat_xrevrange:")
                || line.starts_with("cmdstat_xread:")
        })
        .filter_map(|line| {
            line.split(['=', ','])
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .sum()
}

/// A row's name: the log, and the publish runtime when on.
fn label(log: &str, publish_runtime: bool) -> String {
    if publish_runtime {
        format!("{log}, publish runtime")
    } else {
        log.to_owned()
    }
}

/// Where the demo listens: its streams, and `POST /publish` (the same address unless the
/// publish runtime is on).
struct Addresses {
    events: SocketAddr,
    publish: SocketAddr,
}

/// Starts the demo and reads the addresses from its first lines.
async fn start_demo(
    settings: &Settings,
    log: &str,
    publish_runtime: bool,
) -> Result<(Guard, Addresses, u32), String> {
    let mut command = if log == "limit" {
        let mut command =
            Command::new(std::env::current_exe().map_err(|e| format!("this binary: {e}"))?);
        command.arg("--serve-limit");
        if publish_runtime {
            command.arg("--publish-runtime");
        }
        command
    } else {
        let mut command = Command::new(&settings.demo);
        command.args(["--addr", "127.0.0.1:0", "--tick-ms", "0", "--log", log]);
        if publish_runtime {
            command.args(["--publish-addr", "127.0.0.1:0"]);
        }
        if let Some(ring) = settings.ring {
            command.args(["--ring-capacity", &ring.to_string()]);
        }
        command
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("{}: {e}", settings.demo.display()))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let pid = child.id().ok_or("demo exited")?;
    let guard = Guard(child);
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| "demo printed nothing for 20 s")?
        .map_err(|e| e.to_string())?
        .ok_or("demo exited before listening")?;
    let addr = first
        .strip_prefix("listening on http://")
        .and_then(|a| a.trim().parse().ok())
        .ok_or(format!("demo said {first:?}"))?;
    let publish = if publish_runtime {
        let second = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .map_err(|_| "demo printed no publish address for 20 s")?
            .map_err(|e| e.to_string())?
            .ok_or("demo exited before publishing")?;
        second
            .strip_prefix("publishing on http://")
            .and_then(|a| a.trim().parse().ok())
            .ok_or(format!("demo said {second:?}"))?
    } else {
        addr
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((
        guard,
        Addresses {
            events: addr,
            publish,
        },
        pid,
    ))
}

/// What was published, shared by the publisher and every client.
struct Published {
    start: Instant,
    /// Publish send time per sequence number, in µs since `start` (0 = not yet sent).
    sent: Vec<AtomicU64>,
    /// Publish round trip per sequence number, in µs.
    round_trip: Vec<AtomicU64>,
    /// The id the server assigned to each sequence number.
    ids: Vec<OnceLock<String>>,
    /// How many have been acknowledged (the ids below it are all set).
    acked: AtomicUsize,
}

impl Published {
    fn micros(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
}

async fn connect_from(addr: SocketAddr, i: usize) -> Result<TcpStream, String> {
    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % SOURCES as usize) as u8));
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket
        .bind(SocketAddr::new(source, 0))
        .map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Publishes `0, 1, 2, …` as the data of successive events at `rate` per second over one
/// keep-alive connection (one connection keeps the log order equal to the sequence order),
/// until `stop`.
async fn publisher(
    addr: SocketAddr,
    rate: u64,
    published: Arc<Published>,
    stop: Arc<AtomicBool>,
) -> Result<usize, String> {
    let stream = connect_from(addr, 0).await?;
    let (mut sender, connection) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let period = Duration::from_nanos(1_000_000_000 / rate);
    let mut next = Instant::now();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) && n < published.ids.len() {
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        }
        next += period;
        let request = Request::post("/publish")
            .body(Full::new(Bytes::from(n.to_string())))
            .map_err(|e| e.to_string())?;
        let sent = published.micros();
        published.sent[n].store(sent.max(1), Ordering::Release);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("publish {n}: {e}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        published.round_trip[n].store(published.micros() - sent, Ordering::Release);
        if !status.is_success() {
            return Err(format!("publish {n}: {status}"));
        }
        let json: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("publish {n}: {e}"))?;
        let id = json["id"].as_str().ok_or("publish: no id")?.to_owned();
        let _ = published.ids[n].set(id);
        published.acked.store(n + 1, Ordering::Release);
        n += 1;
    }
    Ok(n)
}

/// One client's verdict.
#[derive(Default)]
struct Tally {
    lost: u64,
    duplicated: u64,
    wrong: u64,
    gaps: u64,
    /// When (µs since start) it had every event published before it connected.
    live_at: Option<u64>,
    /// The next sequence number it expects.
    next: usize,
    /// Events whose id could not be checked yet (the publish answer had not arrived).
    pending: Vec<(usize, String)>,
}

impl Tally {
    fn event(
        &mut self,
        published: &Published,
        id: &str,
        event: &str,
        data: &str,
        live_from: usize,
    ) {
        if event == "sse-gap" {
            self.gaps += 1;
            return;
        }
        let Ok(n) = data.parse::<usize>() else {
            self.wrong += 1;
            return;
        };
        match n.cmp(&self.next) {
            std::cmp::Ordering::Less => {
                self.duplicated += 1;
                return;
            }
            std::cmp::Ordering::Greater => self.lost += (n - self.next) as u64,
            std::cmp::Ordering::Equal => {}
        }
        self.next = n + 1;
        match published.ids.get(n).and_then(OnceLock::get) {
            Some(expected) if expected != id => self.wrong += 1,
            Some(_) => {}
            None => self.pending.push((n, id.to_owned())),
        }
        if self.live_at.is_none() && n + 1 >= live_from {
            self.live_at = Some(published.micros());
        }
    }
}

/// The most times a storm client reconnects after its stream failed.
const MAX_RECONNECTS: u32 = 20;

/// How long a storm client waits before it reconnects (a browser's `EventSource` waits the
/// stream's `retry` hint, or about 3 s; the demo sends none).
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// Follows an event stream as `EventSource` does: when it fails (the server ends a
/// subscription whose log read failed, so that the client resumes), reconnects after
/// [`RECONNECT_DELAY`] with the id of the last event it got as `Last-Event-ID`, up to
/// [`MAX_RECONNECTS`] times, each counted in `reconnects`. `on_event` sees one stream
/// across the reconnections.
async fn follow_stream(
    addr: SocketAddr,
    i: usize,
    mut last_event_id: Option<String>,
    reconnects: &AtomicU64,
    mut on_event: impl FnMut(&str, &str, &str) -> bool,
) -> Result<(), String> {
    let mut attempts = 0;
    loop {
        match read_stream(addr, i, &mut last_event_id, &mut on_event).await {
            Err(error) if attempts < MAX_RECONNECTS => {
                attempts += 1;
                reconnects.fetch_add(1, Ordering::Relaxed);
                if std::env::var_os("STORM_DEBUG").is_some() {
                    eprintln!("storm: client {i} reconnects after: {error}");
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
            done => return done,
        }
    }
}

/// Reads one event stream, feeding `on_event(id, event type, data)` for each event, until it
/// returns `false` or the stream ends. `last_event_id` is sent as `Last-Event-ID` and holds
/// the stream's last event id when this returns (also on an error).
async fn read_stream(
    addr: SocketAddr,
    i: usize,
    last_event_id: &mut Option<String>,
    on_event: &mut impl FnMut(&str, &str, &str) -> bool,
) -> Result<(), String> {
    let stream = connect_from(addr, i).await?;
    let (mut sender, connection) = http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut request = Request::get("/events");
    if let Some(id) = last_event_id.as_deref() {
        request = request.header("last-event-id", id);
    }
    let response = sender
        .send_request(request.body(Empty::new()).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("GET /events: {}", response.status()));
    }
    let mut body = response.into_body();
    let mut id = last_event_id.clone().unwrap_or_default();
    let result = read_events(&mut body, &mut id, on_event).await;
    *last_event_id = (!id.is_empty()).then_some(id);
    result
}

/// Decodes the events of `body` (just what the storm sends: `id`, `event` and `data` lines)
/// into `on_event`, with `id` the stream's last event id as it goes.
async fn read_events(
    body: &mut hyper::body::Incoming,
    id: &mut String,
    on_event: &mut impl FnMut(&str, &str, &str) -> bool,
) -> Result<(), String> {
    let (mut event, mut data) = (String::new(), String::new());
    let mut buf: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| e.to_string())?;
        let Ok(chunk) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + end];
            start += end + 1;
            if line.is_empty() {
                if (!data.is_empty() || !event.is_empty()) && !on_event(id, &event, &data) {
                    return Ok(());
                }
                event.clear();
                data.clear();
                continue;
            }
            let line = std::str::from_utf8(line).map_err(|e| e.to_string())?;
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match name {
                "id" => value.clone_into(id),
                "event" => value.clone_into(&mut event),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        buf.drain(..start);
    }
    Ok(())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

struct Report {
    log: String,
    clients: usize,
    behind: usize,
    lost: u64,
    duplicated: u64,
    wrong: u64,
    gaps: u64,
    not_live: usize,
    all_live: f64,
    publish: (f64, f64),
    /// Publishes sent per second during the storm: the publisher waits for each answer, so
    /// slow answers lower the rate it reaches below `--rate`.
    publish_rate: f64,
    live: (f64, f64),
    peak_rss_kib: u64,
    idle_rss_kib: u64,
    /// The server's CPU time from just before the storm to the last event.
    server_cpu: f64,
    /// This tool's CPU time over the same span: the storm's clients (and the publisher and
    /// observer), on the same cores as the server.
    client_cpu: f64,
    log_reads: Option<u64>,
    redis_connections: Option<usize>,
    /// Clients' reconnections after their stream failed (`follow_stream`).
    reconnects: u64,
}

impl Report {
    fn clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.wrong == 0 && self.not_live == 0
    }

    fn row(&self) -> String {
        let per_client =
            (self.peak_rss_kib.saturating_sub(self.idle_rss_kib)) as f64 / self.clients as f64;
        let live = if self.not_live > 0 {
            format!("{} never live", self.not_live)
        } else {
            format!("{:.2}", self.all_live)
        };
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {:.0} | {:.1} / {:.1} | {:.0} | {:.1} | {:.2} | {:.2} | {} | {} | {} |",
            self.log,
            self.clients,
            self.behind,
            self.lost,
            self.duplicated,
            self.wrong,
            self.gaps,
            live,
            self.publish.0,
            self.publish.1,
            self.publish_rate,
            self.live.0,
            self.live.1,
            self.peak_rss_kib as f64 / 1024.0,
            per_client,
            self.server_cpu,
            self.client_cpu,
            self.log_reads.map_or("n/a".into(), |n| n.to_string()),
            self.redis_connections
                .map_or("n/a".into(), |n| format!("{n} (peak)")),
            self.reconnects,
        )
    }
}

async fn storm(
    settings: &Settings,
    log: &'static str,
    publish_runtime: bool,
) -> Result<Report, String> {
    let (redis, log_arg) = if log == "redis" {
        let (guard, addr) = start_redis().await?;
        (Some((guard, addr)), format!("redis://{addr}"))
    } else {
        (None, log.to_owned())
    };
    let redis_addr = redis.as_ref().map(|(_, addr)| *addr);
    let (_demo, addresses, pid) = start_demo(settings, &log_arg, publish_runtime).await?;
    let addr = addresses.events;

    let capacity = settings.rate as usize * (settings.deadline.as_secs() as usize + 10)
        + settings.behind
        + 1000;
    let published = Arc::new(Published {
        start: Instant::now(),
        sent: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        round_trip: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        ids: (0..capacity).map(|_| OnceLock::new()).collect(),
        acked: AtomicUsize::new(0),
    });

    // The observer: connected (fresh) before anything is published; its live latency is
    // what an already connected client sees during the storm.
    let observer_latency = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
    let observer_tally = Arc::new(Mutex::new(Tally::default()));
    // Every reconnection of a client (the observer's included) after its stream failed.
    let reconnects = Arc::new(AtomicU64::new(0));
    let measure = measuring_runtime();
    let observer = {
        let reconnects_observer = Arc::clone(&reconnects);
        let published = Arc::clone(&published);
        let latency = Arc::clone(&observer_latency);
        let tally = Arc::clone(&observer_tally);
        measure.spawn(async move {
            follow_stream(addr, 1, None, &reconnects_observer, |id, event, data| {
                let now = published.micros();
                if let Ok(n) = data.parse::<usize>() {
                    let sent = published
                        .sent
                        .get(n)
                        .map_or(0, |s| s.load(Ordering::Acquire));
                    latency
                        .lock()
                        .unwrap()
                        .push((sent, now.saturating_sub(sent)));
                }
                let mut tally = tally.lock().unwrap();
                tally.event(&published, id, event, data, 0);
                true
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let publisher = measure.spawn(publisher(
        addresses.publish,
        settings.rate,
        Arc::clone(&published),
        Arc::clone(&stop),
    ));
    // Enough history for every client to be `behind` events behind, plus a second of
    // steady state for the idle figure.
    while published.acked.load(Ordering::Acquire) < settings.behind + 1 {
        if publisher.is_finished() {
            return Err(format!("publisher ended: {:?}", publisher.await));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(pid);
    let cpu_before = cpu_seconds(&format!("/proc/{pid}/stat"));
    let tool_cpu_before = cpu_seconds("/proc/self/stat");

    // Sample the server's memory and Redis connections through the storm.
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_rss = Arc::new(AtomicU64::new(idle_rss));
    let peak_redis = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let sampling = Arc::clone(&sampling);
        let peak_rss = Arc::clone(&peak_rss);
        let peak_redis = Arc::clone(&peak_redis);
        tokio::spawn(async move {
            let mut tick = 0u32;
            while sampling.load(Ordering::Relaxed) {
                peak_rss.fetch_max(rss_kib(pid), Ordering::Relaxed);
                if let (Some(redis), 0) = (redis_addr, tick % 5) {
                    peak_redis.fetch_max(redis_clients(redis).await, Ordering::Relaxed);
                }
                tick += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let reads_before = match redis_addr {
        Some(redis) => Some(redis_reads(redis).await),
        None => None,
    };

    // The storm: client i connects at i/N of the window, `behind` events behind the newest
    // event acknowledged at that moment.
    let storm_start = published.micros();
    let live_count = Arc::new(AtomicUsize::new(0));
    // The sequence number of the last event, once known: clients hang up after it.
    let final_n = Arc::new(AtomicUsize::new(usize::MAX));
    let mut clients = Vec::with_capacity(settings.clients);
    let window = settings.window.as_micros() as u64;
    let started = Instant::now();
    for i in 0..settings.clients {
        let at = Duration::from_micros(window * i as u64 / settings.clients as u64);
        if let Some(wait) = at.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        let head = published.acked.load(Ordering::Acquire);
        let from = head - settings.behind;
        let cursor = published.ids[from - 1].get().cloned();
        let published = Arc::clone(&published);
        let final_n = Arc::clone(&final_n);
        let live_count = Arc::clone(&live_count);
        let reconnects = Arc::clone(&reconnects);
        clients.push(tokio::spawn(async move {
            let mut tally = Tally {
                next: from,
                ..Tally::default()
            };
            let mut counted = false;
            let result = follow_stream(addr, i + 2, cursor, &reconnects, |id, event, data| {
                tally.event(&published, id, event, data, head);
                if tally.live_at.is_some() && !counted {
                    counted = true;
                    live_count.fetch_add(1, Ordering::Relaxed);
                }
                // Read up to the last event, then hang up.
                tally.next <= final_n.load(Ordering::Acquire)
            })
            .await;
            (tally, result)
        }));
    }

    // Wait until every client is live (or the deadline), plus a second of steady state.
    let deadline = Instant::now() + settings.deadline;
    while live_count.load(Ordering::Relaxed) < settings.clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let storm_end = published.micros();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    let total = publisher
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("publisher: {e}"))?;
    // A last event so every client wakes up to see `stop`.
    {
        let stream = connect_from(addresses.publish, 0).await?;
        let (mut sender, connection) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let n = total;
        final_n.store(n, Ordering::Release);
        published.sent[n].store(published.micros().max(1), Ordering::Release);
        let response = sender
            .send_request(
                Request::post("/publish")
                    .body(Full::new(Bytes::from(n.to_string())))
                    .map_err(|e| e.to_string())?,
            )
            .await
            .map_err(|e| e.to_string())?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let _ = published.ids[n].set(json["id"].as_str().unwrap_or_default().to_owned());
        published.acked.store(n + 1, Ordering::Release);
    }
    let last = total + 1;
    let server_cpu = cpu_seconds(&format!("/proc/{pid}/stat")) - cpu_before;
    let client_cpu = cpu_seconds("/proc/self/stat") - tool_cpu_before;
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;

    let mut report = Report {
        log: label(log, publish_runtime),
        clients: settings.clients,
        behind: settings.behind,
        lost: 0,
        duplicated: 0,
        wrong: 0,
        gaps: 0,
        not_live: 0,
        all_live: 0.0,
        publish: (0.0, 0.0),
        publish_rate: 0.0,
        live: (0.0, 0.0),
        peak_rss_kib: peak_rss.load(Ordering::Relaxed),
        idle_rss_kib: idle_rss,
        server_cpu,
        client_cpu,
        log_reads: None,
        redis_connections: redis_addr.map(|_| peak_redis.load(Ordering::Relaxed)),
        reconnects: 0,
    };
    let mut live_at_max = storm_start;
    let finish = Instant::now() + Duration::from_secs(15);
    for client in clients {
        let remaining = finish.saturating_duration_since(Instant::now());
        let (mut tally, result) = match tokio::time::timeout(remaining, client).await {
            Ok(joined) => joined.map_err(|e| e.to_string())?,
            Err(_) => {
                // Stuck: whatever it did not get is lost.
                report.not_live += 1;
                report.lost += 1;
                continue;
            }
        };
        if let Err(e) = result {
            eprintln!("storm: a client failed: {e}");
        }
        if tally.next < last {
            tally.lost += (last - tally.next) as u64;
        }
        for (n, id) in &tally.pending {
            if published.ids[*n].get() != Some(id) {
                tally.wrong += 1;
            }
        }
        report.lost += tally.lost;
        report.duplicated += tally.duplicated;
        report.wrong += tally.wrong;
        report.gaps += tally.gaps;
        match tally.live_at {
            Some(at) => live_at_max = live_at_max.max(at),
            None => report.not_live += 1,
        }
    }
    report.all_live = (live_at_max - storm_start) as f64 / 1e6;
    report.reconnects = reconnects.load(Ordering::Relaxed);

    // Latencies of what was published during the storm.
    let mut publish: Vec<u64> = (0..last)
        .filter(|&n| {
            let sent = published.sent[n].load(Ordering::Acquire);
            (storm_start..=storm_end).contains(&sent)
        })
        .map(|n| published.round_trip[n].load(Ordering::Acquire))
        .collect();
    if std::env::var_os("STORM_DEBUG").is_some() {
        let mut slow: Vec<(u64, u64)> = (0..last)
            .filter_map(|n| {
                let sent = published.sent[n].load(Ordering::Acquire);
                (storm_start..=storm_end).contains(&sent).then(|| {
                    (
                        published.round_trip[n].load(Ordering::Acquire),
                        sent - storm_start,
                    )
                })
            })
            .collect();
        eprintln!("publish samples {}", slow.len());
        slow.sort_unstable();
        slow.reverse();
        for (rt, at) in slow.iter().take(30) {
            eprintln!(
                "  slow publish {:.1} ms at {:.3} s",
                *rt as f64 / 1e3,
                *at as f64 / 1e6
            );
        }
    }
    report.publish_rate = publish.len() as f64 / ((storm_end - storm_start).max(1) as f64 / 1e6);
    publish.sort_unstable();
    report.publish = (percentile(&publish, 0.5), percentile(&publish, 0.99));
    let mut live: Vec<u64> = observer_latency
        .lock()
        .unwrap()
        .iter()
        .filter(|(sent, _)| (storm_start..=storm_end).contains(sent))
        .map(|(_, latency)| *latency)
        .collect();
    if let Some(path) = std::env::var_os("STORM_TRACE") {
        // Debugging aid: the observer's (sent µs since start, latency µs), and the storm's
        // start and end.
        let trace: String = observer_latency
            .lock()
            .unwrap()
            .iter()
            .map(|(sent, latency)| format!("{} {}\n", *sent as i64 - storm_start as i64, latency))
            .collect();
        let _ = std::fs::write(
            path,
            format!("# storm {} µs\n{trace}", storm_end - storm_start),
        );
    }
    live.sort_unstable();
    report.live = (percentile(&live, 0.5), percentile(&live, 0.99));
    observer.abort();
    {
        let observer = observer_tally.lock().unwrap();
        // The observer is a client too: it must have everything up to where it was read.
        report.lost += observer.lost;
        report.duplicated += observer.duplicated;
        report.wrong += observer.wrong;
    }
    if let (Some(redis), Some(before)) = (redis_addr, reads_before) {
        report.log_reads = Some(redis_reads(redis).await.saturating_sub(before));
    }
    drop(redis);
    Ok(report)
}
