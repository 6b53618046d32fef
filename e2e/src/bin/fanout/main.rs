//! Fan-out over real sockets (`cargo xtask bench fanout`): one publisher, 10,000 subscribers on
//! loopback HTTP/1.1 connections, every server kind in one run.
//!
//! Rows: (a) the limit: the same pre-encoded bytes written to the same sockets by plain tokio,
//! no HTTP library; (b) the hand-rolled pattern: a tokio `broadcast` channel and an axum `Sse`
//! body per subscriber; (c) tower-sse: `Hub` + `SseLayer` on `axum::serve`, and the same router
//! on hyper's HTTP/1.1 connection.
//!
//! Each row runs its server in a child process (2 tokio workers; its CPU time is read from
//! `/proc/<pid>/stat`) and its subscribers in another (raw TCP, one large read buffer per
//! thread, only the sequence number and publish time parsed), so that the server's CPU per
//! delivery is measured alone. The publisher is a task in the server process: `--burst` events
//! back to back every `burst / rate` seconds, each carrying its sequence number and its
//! publish time; the latency is from that time to the client's read. Every subscriber must
//! get every event exactly once and in order: the exit status is 1 otherwise.
//!
//! ```text
//! fanout [--subscribers N] [--rate EVENTS_PER_S] [--burst N] [--secs S] [--sources N]
//!        [--client-threads N] [--only KIND,...] [--smoke]
//! ```

use std::{net::SocketAddr, process::ExitCode, time::Duration};

#[path = "../../sockets.rs"]
mod sockets;

mod clients;
mod server;

use sockets::{Role, cpu_seconds, now_micros, raise_nofile};

