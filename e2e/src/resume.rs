//! Scenarios 1 and 3: a real `EventSource` (headless Chromium, Node's `eventsource` package)
//! behind the cutting proxy. The harness publishes `e2e-1..N`; the proxy cuts connections in
//! the middle of an event; the client must drop the partial event, reconnect after the retry
//! delay with the right `Last-Event-ID`, and see every event exactly once, in order.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::{
    Settings, Tools,
    client::Publisher,
    cut_proxy::{CutProxy, ProxyLog},
    process::{ChildGuard, Demo, TempDir},
};

/// The event type published and listened to.
const EVENT_TYPE: &str = "e2e";
/// The page the browser opens, served by the proxy.
const PAGE: &str = include_str!("page.html");

/// What a client saw.
#[derive(Clone, Debug, Default)]
pub(crate) struct Observed {
    /// `e2e` event data, in order.
    pub(crate) data: Vec<String>,
    /// Their `lastEventId`s.
    pub(crate) ids: Vec<String>,
    /// Data of events of any other type.
    pub(crate) others: Vec<String>,
    /// `error` events (each a reconnection, or the end).
    pub(crate) errors: usize,
    /// `open` events.
    pub(crate) opens: usize,
}

impl Observed {
    fn from_report(report: &serde_json::Value) -> Self {
        let strings = |key: &str| -> Vec<String> {
            report[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or("?").to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let count = |key: &str| report[key].as_u64().unwrap_or(0) as usize;
        Self {
            data: strings("data"),
            ids: strings("ids"),
            others: strings("others"),
            errors: count("errors"),
            opens: count("opens"),
        }
    }
}

/// Headless Chromium through the cutting proxy, against the demo on `framework`.
pub(crate) async fn browser(
    tools: &Tools,
    settings: &Settings,
    framework: &str,
) -> Result<String, String> {
    let mut demo = start_demo(tools, settings, framework, "browser").await?;
    let proxy = CutProxy::start(demo.addr, PAGE.to_owned(), settings.cuts.clone()).await?;
    let profile = TempDir::new(
        &tools.work_dir.join("tmp"),
        &format!("chromium-{framework}"),
    )?;
    let url = format!("http://{}/e2e.html", proxy.addr());
    let mut command = Command::new(&tools.chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url);
    let log = tools.log_path(&format!("chromium-{framework}"));
    let mut chromium = ChildGuard::spawn("chromium", command, &log, true)?;
    let observe = || proxy.log().report.as_ref().map(Observed::from_report);
    let alive = move || match chromium.exited() {
        Some(status) => Err(format!("chromium exited ({status}); see {}", log.display())),
        None => Ok(()),
    };
    drive(&mut demo, &proxy, settings, observe, alive).await
}

/// Node's `eventsource` package through the cutting proxy, against the demo on `framework`.
pub(crate) async fn node(
    tools: &Tools,
    settings: &Settings,
    framework: &str,
) -> Result<String, String> {
    let mut demo = start_demo(tools, settings, framework, "node").await?;
    let proxy = CutProxy::start(demo.addr, PAGE.to_owned(), settings.cuts.clone()).await?;
    let log = tools.log_path(&format!("node-{framework}"));
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new("node");
    command
        .arg(&tools.node_client)
        .arg(&tools.node_modules)
        .arg(format!("http://{}/events", proxy.addr()))
        .arg(EVENT_TYPE)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    let mut node = ChildGuard::start("node", command, false)?;
    let stdout = node
        .child_mut()
        .stdout
        .take()
        .ok_or("node stdout not piped")?;
    let seen = Arc::new(Mutex::new(Observed::default()));
    let bad_lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let seen = Arc::clone(&seen);
        let bad_lines = Arc::clone(&bad_lines);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                    bad_lines.lock().expect("lines").push(line);
                    continue;
                };
                let text = |key: &str| json[key].as_str().unwrap_or("?").to_owned();
                let mut seen = seen.lock().expect("observed");
                match json["kind"].as_str() {
                    Some("event") => {
                        seen.data.push(text("data"));
                        seen.ids.push(text("id"));
                    }
                    Some("other") => seen.others.push(text("data")),
                    Some("open") => seen.opens += 1,
                    Some("error") => seen.errors += 1,
                    _ => bad_lines.lock().expect("lines").push(line),
                }
            }
        })
    };
    let observe = || Some(seen.lock().expect("observed").clone());
    let alive = move || match node.exited() {
        Some(status) => Err(format!("node exited ({status}); see {}", log.display())),
        None => Ok(()),
    };
    let result = drive(&mut demo, &proxy, settings, observe, alive).await;
    reader.abort();
    let bad = bad_lines.lock().expect("lines").clone();
    match (result, bad.is_empty()) {
        (Ok(figures), true) => Ok(figures),
        (Ok(_), false) => Err(format!("node printed lines that are not events: {bad:?}")),
        (Err(e), _) => Err(e),
    }
}

