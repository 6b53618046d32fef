//! Scenario `h2`: the demo over TLS and HTTP/2 (`--tls-cert`/`--tls-key`, HTTP/2 and
//! HTTP/1.1 by ALPN), for each framework:
//!
//! - **headers**: a hyper HTTP/2 client over rustls, trusting only the test CA, reads the
//!   demo's responses (`/events`, `/`, `/plain`, `POST /publish`, a 404): each is HTTP/2 and
//!   carries no connection-specific header (`connection`, `keep-alive`, `proxy-connection`,
//!   `transfer-encoding`, `upgrade`; RFC 9113, section 8.2.2);
//! - **browser**: headless Chromium, driven over the DevTools protocol, loads a page of the
//!   demo's origin and opens 12 `EventSource`s to `/events`: all 12 open, on one HTTP/2
//!   connection, and each receives every published event exactly once, in order;
//! - **contrast** (first framework only): the same page with Chromium's HTTP/2 turned off
//!   (`--disable-http2`, still TLS): HTTP/1.1 allows 6 connections per host, so only 6 streams
//!   open and the other 6 wait.
//!
//! Chromium accepts the test certificate with `--ignore-certificate-errors` (the harness's
//! own throwaway CA; nothing else is loaded in that profile).

use std::{
    collections::BTreeSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use hyper::Version;
use serde_json::json;
use tokio::process::Command;

use crate::{
    Outcome, Settings, Tools,
    cdp::Cdp,
    h2_client::{CERT_DIR, H2Client},
    process::{ChildGuard, Demo, TempDir},
};

/// The `EventSource`s the page opens: twice HTTP/1.1's 6 per host.
const SOURCES: usize = 12;
/// The event type published and listened to.
const EVENT_TYPE: &str = "h2";
/// Headers that HTTP/2 forbids (RFC 9113, section 8.2.2).
const CONNECTION_SPECIFIC: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];
/// The bound on the browser opening its streams, and on the events reaching them.
const BROWSER_WAIT: Duration = Duration::from_secs(20);

/// The checks of the scenario, each its own outcome.
pub(crate) async fn h2(tools: &Tools, settings: &Settings) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for (i, framework) in settings.frameworks.iter().enumerate() {
        let t = Instant::now();
        let mut demo = match start_demo(tools, framework).await {
            Ok(demo) => demo,
            Err(e) => {
                let name = format!("h2 demo over TLS ({framework})");
                outcomes.push(Outcome::report(&name, Err(e), t.elapsed()));
                continue;
            }
        };
        let t = Instant::now();
        let result = headers(&demo).await;
        let name = format!("h2 headers ({framework})");
        outcomes.push(Outcome::report(&name, result, t.elapsed()));

        let t = Instant::now();
        let result = browser(tools, settings, &mut demo, framework, Mode::Http2).await;
        let name = format!("h2 browser, {SOURCES} EventSources over HTTP/2 ({framework})");
        outcomes.push(Outcome::report(&name, result, t.elapsed()));

        if i == 0 {
            let t = Instant::now();
            let result = browser(tools, settings, &mut demo, framework, Mode::Http11).await;
            let name = format!("h2 contrast, {SOURCES} EventSources over HTTP/1.1 ({framework})");
            outcomes.push(Outcome::report(&name, result, t.elapsed()));
        }
    }
    outcomes
}

async fn start_demo(tools: &Tools, framework: &str) -> Result<Demo, String> {
    let dir = PathBuf::from(CERT_DIR);
    let cert = dir.join("ec-cert.pem");
    let key = dir.join("ec-pkcs8.key");
    let demo = Demo::start(
        &tools.demo,
        &[
            "--framework",
            framework,
            "--tick-ms",
            "0",
            "--tls-cert",
            &cert.display().to_string(),
            "--tls-key",
            &key.display().to_string(),
        ],
        &tools.log_path(&format!("demo-h2-{framework}")),
    )
    .await?;
    if !demo.https {
        return Err("the demo started with --tls-cert does not say `listening on https://`".into());
    }
    Ok(demo)
}