#[derive(Clone, Debug)]
struct Settings {
    subscribers: usize,
    /// Events per second.
    rate: u64,
    /// Events published back to back per tick.
    burst: u64,
    secs: u64,
    sources: usize,
    client_threads: usize,
    only: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut settings = Settings {
        subscribers: 10_000,
        rate: 100,
        burst: 10,
        secs: 5,
        sources: 8,
        client_threads: 1,
        only: Vec::new(),
    };
    while let Some(flag) = args.next() {
        if flag == "--smoke" {
            settings.subscribers = 1_000;
            settings.secs = 2;
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not {value:?}"))
        };
        match flag.as_str() {
            "--subscribers" => settings.subscribers = number()?.max(1) as usize,
            "--rate" => settings.rate = number()?.max(1),
            "--burst" => settings.burst = number()?.max(1),
            "--secs" => settings.secs = number()?.max(1),
            "--sources" => settings.sources = number()?.clamp(1, 250) as usize,
            "--client-threads" => settings.client_threads = number()?.max(1) as usize,
            "--only" => settings.only = value.split(',').map(str::to_owned).collect(),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if let Some(unknown) = settings
        .only
        .iter()
        .find(|k| !server::KINDS.iter().any(|(kind, _)| kind == k))
    {
        let kinds: Vec<&str> = server::KINDS.iter().map(|(kind, _)| *kind).collect();
        return Err(format!(
            "--only takes {}, not {unknown:?}",
            kinds.join(", ")
        ));
    }
    Ok(settings)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let role = args.next();
    let outcome = match role.as_deref() {
        // fanout serve KIND
        Some("serve") => args
            .next()
            .ok_or_else(|| "serve needs a kind".to_owned())
            .and_then(|kind| {
                raise_nofile(1 << 20);
                server::run(&kind)
            }),
        // fanout clients ADDR N EVENTS SOURCES THREADS DEADLINE_S
        Some("clients") => {
            let words: Vec<String> = args.collect();
            (|| {
                let [addr, n, events, sources, threads, deadline] = &words[..] else {
                    return Err(format!("clients takes 6 arguments, not {words:?}"));
                };
                let number = |s: &String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
                let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
                raise_nofile(1 << 20);
                clients::run(
                    addr,
                    number(n)? as usize,
                    number(events)?,
                    number(sources)? as usize,
                    number(threads)? as usize,
                    Duration::from_secs(number(deadline)?),
                )
            })()
        }
        _ => {
            return sockets::run_parsed("fanout", parse(std::env::args().skip(1)), controller);
        }
    };
    sockets::role_exit("fanout", role.as_deref(), outcome)
}

/// One row's figures.
struct Row {
    name: &'static str,
    deliveries: u64,
    seconds: f64,
    cpu: f64,
    client_cpu: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    lost: u64,
    duplicated: u64,
    malformed: u64,
    incomplete: u64,
    error: Option<String>,
}

impl Row {
    fn clean(&self) -> bool {
        self.lost == 0
            && self.duplicated == 0
            && self.malformed == 0
            && self.incomplete == 0
            && self.error.is_none()
    }

    fn cpu_per_delivery_ns(&self) -> f64 {
        self.cpu / self.deliveries.max(1) as f64 * 1e9
    }
}

fn controller(settings: &Settings) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("fanout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (soft, hard) = raise_nofile(settings.subscribers as u64 + 1024);
    let events = settings.rate * settings.secs;
    println!(
        "fan-out: {} subscribers (loopback, {} source addresses), {} events at {}/s in bursts \
         of {} ({} ms apart), {} deliveries offered per second; RLIMIT_NOFILE {soft} (hard {hard})",
        settings.subscribers,
        settings.sources,
        events,
        settings.rate,
        settings.burst,
        1000 * settings.burst / settings.rate,
        settings.rate * settings.subscribers as u64,
    );
    let mut rows = Vec::new();
    let mut failed = false;
    for (kind, name) in server::KINDS {
        if !settings.only.is_empty() && !settings.only.iter().any(|k| k == kind) {
            continue;
        }
        match runtime.block_on(row(settings, kind, name, events)) {
            Ok(row) => {
                failed |= !row.clean();
                rows.push(row);
            }
            Err(e) => {
                eprintln!("fanout: {kind}: {e}");
                failed = true;
            }
        }
    }
    let limit = rows
        .iter()
        .find(|r| r.name == server::KINDS[0].1)
        .map(Row::cpu_per_delivery_ns);
    println!(
        "\n| server | deliveries/s | server CPU (of one core) | CPU per delivery | vs limit | \
         latency p50 / p99 / max | lost / duplicated | client CPU |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in &rows {
        let per = row.cpu_per_delivery_ns();
        println!(
            "| {} | {:.0} | {:.0} % | {:.0} ns | {} | {:.1} / {:.1} / {:.1} ms | {} / {}{} | {:.0} % |",
            row.name,
            row.deliveries as f64 / row.seconds,
            row.cpu / row.seconds * 100.0,
            per,
            limit.map_or("-".into(), |l| format!("{:.2}x", per / l)),
            row.p50_us as f64 / 1e3,
            row.p99_us as f64 / 1e3,
            row.max_us as f64 / 1e3,
            row.lost,
            row.duplicated,
            match (&row.error, row.incomplete, row.malformed) {
                (Some(e), _, _) => format!(" (error: {e})"),
                (None, 0, 0) => String::new(),
                (None, i, m) => format!(" ({i} incomplete, {m} malformed)"),
            },
            row.client_cpu / row.seconds * 100.0,
        );
    }
    if failed {
        eprintln!("fanout: a row lost, duplicated or reordered events, or failed");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn row(
    settings: &Settings,
    kind: &str,
    name: &'static str,
    events: u64,
) -> Result<Row, String> {
    let mut server = Role::spawn(&["serve".into(), kind.into()])?;
    let port: u16 = server
        .expect("READY", Duration::from_secs(10))
        .await?
        .parse()
        .map_err(|e| format!("port: {e}"))?;
    let deadline = settings.secs + 60;
    let mut clients = Role::spawn(&[
        "clients".into(),
        format!("127.0.0.1:{port}"),
        settings.subscribers.to_string(),
        events.to_string(),
        settings.sources.to_string(),
        settings.client_threads.to_string(),
        deadline.to_string(),
    ])?;
    clients
        .expect("CONNECTED", Duration::from_secs(120))
        .await?;
    // Let the connections settle (accept backlog, first polls) before the clock starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_seconds(server.pid);
    let client_cpu_before = cpu_seconds(clients.pid);
    let started = now_micros();
    server
        .send(&format!("GO {events} {} {}", settings.rate, settings.burst))
        .await?;
    let result = clients
        .expect("RESULT", Duration::from_secs(deadline + 10))
        .await?;
    let cpu = cpu_seconds(server.pid) - cpu_before;
    let client_cpu = cpu_seconds(clients.pid) - client_cpu_before;
    let result: serde_json::Value = serde_json::from_str(&result).map_err(|e| e.to_string())?;
    let field = |name: &str| result[name].as_u64().unwrap_or(0);
    let seconds = (field("done_at_us").saturating_sub(started)) as f64 / 1e6;
    clients.stop().await;
    server.stop().await;
    Ok(Row {
        name,
        deliveries: field("received") - field("duplicated"),
        seconds,
        cpu,
        client_cpu,
        p50_us: field("p50_us"),
        p99_us: field("p99_us"),
        max_us: field("max_us"),
        lost: field("lost"),
        duplicated: field("duplicated"),
        malformed: field("malformed"),
        incomplete: field("incomplete"),
        error: result["error"].as_str().map(str::to_owned),
    })
}
