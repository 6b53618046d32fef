//! Idle event streams (`cargo xtask bench idle`): 100,000 open HTTP/1.1 event streams on
//! loopback with a 15 s heartbeat; server memory per connection and CPU per heartbeat for
//! bare hyper, hyper + `SseLayer` and axum + `SseLayer`, in one run.
//!
//! The servers run in child processes of their own (2 tokio workers each), the clients in
//! others (raw TCP, one read buffer per thread, counting heartbeats), spread over
//! `--sources` addresses 127.0.0.2, 127.0.0.3, ... (bind before connect). The benchmark raises
//! `RLIMIT_NOFILE` itself; where the hard limit is below the connection count and the process
//! may not raise it (no `CAP_SYS_RESOURCE`), the connections are split over as few server
//! processes as the limit allows (each on its own port, memory and CPU summed over them), and
//! the output says so.
//!
//! Memory is VmRSS (`/proc/<pid>/status`): before the connections (after one warm-up
//! connection per server process) and once every connection has had a heartbeat interval to
//! fire its timer. CPU (`/proc/<pid>/stat`) is taken over `--beats` heartbeat intervals after
//! that, divided by the heartbeats the clients received in the same window. Exit status 1
//! when a connection failed or closed, or a heartbeat row's count is off by more than one
//! beat per connection.
//!
//! ```text
//! idle [--connections N] [--heartbeat-ms MS] [--beats N] [--sources N] [--only KIND,...]
//!      [--smoke]
//! ```

use std::{net::SocketAddr, process::ExitCode, time::Duration};

#[path = "../../sockets.rs"]
mod sockets;

mod clients;
mod server;

use sockets::{Role, cpu_seconds, raise_nofile, request_stream, rss_kib};

