//! Scenario `dashboard`: the demo page's live dashboard in headless Chromium. With streams
//! open (one resuming from an unknown id) and events published, the dashboard (`GET
//! /dashboard`, the same markup and script as on `GET /`, without the page's own event
//! stream, so that Chromium's virtual clock can run its refreshes) must show exactly what
//! `GET /metrics` says; its screenshot goes to `WORK_DIR/dashboard-FRAMEWORK.png`.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use http_body_util::BodyExt;
use tokio::process::Command;

use crate::{
    Settings, Tools,
    client::{self, Publisher},
    process::{ChildGuard, Demo, TempDir},
};

/// The tiles checked, with the `/metrics` series (summed over matching lines) each shows.
const TILES: &[(&str, &str)] = &[
    ("active", "sse_server_active_streams"),
    ("events", "sse_server_events_total"),
    ("streams", "sse_server_streams_total"),
    ("subscribers", "sse_hub_subscribers"),
    ("resumed", "sse_server_replays_total{outcome=\"resumed\"}"),
    ("gaps", "sse_server_replays_total{outcome=\"gap\"}"),
    ("unknown", "sse_server_replays_total{outcome=\"unknown\"}"),
    (
        "log-error",
        "sse_server_replays_total{outcome=\"log_error\"}",
    ),
    ("incidents", "sse_log_errors_total{"),
];

/// Streams held open while the browser looks.
const STREAMS: usize = 3;
/// Events published to them.
const EVENTS: usize = 2;

pub(crate) async fn dashboard(
    tools: &Tools,
    _settings: &Settings,
    framework: &str,
) -> Result<String, String> {
    let log = tools.log_path(&format!("demo-dashboard-{framework}"));
    let args = [
        "--framework",
        framework,
        "--tick-ms",
        "0",
        "--heartbeat-ms",
        "60000",
    ];
    let mut demo = Demo::start(&tools.demo, &args, &log).await?;
    let mut streams = Vec::new();
    for n in 0..STREAMS {
        let headers: &[(&str, &str)] = if n == 0 {
            &[("last-event-id", "not-an-id-of-this-log")]
        } else {
            &[]
        };
        streams.push(client::get(demo.addr, "/events", headers).await?);
    }
    let mut publisher = Publisher::new(demo.addr);
    for n in 0..EVENTS {
        publisher.publish("note", &format!("dashboard {n}")).await?;
    }
    // Every stream has written its events (the gap signal too) before the browser looks.
    let want = (STREAMS * EVENTS + 1) as f64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while series(&scrape(demo.addr).await?, "sse_server_events_total") != want {
        if Instant::now() > deadline {
            return Err(format!("sse_server_events_total never reached {want}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let url = format!("http://{}/dashboard", demo.addr);
    let dom = chromium(tools, framework, &url, &["--dump-dom"]).await?;
    let metrics = scrape(demo.addr).await?;
    demo.check_alive()?;
    let scrapes =
        attribute(&dom, "data-scrapes=\"").ok_or("the dashboard section has no data-scrapes")?;
    if scrapes < 2.0 {
        return Err(format!(
            "the dashboard refreshed {scrapes} times, not at least twice"
        ));
    }
    let mut shown = Vec::new();
    for (tile, name) in TILES {
        let on_page = tile_value(&dom, tile)
            .ok_or_else(|| format!("no value on the page for tile {tile}"))?;
        let in_metrics = series(&metrics, name);
        if on_page != in_metrics {
            return Err(format!(
                "tile {tile} shows {on_page}, /metrics has {name} = {in_metrics}"
            ));
        }
        shown.push(format!("{tile} {on_page}"));
    }
    if series(&metrics, "sse_server_active_streams") != STREAMS as f64 {
        return Err(format!(
            "{STREAMS} streams open, /metrics says otherwise:\n{metrics}"
        ));
    }

    let shot = tools.work_dir.join(format!("dashboard-{framework}.png"));
    let _ = std::fs::remove_file(&shot);
    chromium(
        tools,
        framework,
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1000,700",
        ],
    )
    .await?;
    let png = std::fs::read(&shot).map_err(|e| format!("screenshot {}: {e}", shot.display()))?;
    if !png.starts_with(b"\x89PNG") {
        return Err(format!("{} is not a PNG", shot.display()));
    }
    drop(streams);
    Ok(format!(
        "page = /metrics after {scrapes} refreshes: {}; screenshot {}",
        shown.join(", "),
        shot.display()
    ))
}

/// Runs headless Chromium on `url` with `extra` flags and a virtual-time budget (the
/// dashboard's refreshes run on it), returning its stdout.
async fn chromium(
    tools: &Tools,
    framework: &str,
    url: &str,
    extra: &[&str],
) -> Result<String, String> {
    let profile = TempDir::new(
        &tools.work_dir.join("tmp"),
        &format!("chromium-dashboard-{framework}"),
    )?;
    let out_path = profile.path().join("stdout.html");
    let out =
        std::fs::File::create(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))?;
    let log = tools.log_path(&format!("chromium-dashboard-{framework}"));
    let err = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new(&tools.chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=3500",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let mut chromium = ChildGuard::start("chromium", command, true)?;
    let status = tokio::time::timeout(Duration::from_secs(60), chromium.child_mut().wait())
        .await
        .map_err(|_| format!("chromium did not finish within 60 s; see {}", log.display()))?
        .map_err(|e| format!("chromium: {e}"))?;
    if !status.success() {
        return Err(format!(
            "chromium exited with {status}; see {}",
            log.display()
        ));
    }
    std::fs::read_to_string(&out_path).map_err(|e| format!("{}: {e}", out_path.display()))
}

/// `GET /metrics`, the whole body.
async fn scrape(addr: std::net::SocketAddr) -> Result<String, String> {
    let open = client::get(addr, "/metrics", &[]).await?;
    if !open.response.status().is_success() {
        return Err(format!("GET /metrics answered {}", open.response.status()));
    }
    let body = tokio::time::timeout(Duration::from_secs(10), open.response.into_body().collect())
        .await
        .map_err(|_| "GET /metrics: body too slow".to_owned())?
        .map_err(|e| format!("GET /metrics: {e}"))?
        .to_bytes();
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The sum of the samples whose series starts with `prefix` (a whole name, or a name and
/// labels); 0 when none does.
fn series(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            let matches = if prefix.ends_with('{') || prefix.ends_with('}') {
                name.starts_with(prefix)
            } else {
                name == prefix
            };
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The `data-value` of the tile `name` in the dumped DOM.
fn tile_value(dom: &str, name: &str) -> Option<f64> {
    let start = dom.find(&format!("data-metric=\"{name}\""))?;
    let tag = &dom[dom[..start].rfind('<')?..start + dom[start..].find('>')?];
    attribute(tag, "data-value=\"")
}

/// The number in the first `attr"...` of `text`.
fn attribute(text: &str, attr: &str) -> Option<f64> {
    let start = text.find(attr)? + attr.len();
    let end = start + text[start..].find('"')?;
    text[start..end].parse().ok()
}