async fn start_demo(
    tools: &Tools,
    settings: &Settings,
    framework: &str,
    label: &str,
) -> Result<Demo, String> {
    let retry = settings.retry.as_millis().to_string();
    Demo::start(
        &tools.demo,
        &[
            "--framework",
            framework,
            "--tick-ms",
            "0",
            "--retry-ms",
            &retry,
        ],
        &tools.log_path(&format!("demo-{label}-{framework}")),
    )
    .await
}

/// Waits for the client's stream to open, publishes, waits for every event, and checks what
/// the client and the proxy saw. `Ok` carries the figures, `Err` what failed.
async fn drive(
    demo: &mut Demo,
    proxy: &CutProxy,
    settings: &Settings,
    observe: impl Fn() -> Option<Observed>,
    mut client_alive: impl FnMut() -> Result<(), String>,
) -> Result<String, String> {
    let opened = wait_for(Duration::from_secs(30), || {
        client_alive()?;
        demo.check_alive()?;
        Ok(observe().is_some_and(|o| o.opens >= 1))
    })
    .await?;
    if !opened {
        return Err(format!(
            "the client did not open its event stream within 30 s ({} requests to /events)",
            proxy.log().streams.len()
        ));
    }

    let mut publisher = Publisher::new(demo.addr);
    let mut published = Vec::with_capacity(settings.events);
    for n in 1..=settings.events {
        let data = format!("{EVENT_TYPE}-{n}");
        let id = publisher.publish(EVENT_TYPE, &data).await?;
        published.push((data, id));
        tokio::time::sleep(settings.publish_interval).await;
    }
    let all_in = wait_for(Duration::from_secs(20), || {
        client_alive()?;
        Ok(observe().is_some_and(|o| o.data.len() >= settings.events))
    })
    .await?;
    // Late duplicates would show up in this pause.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let observed = observe().unwrap_or_default();
    let log = proxy.log();
    let mut failures = Vec::new();
    if !all_in {
        failures.push(format!(
            "only {} of {} events arrived within 20 s",
            observed.data.len(),
            settings.events
        ));
    }
    let (figures, mut more) = check(&published, &observed, &log, settings);
    failures.append(&mut more);
    if failures.is_empty() {
        Ok(figures)
    } else {
        Err(format!("{}; {figures}", failures.join("; ")))
    }
}

