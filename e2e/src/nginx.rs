//! Scenario 2: nginx in front of the demo as many sites run it (`proxy_buffering on`, the
//! default, and `gzip on` for `text/event-stream`), read by a client that sends
//! `Accept-Encoding: gzip` and inflates as bytes arrive.
//!
//! - live: every event reaches the client within 100 ms, thanks to `X-Accel-Buffering: no`;
//! - control: the demo with that header turned off (`--accel-buffering off`) is held back;
//! - idle: with `proxy_read_timeout 5s` and a 1 s heartbeat, a stream with no events stays
//!   open for 30 s and still receives heartbeat bytes at the end.

use std::{
    io::Write,
    net::SocketAddr,
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use flate2::write::GzDecoder;
use http_body_util::BodyExt;
use tokio::{process::Command, task::JoinHandle};
use tower_sse_core::{Decoded, Decoder};

use crate::{
    Outcome, Settings, Tools,
    client::{self, Publisher},
    process::{ChildGuard, Demo, TempDir, free_port, wait_listening},
};

/// Events published in the live and control runs.
const EVENTS: usize = 10;
/// The bound the issue sets for an event to cross nginx.
const DEADLINE: Duration = Duration::from_millis(100);

/// The three nginx checks, each its own outcome.
pub(crate) async fn nginx(tools: &Tools, settings: &Settings) -> Vec<Outcome> {
    let started = Instant::now();
    let mut outcomes = Vec::new();
    match run(tools, settings, &mut outcomes).await {
        Ok(()) => outcomes,
        Err(e) => {
            outcomes.push(Outcome::report("nginx", Err(e), started.elapsed()));
            outcomes
        }
    }
}

async fn run(
    tools: &Tools,
    settings: &Settings,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), String> {
    // One live demo per framework: each must get its events through nginx at once.
    let mut live_demos = Vec::new();
    for framework in &settings.frameworks {
        let demo = Demo::start(
            &tools.demo,
            &["--tick-ms", "0", "--framework", framework],
            &tools.log_path(&format!("demo-nginx-live-{framework}")),
        )
        .await?;
        live_demos.push((framework.clone(), demo));
    }
    let idle_demo = Demo::start(
        &tools.demo,
        &["--tick-ms", "0", "--heartbeat-ms", "1000"],
        &tools.log_path("demo-nginx-idle"),
    )
    .await?;
    let control_demo = Demo::start(
        &tools.demo,
        &["--tick-ms", "0", "--accel-buffering", "off"],
        &tools.log_path("demo-nginx-control"),
    )
    .await
    .map_err(|e| {
        format!(
            "the control run needs the demo flag `--accel-buffering off` \
             (SseLayer::accel_buffering(false)), which it does not have yet: {e}"
        )
    });

    let dir = TempDir::new(&tools.work_dir.join("tmp"), "nginx")?;
    // Upstream order: idle, control (when it started), then one per live framework.
    let mut upstreams = vec![idle_demo.addr];
    let control_port_index = control_demo.as_ref().ok().map(|control| {
        upstreams.push(control.addr);
        upstreams.len() - 1
    });
    let live_start = upstreams.len();
    upstreams.extend(live_demos.iter().map(|(_, demo)| demo.addr));
    let nginx = Nginx::start(
        &tools.nginx,
        dir.path(),
        &upstreams,
        &tools.log_path("nginx"),
    )
    .await?;
    let idle_port = nginx.ports[0];

    let idle_started = Instant::now();
    let idle = StreamWatch::open(SocketAddr::from(([127, 0, 0, 1], idle_port)));

    for (i, (framework, demo)) in live_demos.iter().enumerate() {
        let started = Instant::now();
        let live = latency_run(demo.addr, nginx.ports[live_start + i], true).await;
        outcomes.push(Outcome::report(
            &format!("nginx: events within 100 ms (gzip, {framework})"),
            live,
            started.elapsed(),
        ));
    }

    let started = Instant::now();
    let control = match &control_demo {
        Ok(demo) => {
            let port = nginx.ports[control_port_index.expect("control started")];
            latency_run(demo.addr, port, false).await
        }
        Err(e) => Err(e.clone()),
    };
    outcomes.push(Outcome::report(
        "nginx: control without X-Accel-Buffering is held back",
        control,
        started.elapsed(),
    ));

    let idle_for = settings.idle;
    tokio::time::sleep(idle_for.saturating_sub(idle_started.elapsed())).await;
    let idle_result = idle_check(&idle, idle_for);
    outcomes.push(Outcome::report(
        "nginx: idle stream survives proxy_read_timeout 5s",
        idle_result,
        idle_started.elapsed(),
    ));
    drop(nginx);
    Ok(())
}

/// nginx with one `server` per upstream, each on its own free port; killed on drop.
#[derive(Debug)]
struct Nginx {
    ports: Vec<u16>,
    _process: ChildGuard,
}

impl Nginx {
    async fn start(
        bin: &Path,
        dir: &Path,
        upstreams: &[SocketAddr],
        log: &Path,
    ) -> Result<Self, String> {
        let ports = upstreams
            .iter()
            .map(|_| free_port())
            .collect::<Result<Vec<_>, _>>()?;
        let d = dir.display();
        let servers: String = ports
            .iter()
            .zip(upstreams)
            .map(|(port, upstream)| {
                format!(
                    "    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            \
                     proxy_pass http://{upstream};\n            proxy_set_header Connection \"\";\n        \
                     }}\n    }}\n"
                )
            })
            .collect();
        // `master_process off`: one process, as this user, so the guard's kill leaves nothing
        // behind and the temp paths stay writable; buffering and gzip work the same.
        let conf = format!(
            "master_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n    access_log {d}/access.log;\n    client_body_temp_path {d}/client_body;\n    \
             proxy_temp_path {d}/proxy;\n    fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    \
             scgi_temp_path {d}/scgi;\n    gzip on;\n    gzip_types text/event-stream;\n    \
             proxy_buffering on;\n    proxy_http_version 1.1;\n    proxy_read_timeout 5s;\n{servers}}}\n"
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).map_err(|e| format!("{}: {e}", conf_path.display()))?;
        let mut command = Command::new(bin);
        command
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"]);
        let mut process = ChildGuard::spawn("nginx", command, log, true)?;
        for port in &ports {
            let listening = wait_listening(
                SocketAddr::from(([127, 0, 0, 1], *port)),
                Duration::from_secs(10),
            )
            .await;
            if let Err(e) = listening {
                let said = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                let exited = process
                    .exited()
                    .map(|s| format!(" (exited: {s})"))
                    .unwrap_or_default();
                return Err(format!("nginx{exited}: {e}; error.log: {said}"));
            }
        }
        Ok(Self {
            ports,
            _process: process,
        })
    }
}

/// What a gzip-reading client saw on one stream.
#[derive(Debug, Default)]
struct Seen {
    head_at: Option<Instant>,
    content_encoding: Option<String>,
    events: Vec<(Instant, String)>,
    heartbeats: Vec<Instant>,
    ended: Option<String>,
}

/// A client on `/events` through nginx with `Accept-Encoding: gzip`, inflating each body frame
/// as it arrives; aborted on drop.
#[derive(Debug)]
struct StreamWatch {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StreamWatch {
    fn open(addr: SocketAddr) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(watch(addr, Arc::clone(&seen)));
        Self { seen, task }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.seen.lock().expect("seen"))
    }
}