/// Every response of the demo over HTTP/2 is HTTP/2 and has no connection-specific header.
async fn headers(demo: &Demo) -> Result<String, String> {
    let mut client = H2Client::connect(demo).await?;
    type Probe<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let requests: [Probe<'_>; 5] = [
        ("GET", "/events", &[("accept", "text/event-stream")]),
        ("GET", "/", &[]),
        ("GET", "/plain", &[]),
        ("POST", "/publish?event=h2-check", &[]),
        ("GET", "/no-such-route", &[]),
    ];
    let mut checked = Vec::new();
    let mut failures = Vec::new();
    for (method, path, headers) in requests {
        // hyper's HTTP/2 client refuses a response carrying a connection-specific header
        // (malformed, RFC 9113 section 8.1.1), so such a header shows up as a failed request
        // here; the header map is checked as well.
        let response = match client.send(method, path, headers).await {
            Ok(response) => response,
            Err(e) => {
                failures.push(format!("{method} {path}: {e}"));
                continue;
            }
        };
        let found: Vec<&str> = CONNECTION_SPECIFIC
            .into_iter()
            .filter(|name| response.headers().contains_key(*name))
            .collect();
        if !found.is_empty() {
            failures.push(format!("{method} {path}: connection-specific {found:?}"));
        }
        if response.version() != Version::HTTP_2 {
            failures.push(format!("{method} {path}: {:?}", response.version()));
        }
        if path == "/events" {
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            if response.status() != 200
                || header("content-type") != "text/event-stream"
                || header("cache-control") != "no-cache"
            {
                failures.push(format!(
                    "GET /events: {} {:?}",
                    response.status(),
                    response.headers()
                ));
            }
        }
        checked.push(format!("{method} {path} {}", response.status().as_u16()));
    }
    if failures.is_empty() {
        Ok(format!(
            "HTTP/2 over TLS (ALPN h2), no connection-specific header on: {}",
            checked.join(", ")
        ))
    } else {
        Err(failures.join("; "))
    }
}

/// Whether Chromium may use HTTP/2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Http2,
    /// `--disable-http2`: HTTP/1.1 over the same TLS.
    Http11,
}

/// What one `EventSource` of the page saw.
#[derive(Debug, Default)]
struct Source {
    opens: u64,
    errors: u64,
    data: Vec<String>,
    /// Events of another type (the unnamed `message` type).
    others: u64,
}

/// Opens the page's `EventSource`s: each records what it sees in `window.e2eSources`; the
/// value is the protocol the page itself was loaded over.
const OPEN_SOURCES: &str = r"(() => {
  const sources = [];
  for (let i = 0; i < COUNT; i++) {
    const s = { opens: 0, errors: 0, data: [], others: 0 };
    const es = new EventSource('/events');
    es.addEventListener('TYPE', (e) => { s.data.push(e.data); });
    es.onmessage = () => { s.others += 1; };
    es.onopen = () => { s.opens += 1; };
    es.onerror = () => { s.errors += 1; };
    sources.push(s);
  }
  window.e2eSources = sources;
  return performance.getEntriesByType('navigation')[0].nextHopProtocol;
})()";