#[derive(Clone, Debug)]
struct Settings {
    connections: usize,
    heartbeat: Duration,
    beats: u32,
    sources: usize,
    only: Vec<String>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Settings, String> {
    let mut settings = Settings {
        connections: 100_000,
        heartbeat: Duration::from_secs(15),
        beats: 2,
        sources: 16,
        only: Vec::new(),
    };
    while let Some(flag) = args.next() {
        if flag == "--smoke" {
            settings.connections = 2_000;
            settings.heartbeat = Duration::from_secs(1);
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
            "--connections" => settings.connections = number()?.max(1) as usize,
            "--heartbeat-ms" => settings.heartbeat = Duration::from_millis(number()?.max(10)),
            "--beats" => settings.beats = number()?.clamp(2, 100) as u32,
            "--sources" => settings.sources = number()?.clamp(1, 250) as usize,
            "--only" => settings.only = value.split(',').map(str::to_owned).collect(),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if let Some(unknown) = settings
        .only
        .iter()
        .find(|k| !server::KINDS.iter().any(|(kind, _, _)| kind == k))
    {
        let kinds: Vec<&str> = server::KINDS.iter().map(|(kind, _, _)| *kind).collect();
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
    let words: Vec<String> = args.collect();
    let number = |s: &String| s.parse::<u64>().map_err(|e| format!("{s}: {e}"));
    let outcome = match role.as_deref() {
        // idle serve KIND HEARTBEAT_MS
        Some("serve") => (|| {
            let [kind, heartbeat] = &words[..] else {
                return Err(format!("serve takes 2 arguments, not {words:?}"));
            };
            raise_nofile(1 << 20);
            server::run(kind, Duration::from_millis(number(heartbeat)?))
        })(),
        // idle clients ADDR N OFFSET SOURCES
        Some("clients") => (|| {
            let [addr, n, offset, sources] = &words[..] else {
                return Err(format!("clients takes 4 arguments, not {words:?}"));
            };
            let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
            raise_nofile(1 << 20);
            clients::run(
                addr,
                number(n)? as usize,
                number(offset)? as usize,
                number(sources)? as usize,
            )
        })(),
        _ => {
            return sockets::run_parsed("idle", parse(std::env::args().skip(1)), controller);
        }
    };
    sockets::role_exit("idle", role.as_deref(), outcome)
}

/// One row's figures.
struct Row {
    name: &'static str,
    beating: bool,
    rss_delta_kib: u64,
    heartbeats: u64,
    cpu: f64,
    connect_seconds: f64,
}

impl Row {
    fn per_connection(&self, n: usize) -> f64 {
        self.rss_delta_kib as f64 * 1024.0 / n as f64
    }

    fn cpu_per_heartbeat_us(&self) -> Option<f64> {
        (self.beating && self.heartbeats > 0).then(|| self.cpu / self.heartbeats as f64 * 1e6)
    }
}

fn controller(settings: &Settings) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("idle: {e}");
            return ExitCode::FAILURE;
        }
    };
    let n = settings.connections;
    // Children inherit this limit and raise their own the same way.
    let (soft, hard) = raise_nofile(n as u64 + 1024);
    // Room for the runtime's own descriptors and the warm-up connection.
    let per_process = (soft as usize).saturating_sub(256).max(1);
    let processes = n.div_ceil(per_process);
    let ports =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    println!(
        "idle: {n} event streams (HTTP/1.1, loopback, from {} source addresses), heartbeat {} ms, \
         CPU over {} heartbeats; RLIMIT_NOFILE {soft} (hard {hard}), ephemeral ports {}",
        settings.sources,
        settings.heartbeat.as_millis(),
        settings.beats,
        ports.trim().replace('\t', "-"),
    );
    if processes > 1 {
        println!(
            "idle: the hard file-descriptor limit ({hard}) is below {n} and could not be raised \
             (no CAP_SYS_RESOURCE): {processes} server processes of at most {per_process} \
             connections each, and as many client processes; memory and CPU are summed"
        );
    }
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = false;
    print_header();
    for (kind, name, beating) in server::KINDS {
        if !settings.only.is_empty() && !settings.only.iter().any(|k| k == kind) {
            continue;
        }
        match runtime.block_on(row(settings, kind, processes)) {
            Ok((heartbeats, rss_delta_kib, cpu, connect_seconds)) => {
                let expected = n as u64 * u64::from(settings.beats);
                let off = heartbeats.abs_diff(expected);
                if *beating && off > n as u64 {
                    eprintln!(
                        "idle: {kind}: {heartbeats} heartbeats in the window, expected about {expected}"
                    );
                    failed = true;
                }
                let row = Row {
                    name,
                    beating: *beating,
                    rss_delta_kib,
                    heartbeats,
                    cpu,
                    connect_seconds,
                };
                print_row(settings, processes, &rows, &row);
                rows.push(row);
            }
            Err(e) => {
                eprintln!("idle: {kind}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        eprintln!("idle: a connection failed or closed, or heartbeats went missing");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_header() {
    println!(
        "\n| server | connections (server processes) | open in | RSS delta | per connection | over bare hyper | \
         heartbeats in window | server CPU in window | CPU per heartbeat | vs hand-rolled |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
}

/// Prints `row`, compared with the bare and hand-rolled rows among those before it.
fn print_row(settings: &Settings, processes: usize, before: &[Row], row: &Row) {
    let n = settings.connections;
    let bare = before
        .iter()
        .find(|r| r.name == server::KINDS[0].1)
        .map(|r| r.per_connection(n));
    let hand_rolled = before
        .iter()
        .chain(std::iter::once(row))
        .find(|r| r.name == server::KINDS[1].1)
        .and_then(Row::cpu_per_heartbeat_us);
    let per = row.per_connection(n);
    let per_beat = row.cpu_per_heartbeat_us();
    println!(
        "| {} | {n} ({processes}) | {:.1} s | {:.1} MiB | {:.2} KiB | {} | {} | {:.2} s | {} | {} |",
        row.name,
        row.connect_seconds,
        row.rss_delta_kib as f64 / 1024.0,
        per / 1024.0,
        bare.map_or("-".into(), |b| format!("{:+.0} B", per - b)),
        if row.beating {
            row.heartbeats.to_string()
        } else {
            "-".into()
        },
        row.cpu,
        per_beat.map_or("-".into(), |us| format!("{us:.2} µs")),
        match (per_beat, hand_rolled) {
            (Some(us), Some(base)) => format!("{:.2}x", us / base),
            _ => "-".into(),
        },
    );
}

/// Runs one kind: returns the heartbeats counted in the window, the servers' RSS growth
/// (KiB), their CPU seconds in the window and the seconds it took to open every connection.
async fn row(
    settings: &Settings,
    kind: &str,
    processes: usize,
) -> Result<(u64, u64, f64, f64), String> {
    let heartbeat_ms = settings.heartbeat.as_millis().to_string();
    let mut servers = Vec::with_capacity(processes);
    let mut warm = Vec::with_capacity(processes);
    for _ in 0..processes {
        let mut server = Role::spawn(&["serve".into(), kind.into(), heartbeat_ms.clone()])?;
        let port: u16 = server
            .expect("READY", Duration::from_secs(10))
            .await?
            .parse()
            .map_err(|e| format!("port: {e}"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // One warm-up stream, so one-time allocations do not count per connection.
        let mut stream = sockets::connect_from(addr, 0, 1)
            .await
            .map_err(|e| e.to_string())?;
        request_stream(&mut stream, "/events")
            .await
            .map_err(|e| e.to_string())?;
        warm.push(stream);
        servers.push((server, addr));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before: u64 = servers.iter().map(|(s, _)| rss_kib(s.pid)).sum();

    let n = settings.connections;
    let started = std::time::Instant::now();
    let mut clients = Vec::with_capacity(processes);
    let mut offset = 0;
    for (i, (_, addr)) in servers.iter().enumerate() {
        let count = n / processes + usize::from(i < n % processes);
        clients.push(Role::spawn(&[
            "clients".into(),
            addr.to_string(),
            count.to_string(),
            offset.to_string(),
            settings.sources.to_string(),
        ])?);
        offset += count;
    }
    for client in &mut clients {
        client.expect("CONNECTED", Duration::from_secs(300)).await?;
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    // Every stream's timer has fired at least once (and its buffers are in use) after one
    // interval past the last connection.
    tokio::time::sleep(settings.heartbeat + Duration::from_millis(500)).await;
    let after: u64 = servers.iter().map(|(s, _)| rss_kib(s.pid)).sum();

    let (beats_before, _) = count(&mut clients).await?;
    let cpu_before: f64 = servers.iter().map(|(s, _)| cpu_seconds(s.pid)).sum();
    tokio::time::sleep(settings.heartbeat * settings.beats).await;
    let cpu_after: f64 = servers.iter().map(|(s, _)| cpu_seconds(s.pid)).sum();
    let (beats_after, open) = count(&mut clients).await?;
    for client in clients {
        client.stop().await;
    }
    drop(warm);
    for (server, _) in servers {
        server.stop().await;
    }
    if open < n {
        return Err(format!("{} of {n} streams closed during the run", n - open));
    }
    Ok((
        beats_after - beats_before,
        after.saturating_sub(before),
        cpu_after - cpu_before,
        connect_seconds,
    ))
}

/// Heartbeats received and streams open, summed over the client processes.
async fn count(clients: &mut [Role]) -> Result<(u64, usize), String> {
    let (mut beats, mut open) = (0, 0);
    for client in clients {
        client.send("COUNT").await?;
        let answer = client.expect("COUNT", Duration::from_secs(10)).await?;
        let mut words = answer
            .split_whitespace()
            .map(|w| w.parse::<u64>().unwrap_or(0));
        beats += words.next().unwrap_or(0);
        open += words.next().unwrap_or(0) as usize;
    }
    Ok((beats, open))
}