async fn watch(addr: SocketAddr, seen: Arc<Mutex<Seen>>) {
    let end = |message: String| seen.lock().expect("seen").ended = Some(message);
    let open = client::get(
        addr,
        "/events",
        &[("accept", "text/event-stream"), ("accept-encoding", "gzip")],
    )
    .await;
    let mut open = match open {
        Ok(open) => open,
        Err(e) => return end(e),
    };
    let header = |name: &str| {
        open.response
            .headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let gzip = header("content-encoding").is_some_and(|v| v == "gzip");
    {
        let mut s = seen.lock().expect("seen");
        s.head_at = Some(Instant::now());
        s.content_encoding = header("content-encoding");
    }
    let mut inflate = GzDecoder::new(Vec::new());
    let mut decoder = Decoder::new();
    let mut line_start = true;
    let body = open.response.body_mut();
    loop {
        let frame = match body.frame().await {
            None => return end("the stream ended".to_owned()),
            Some(Err(e)) => return end(format!("the stream failed: {e}")),
            Some(Ok(frame)) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        let plain = if gzip {
            // write + flush hands over everything inflatable so far.
            if let Err(e) = inflate.write_all(&data).and_then(|()| inflate.flush()) {
                return end(format!("gzip: {e}"));
            }
            std::mem::take(inflate.get_mut())
        } else {
            data.to_vec()
        };
        let mut s = seen.lock().expect("seen");
        for &b in &plain {
            if line_start && b == b':' {
                s.heartbeats.push(now);
            }
            line_start = b == b'\n';
        }
        decoder.feed(&plain);
        while let Ok(Some(decoded)) = decoder.decode() {
            if let Decoded::Event(event) = decoded {
                s.events.push((now, event.data().into()));
            }
        }
    }
}

/// Publishes `EVENTS` events 200 ms apart on `demo` and watches them through nginx on `port`.
/// `expect_fast`: each must arrive within 100 ms; otherwise (the control) none may.
async fn latency_run(demo: SocketAddr, port: u16, expect_fast: bool) -> Result<String, String> {
    // nginx consumes X-Accel-Buffering (it never reaches the client), so ask the demo itself.
    let direct = client::get(demo, "/events", &[("accept", "text/event-stream")]).await?;
    let accel = direct
        .response
        .headers()
        .get("x-accel-buffering")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    drop(direct);
    match (expect_fast, accel.as_deref()) {
        (true, Some("no")) | (false, None) => {}
        (_, accel) => {
            return Err(format!(
                "the demo sent X-Accel-Buffering {accel:?} directly"
            ));
        }
    }
    let watch = StreamWatch::open(SocketAddr::from(([127, 0, 0, 1], port)));
    if expect_fast {
        // The priming frame (a heartbeat comment) must get through before publishing.
        let deadline = Instant::now() + Duration::from_secs(10);
        while watch.seen(|s| s.heartbeats.is_empty() && s.ended.is_none()) {
            if Instant::now() > deadline {
                return Err("no priming bytes through nginx within 10 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    } else {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut publisher = Publisher::new(demo);
    let mut published = Vec::new();
    let tag = if expect_fast { "live" } else { "control" };
    for n in 1..=EVENTS {
        let data = format!("nginx-{tag}-{n}");
        let at = Instant::now();
        publisher.publish("e2e", &data).await?;
        published.push((at, data));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    watch.seen(|seen| {
        let latencies: Vec<Option<Duration>> = published
            .iter()
            .map(|(at, data)| {
                seen.events
                    .iter()
                    .find(|(_, d)| d == data)
                    .map(|(arrived, _)| arrived.saturating_duration_since(*at))
            })
            .collect();
        let fast = latencies
            .iter()
            .flatten()
            .filter(|l| **l <= DEADLINE)
            .count();
        let arrived = latencies.iter().flatten().count();
        let ms: Vec<String> = latencies
            .iter()
            .map(|l| {
                l.map_or("-".to_owned(), |l| {
                    format!("{:.1}", l.as_secs_f64() * 1000.0)
                })
            })
            .collect();
        let encoding = seen.content_encoding.as_deref().unwrap_or("none");
        let accel = accel.as_deref().unwrap_or("absent");
        let head = if seen.head_at.is_some() {
            "arrived"
        } else {
            "held back too"
        };
        let figures = format!(
            "{fast}/{EVENTS} events within 100 ms, {arrived}/{EVENTS} by 1 s after the last; \
             latencies [{}] ms; response head {head}, Content-Encoding {encoding}; \
             the demo's X-Accel-Buffering {accel}",
            ms.join(", ")
        );
        if expect_fast {
            if seen.content_encoding.as_deref() != Some("gzip") {
                Err(format!("nginx did not gzip the stream; {figures}"))
            } else if fast == EVENTS {
                Ok(figures)
            } else {
                Err(format!("events late through nginx; {figures}"))
            }
        } else if seen.head_at.is_some() && seen.content_encoding.as_deref() != Some("gzip") {
            Err(format!("nginx did not gzip the control stream; {figures}"))
        } else if fast == 0 {
            Ok(figures)
        } else {
            Err(format!("the control was not held back; {figures}"))
        }
    })
}

fn idle_check(watch: &StreamWatch, idle_for: Duration) -> Result<String, String> {
    watch.seen(|seen| {
        let now = Instant::now();
        let last = seen
            .heartbeats
            .last()
            .map(|t| now.saturating_duration_since(*t));
        let figures = format!(
            "{} heartbeats in {} s, the last {} ms before the end; {} events",
            seen.heartbeats.len(),
            idle_for.as_secs(),
            last.map_or("-".to_owned(), |l| l.as_millis().to_string()),
            seen.events.len()
        );
        if let Some(ended) = &seen.ended {
            Err(format!("{ended}; {figures}"))
        } else if seen.content_encoding.as_deref() != Some("gzip") {
            Err(format!("nginx did not gzip the idle stream; {figures}"))
        } else if last.is_none_or(|l| l > Duration::from_millis(2500)) {
            Err(format!("no heartbeat bytes at the end; {figures}"))
        } else if (seen.heartbeats.len() as f64) < idle_for.as_secs_f64() * 0.8 {
            Err(format!("too few heartbeats; {figures}"))
        } else if !seen.events.is_empty() {
            Err(format!("events on a stream that should be idle; {figures}"))
        } else {
            Ok(figures)
        }
    })
}