async fn browser(
    tools: &Tools,
    settings: &Settings,
    demo: &mut Demo,
    framework: &str,
    mode: Mode,
) -> Result<String, String> {
    let label = match mode {
        Mode::Http2 => format!("h2-{framework}"),
        Mode::Http11 => format!("h2-contrast-{framework}"),
    };
    let mut browser = Browser::launch(tools, &label, mode).await?;
    let url = format!("https://{}/plain", demo.addr);
    browser.open(&url).await?;
    let script = OPEN_SOURCES
        .replace("COUNT", &SOURCES.to_string())
        .replace("TYPE", EVENT_TYPE);
    let page_protocol = browser.evaluate(&script).await?;
    let page_protocol = page_protocol.as_str().unwrap_or("?").to_owned();

    // All open over HTTP/2; over HTTP/1.1, as many as the browser allows, then a pause to
    // show that no more open.
    let wanted = match mode {
        Mode::Http2 => SOURCES,
        Mode::Http11 => 6.min(SOURCES),
    };
    let deadline = Instant::now() + BROWSER_WAIT;
    loop {
        demo.check_alive()?;
        let opened = browser
            .sources()
            .await?
            .iter()
            .filter(|s| s.opens > 0)
            .count();
        if opened >= wanted {
            break;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{opened} of {SOURCES} EventSources open after {BROWSER_WAIT:?} (page over {page_protocol})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if mode == Mode::Http11 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let opened: Vec<bool> = browser
        .sources()
        .await?
        .iter()
        .map(|s| s.opens > 0)
        .collect();
    let open_count = opened.iter().filter(|o| **o).count();

    let mut client = H2Client::connect(demo).await?;
    let mut published = Vec::with_capacity(settings.events);
    for n in 1..=settings.events {
        let data = format!("{EVENT_TYPE}-{n}");
        client.publish(EVENT_TYPE, &data).await?;
        published.push(data);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + BROWSER_WAIT;
    loop {
        let sources = browser.sources().await?;
        let done = sources
            .iter()
            .zip(&opened)
            .filter(|(_, open)| **open)
            .all(|(s, _)| s.data.len() >= published.len());
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Late duplicates, or a late stream, would show up in this pause.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sources = browser.sources().await?;
    let responses = browser.event_source_responses();

    let mut failures = Vec::new();
    let protocol = match mode {
        Mode::Http2 => "h2",
        Mode::Http11 => "http/1.1",
    };
    if page_protocol != protocol {
        failures.push(format!(
            "the page came over {page_protocol:?}, not {protocol}"
        ));
    }
    for (i, (source, open)) in sources.iter().zip(&opened).enumerate() {
        let n = i + 1;
        if *open {
            if source.data != published {
                failures.push(format!("EventSource {n} got {:?}", source.data));
            }
            if source.opens != 1 || source.errors != 0 {
                failures.push(format!(
                    "EventSource {n}: {} opens, {} errors",
                    source.opens, source.errors
                ));
            }
        } else if !source.data.is_empty() || source.opens > 0 {
            failures.push(format!(
                "EventSource {n} was waiting yet got {} events",
                source.data.len()
            ));
        }
        if source.others > 0 {
            failures.push(format!(
                "EventSource {n} got {} unnamed events",
                source.others
            ));
        }
    }
    let connections: BTreeSet<&str> = responses.iter().map(|r| r.connection.as_str()).collect();
    let wrong: Vec<String> = responses
        .iter()
        .filter(|r| r.protocol != protocol || r.status != 200)
        .map(|r| format!("{} {}", r.status, r.protocol))
        .collect();
    if !wrong.is_empty() {
        failures.push(format!(
            "EventSource responses not 200 over {protocol}: {wrong:?}"
        ));
    }
    if responses.len() != open_count {
        failures.push(format!(
            "{} EventSource responses for {open_count} open streams",
            responses.len()
        ));
    }
    let figures = match mode {
        Mode::Http2 => {
            if open_count != SOURCES {
                failures.push(format!("{open_count} of {SOURCES} EventSources open"));
            }
            if connections.len() != 1 {
                failures.push(format!(
                    "{} connections for {SOURCES} streams over HTTP/2",
                    connections.len()
                ));
            }
            format!(
                "{open_count}/{SOURCES} EventSources open on {} TLS connection(s) over {page_protocol}; \
                 each got {}/{} events exactly once, in order",
                connections.len(),
                sources.iter().map(|s| s.data.len()).min().unwrap_or(0),
                published.len()
            )
        }
        Mode::Http11 => {
            if open_count >= SOURCES {
                failures.push(format!(
                    "all {SOURCES} EventSources opened over HTTP/1.1: the contrast shows nothing"
                ));
            }
            if connections.len() != open_count {
                failures.push(format!(
                    "{} connections for {open_count} streams over HTTP/1.1",
                    connections.len()
                ));
            }
            format!(
                "over {page_protocol} only {open_count}/{SOURCES} EventSources open, one TLS \
                 connection each (the browser's per-host limit), and get their {} events; the \
                 other {} wait with nothing",
                published.len(),
                SOURCES - open_count
            )
        }
    };
    if failures.is_empty() {
        Ok(figures)
    } else {
        Err(format!("{}; {figures}", failures.join("; ")))
    }
}

/// Headless Chromium with one page, killed (with its helpers) on drop.
#[derive(Debug)]
struct Browser {
    cdp: Cdp,
    session: String,
    log: PathBuf,
    // Dropped after the connection: the process, then its profile.
    chromium: ChildGuard,
    _profile: TempDir,
}

/// What Chromium reported of one `EventSource` response.
#[derive(Debug)]
struct SourceResponse {
    protocol: String,
    connection: String,
    status: u64,
}

impl Browser {
    async fn launch(tools: &Tools, label: &str, mode: Mode) -> Result<Self, String> {
        let profile = TempDir::new(&tools.work_dir.join("tmp"), &format!("chromium-{label}"))?;
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
                "--ignore-certificate-errors",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()));
        if mode == Mode::Http11 {
            command.arg("--disable-http2");
        }
        command.arg("about:blank");
        let log = tools.log_path(&format!("chromium-{label}"));
        let mut chromium = ChildGuard::spawn("chromium", command, &log, true)?;
        let cdp = match Cdp::connect_to_profile(profile.path(), Duration::from_secs(30)).await {
            Ok(cdp) => cdp,
            Err(e) => {
                let exited = chromium
                    .exited()
                    .map(|status| format!(" (chromium exited: {status})"))
                    .unwrap_or_default();
                return Err(format!("{e}{exited}; see {}", log.display()));
            }
        };
        let mut browser = Self {
            cdp,
            session: String::new(),
            log,
            chromium,
            _profile: profile,
        };
        browser.session = browser.cdp.new_page().await?;
        browser
            .cdp
            .call(Some(&browser.session), "Network.enable", json!({}))
            .await?;
        Ok(browser)
    }

    /// Navigates to `url` and waits until the page has loaded.
    async fn open(&mut self, url: &str) -> Result<(), String> {
        let navigated = self
            .cdp
            .call(Some(&self.session), "Page.navigate", json!({ "url": url }))
            .await?;
        if let Some(error) = navigated["errorText"].as_str().filter(|e| !e.is_empty()) {
            return Err(format!("{url}: {error}"));
        }
        let deadline = Instant::now() + BROWSER_WAIT;
        loop {
            let state = self
                .evaluate("location.href + ' ' + document.readyState")
                .await?;
            if state.as_str() == Some(&format!("{url} complete")) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("{url} not loaded after {BROWSER_WAIT:?}: {state}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn evaluate(&mut self, expression: &str) -> Result<serde_json::Value, String> {
        if let Some(status) = self.chromium.exited() {
            return Err(format!(
                "chromium exited ({status}); see {}",
                self.log.display()
            ));
        }
        self.cdp.evaluate(&self.session, expression).await
    }

    /// What each of the page's `EventSource`s has seen so far.
    async fn sources(&mut self) -> Result<Vec<Source>, String> {
        let value = self.evaluate("window.e2eSources").await?;
        let list = value.as_array().ok_or("window.e2eSources is not a list")?;
        Ok(list
            .iter()
            .map(|s| Source {
                opens: s["opens"].as_u64().unwrap_or(0),
                errors: s["errors"].as_u64().unwrap_or(0),
                data: s["data"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .map(|v| v.as_str().unwrap_or("?").to_owned())
                            .collect()
                    })
                    .unwrap_or_default(),
                others: s["others"].as_u64().unwrap_or(0),
            })
            .collect())
    }

    /// The responses to the page's `EventSource` requests, as the network stack saw them.
    fn event_source_responses(&self) -> Vec<SourceResponse> {
        self.cdp
            .events(&self.session, "Network.responseReceived")
            .into_iter()
            .filter(|e| e["params"]["type"] == "EventSource")
            .map(|e| {
                let response = &e["params"]["response"];
                SourceResponse {
                    protocol: response["protocol"].as_str().unwrap_or("?").to_owned(),
                    connection: response["connectionId"].to_string(),
                    status: response["status"].as_u64().unwrap_or(0),
                }
            })
            .collect()
    }
}