/// Polls `ready` every 50 ms until it is true or `within` has passed.
async fn wait_for(
    within: Duration,
    mut ready: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready()? {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ready()
}

/// The figures, and every way `observed` and the proxy's log differ from what must happen.
fn check(
    published: &[(String, String)],
    observed: &Observed,
    log: &ProxyLog,
    settings: &Settings,
) -> (String, Vec<String>) {
    let mut failures = Vec::new();
    let expected_data: Vec<&str> = published.iter().map(|(d, _)| d.as_str()).collect();
    let expected_ids: Vec<&str> = published.iter().map(|(_, id)| id.as_str()).collect();
    if observed.data != expected_data {
        failures.push(format!(
            "events not exactly once in order: got {:?}",
            observed.data
        ));
    } else if observed.ids != expected_ids {
        failures.push(format!(
            "lastEventIds {:?}, published ids {expected_ids:?}",
            observed.ids
        ));
    }
    if !observed.others.is_empty() {
        failures.push(format!("events of other types: {:?}", observed.others));
    }
    for error in &log.errors {
        failures.push(format!("proxy: {error}"));
    }
    let cuts = settings.cuts.len();
    if log.cuts.len() != cuts {
        failures.push(format!("{} cuts made, {cuts} planned", log.cuts.len()));
    }
    if log.streams.len() != cuts + 1 {
        failures.push(format!(
            "{} requests to /events, {} expected (one per cut plus the first)",
            log.streams.len(),
            cuts + 1
        ));
    }
    if observed.errors != cuts || observed.opens != cuts + 1 {
        failures.push(format!(
            "{} error and {} open events, {cuts} and {} expected",
            observed.errors,
            observed.opens,
            cuts + 1
        ));
    }
    if let Some(first) = log.streams.first().and_then(|s| s.last_event_id.as_ref()) {
        failures.push(format!("the first request sent Last-Event-ID {first:?}"));
    }
    let mut delays = Vec::new();
    let mut delivered = 0;
    for (i, cut) in log.cuts.iter().enumerate() {
        delivered += settings.cuts.get(i).copied().unwrap_or(0);
        let expected_id = delivered
            .checked_sub(1)
            .and_then(|k| published.get(k))
            .map(|(_, id)| id.as_str());
        if Some(cut.last_event_id.as_str()) != expected_id {
            failures.push(format!(
                "cut {}: last complete event {:?}, expected {expected_id:?}",
                i + 1,
                cut.last_event_id
            ));
        }
        let last_line = cut.partial.rsplit('\n').next().unwrap_or("");
        if !cut.partial.starts_with("id: ") || !last_line.starts_with("data") {
            failures.push(format!("cut {}: not mid-event: {:?}", i + 1, cut.partial));
        }
        let Some(next) = log.streams.get(i + 1) else {
            continue;
        };
        if next.last_event_id.as_deref() != Some(cut.last_event_id.as_str()) {
            failures.push(format!(
                "reconnect {} sent Last-Event-ID {:?}, expected {:?}",
                i + 1,
                next.last_event_id,
                cut.last_event_id
            ));
        }
        let delay = next.at.saturating_duration_since(cut.at);
        delays.push(delay);
        let low = settings.retry.mul_f64(0.9);
        let high = settings.retry + Duration::from_millis(1500);
        if delay < low || delay > high {
            failures.push(format!(
                "reconnect {} after {} ms, outside [{} ms, {} ms] for retry {} ms",
                i + 1,
                delay.as_millis(),
                low.as_millis(),
                high.as_millis(),
                settings.retry.as_millis()
            ));
        }
    }
    let figures = format!(
        "{}/{} events exactly once in order; {} cuts mid-event (after {:?} events, \
         the last bytes sent {:?}); reconnect delays {} ms with retry {} ms; Last-Event-ID {}",
        observed.data.len(),
        published.len(),
        log.cuts.len(),
        log.cuts.iter().map(|c| c.events_before).collect::<Vec<_>>(),
        log.cuts.first().map_or("", |c| c.partial.as_str()),
        delays
            .iter()
            .map(|d| d.as_millis().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        settings.retry.as_millis(),
        if failures.iter().any(|f| f.contains("Last-Event-ID")) {
            "wrong"
        } else {
            "right on every reconnect"
        }
    );
    (figures, failures)
}

/// The directory for a scenario's logs, created on demand.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))
}
