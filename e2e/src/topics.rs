//! The `topics` scenario: several topics on one stream, resumed with one cursor.
//!
//! 1. **browser**: headless Chromium holds one `EventSource` on three topics (one of them
//!    `private/`, its token in the query) behind the cutting proxy, which cuts the stream in
//!    the middle of an event twice while all three are published to; every topic's events must
//!    arrive exactly once, in order, labelled with their topic, and each reconnect must send
//!    the last complete event's id (the composite cursor). Then the page asks for the private
//!    topic without the token: the demo refuses it (403), so that source closes without ever
//!    opening or receiving an event.
//! 2. **redis**: two demo servers on one `redis-server` (two frameworks, `--log redis://`)
//!    serve one client of three topics: it reads part of the stream from server A, is cut,
//!    and resumes on server B with its last id while both servers publish; every topic must
//!    continue with no gap and no duplicate.

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use http_body_util::BodyExt;
use tokio::process::Command;
use tower_sse_core::{Decoded, Decoder};

use crate::{
    Outcome, Settings, Tools,
    client::{self, Publisher},
    cut_proxy::CutProxy,
    process::{ChildGuard, Demo, TempDir, free_port, wait_listening},
};

/// The token `private/` topics need on the demos of this scenario.
const TOKEN: &str = "e2e-token";
/// The topics of the stream, as published (`private/ops` is URL-encoded in queries).
const TOPICS: [&str; 3] = ["chat", "alerts", "private/ops"];
const EVENTS_QUERY: &str = "topic=chat&topic=alerts&topic=private%2Fops";
const EVENT_TYPE: &str = "e2e";

/// Runs the scenario: the browser run per framework, then the two servers on Redis.
pub(crate) async fn topics(tools: &Tools, settings: &Settings) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    for framework in &settings.frameworks {
        let t = std::time::Instant::now();
        let result = browser(tools, settings, framework).await;
        outcomes.push(Outcome::report(
            &format!("topics: browser, three topics, cut twice ({framework})"),
            result,
            t.elapsed(),
        ));
    }
    let t = std::time::Instant::now();
    let result = two_servers_on_redis(tools, settings).await;
    outcomes.push(Outcome::report(
        "topics: two servers on one redis-server, one client",
        result,
        t.elapsed(),
    ));
    outcomes
}

fn publish_query(topic: &str) -> String {
    let topic = topic.replace('/', "%2F");
    format!("topic={topic}&event={EVENT_TYPE}&access_token={TOKEN}")
}

/// Per topic, the data of the events labelled with it, in order; and the events whose label
/// does not match their data (`<topic>:<n>`).
fn by_topic<'a>(
    events: impl Iterator<Item = (&'a str, &'a str)>,
) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut topics: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut mislabelled = Vec::new();
    for (label, data) in events {
        if !data.starts_with(&format!("{label}:")) {
            mislabelled.push(format!("{data} labelled {label:?}"));
        }
        topics
            .entry(label.to_owned())
            .or_default()
            .push(data.to_owned());
    }
    (topics, mislabelled)
}

/// Every way `got` differs from `rounds` events per topic, exactly once and in order.
fn missing_or_extra(got: &BTreeMap<String, Vec<String>>, rounds: usize) -> Vec<String> {
    let mut failures = Vec::new();
    for topic in TOPICS {
        let expected: Vec<String> = (1..=rounds).map(|n| format!("{topic}:{n}")).collect();
        let seen = got.get(topic).cloned().unwrap_or_default();
        if seen != expected {
            failures.push(format!("{topic}: got {seen:?}"));
        }
    }
    if let Some(other) = got.keys().find(|k| !TOPICS.contains(&k.as_str())) {
        failures.push(format!("events of an unexpected topic {other:?}"));
    }
    failures
}

async fn browser(tools: &Tools, settings: &Settings, framework: &str) -> Result<String, String> {
    let retry = settings.retry.as_millis().to_string();
    let mut demo = Demo::start(
        &tools.demo,
        &[
            "--framework",
            framework,
            "--tick-ms",
            "0",
            "--retry-ms",
            &retry,
            "--auth-token",
            TOKEN,
        ],
        &tools.log_path(&format!("demo-topics-{framework}")),
    )
    .await?;
    let rounds = settings.events;
    let expected = rounds * TOPICS.len();
    let page = include_str!("topics_page.html")
        .replace("__EXPECTED__", &expected.to_string())
        .replace("__TOKEN__", TOKEN);
    let proxy = CutProxy::start(demo.addr, page, settings.cuts.clone()).await?;
    let profile = TempDir::new(
        &tools.work_dir.join("tmp"),
        &format!("chromium-topics-{framework}"),
    )?;
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
        .arg(format!("http://{}/e2e.html", proxy.addr()));
    let log = tools.log_path(&format!("chromium-topics-{framework}"));
    let mut chromium = ChildGuard::spawn("chromium", command, &log, true)?;
    let demo_addr = demo.addr;
    let mut alive = || -> Result<(), String> {
        if let Some(status) = chromium.exited() {
            return Err(format!("chromium exited ({status}); see {}", log.display()));
        }
        demo.check_alive()
    };
    let report = || proxy.log().report;
    let opened = wait(Duration::from_secs(30), &mut alive, || {
        report().is_some_and(|r| r["opens"].as_u64().unwrap_or(0) >= 1)
    })
    .await?;
    if !opened {
        return Err("the page did not open its stream within 30 s".to_owned());
    }

    let mut publisher = Publisher::new(demo_addr);
    for n in 1..=rounds {
        for topic in TOPICS {
            publisher
                .publish_query(&publish_query(topic), &format!("{topic}:{n}"))
                .await?;
        }
        tokio::time::sleep(settings.publish_interval).await;
    }
    let done = wait(Duration::from_secs(20), &mut alive, || {
        report().is_some_and(|r| {
            r["data"].as_array().map_or(0, Vec::len) >= expected
                && r["denied"]["readyState"].as_i64() == Some(2)
        })
    })
    .await?;
    // Late duplicates and a late opening of the denied source would show in this pause.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = report().unwrap_or_default();
    let log = proxy.log();
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
    let (data, ids, labels) = (strings("data"), strings("ids"), strings("topics"));
    let mut failures = Vec::new();
    if !done {
        failures.push(format!(
            "within 20 s: {} of {expected} events, denied source {}",
            data.len(),
            report["denied"]
        ));
    }
    let (got, mislabelled) = by_topic(
        labels
            .iter()
            .map(String::as_str)
            .zip(data.iter().map(String::as_str)),
    );
    failures.extend(missing_or_extra(&got, rounds));
    failures.extend(mislabelled);
    let others = strings("others");
    if !others.is_empty() {
        failures.push(format!("events of other types: {others:?}"));
    }
    let denied = &report["denied"];
    if denied["opens"].as_u64() != Some(0) || denied["events"].as_u64() != Some(0) {
        failures.push(format!("the denied source: {denied}"));
    }
    for error in &log.errors {
        failures.push(format!("proxy: {error}"));
    }
    let cuts = settings.cuts.len();
    if log.cuts.len() != cuts {
        failures.push(format!("{} cuts made, {cuts} planned", log.cuts.len()));
    }
    // The three-topic stream's requests, then the denied one.
    if log.streams.len() != cuts + 2 {
        failures.push(format!(
            "{} requests to /events, {} expected",
            log.streams.len(),
            cuts + 2
        ));
    }
    if let Some(first) = log.streams.first().and_then(|s| s.last_event_id.as_ref()) {
        failures.push(format!("the first request sent Last-Event-ID {first:?}"));
    }
    for (i, cut) in log.cuts.iter().enumerate() {
        if !cut.partial.starts_with("id: ") {
            failures.push(format!("cut {}: not mid-event: {:?}", i + 1, cut.partial));
        }
        let sent = log.streams.get(i + 1).and_then(|s| s.last_event_id.clone());
        if sent.as_deref() != Some(cut.last_event_id.as_str()) {
            failures.push(format!(
                "reconnect {} sent Last-Event-ID {sent:?}, expected {:?}",
                i + 1,
                cut.last_event_id
            ));
        }
        if !ids.contains(&cut.last_event_id) {
            failures.push(format!("cut {}: its last id was never delivered", i + 1));
        }
    }
    let longest = ids.iter().map(String::len).max().unwrap_or(0);
    let figures = format!(
        "{}/{expected} events of 3 topics exactly once in order per topic, each labelled with \
         its topic; {} cuts mid-event, each resumed with the composite Last-Event-ID (longest \
         id {longest} bytes); private topic without the token: {} opens, {} events, closed",
        data.len(),
        log.cuts.len(),
        denied["opens"],
        denied["events"],
    );
    if failures.is_empty() {
        Ok(figures)
    } else {
        Err(format!("{}; {figures}", failures.join("; ")))
    }
}

/// Polls `ready` every 50 ms until it holds or `within` has passed, failing at once when
/// `alive` does.
async fn wait(
    within: Duration,
    alive: &mut impl FnMut() -> Result<(), String>,
    mut ready: impl FnMut() -> bool,
) -> Result<bool, String> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        alive()?;
        if ready() {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(ready())
}

async fn two_servers_on_redis(tools: &Tools, settings: &Settings) -> Result<String, String> {
    let port = free_port()?;
    let mut command = Command::new("redis-server");
    command.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    let _redis = ChildGuard::spawn(
        "redis-server",
        command,
        &tools.log_path("redis-topics"),
        false,
    )?;
    let redis_addr = SocketAddr::from(([127, 0, 0, 1], port));
    wait_listening(redis_addr, Duration::from_secs(10)).await?;
    let url = format!("redis://127.0.0.1:{port}");
    let (first, second) = match settings.frameworks.as_slice() {
        [one] => (one.as_str(), one.as_str()),
        [one, two, ..] => (one.as_str(), two.as_str()),
        [] => ("axum", "warp"),
    };
    let mut demos = Vec::new();
    for (framework, label) in [(first, "a"), (second, "b")] {
        let args = [
            "--framework",
            framework,
            "--tick-ms",
            "0",
            "--log",
            &url,
            "--auth-token",
            TOKEN,
        ];
        let log = tools.log_path(&format!("demo-topics-redis-{label}"));
        demos.push(Demo::start(&tools.demo, &args, &log).await?);
    }
    let (a, b) = (&demos[0], &demos[1]);
    let mut publishers = [Publisher::new(a.addr), Publisher::new(b.addr)];
    let path = format!("/events?{EVENTS_QUERY}&access_token={TOKEN}");

    let mut stream = Stream::open(a.addr, &path, None).await?;
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut round = 0;
    publish_rounds(&mut publishers, 4, &mut round).await?;
    while seen.len() < 7 {
        seen.push(stream.next().await?);
    }
    // The cut, mid-stream: published to on both servers while the client is away.
    drop(stream);
    publish_rounds(&mut publishers, 4, &mut round).await?;
    let last = seen.last().map(|(_, id)| id.clone()).unwrap_or_default();
    let mut stream = Stream::open(b.addr, &path, Some(&last)).await?;
    publish_rounds(&mut publishers, 2, &mut round).await?;
    let total = round * TOPICS.len();
    while seen.len() < total {
        seen.push(stream.next().await?);
    }
    if let Ok(Ok(extra)) = tokio::time::timeout(Duration::from_millis(500), stream.next()).await {
        return Err(format!("an event after the last one: {extra:?}"));
    }
    let labelled: Vec<(String, String)> = seen
        .iter()
        .map(|(data, id)| (id.split(' ').next().unwrap_or("").to_owned(), data.clone()))
        .collect();
    let (got, mislabelled) = by_topic(labelled.iter().map(|(l, d)| (l.as_str(), d.as_str())));
    let mut failures = missing_or_extra(&got, round);
    failures.extend(mislabelled);
    if failures.is_empty() {
        Ok(format!(
            "{total} events of 3 topics published on {first} and {second} alternately; the \
             client read 7 on {first}, was cut, and resumed on {second} with its last id: every \
             topic exactly once, in order"
        ))
    } else {
        Err(failures.join("; "))
    }
}

/// Publishes `count` rounds (one event per topic each, `<topic>:<round>`), alternating the
/// two servers.
async fn publish_rounds(
    publishers: &mut [Publisher; 2],
    count: usize,
    round: &mut usize,
) -> Result<(), String> {
    for _ in 0..count {
        *round += 1;
        for (i, topic) in TOPICS.iter().enumerate() {
            publishers[(*round + i) % 2]
                .publish_query(&publish_query(topic), &format!("{topic}:{round}"))
                .await?;
        }
    }
    Ok(())
}

/// An open event stream, decoded: `(data, id)` of each `e2e` event.
struct Stream {
    open: client::OpenResponse,
    decoder: Decoder,
}

impl Stream {
    async fn open(addr: SocketAddr, path: &str, last: Option<&str>) -> Result<Self, String> {
        let headers: Vec<(&str, &str)> = last.map(|id| ("last-event-id", id)).into_iter().collect();
        let open = client::get(addr, path, &headers).await?;
        let status = open.response.status();
        if status != 200 {
            return Err(format!("GET {path} on {addr}: {status}"));
        }
        Ok(Self {
            open,
            decoder: Decoder::new(),
        })
    }

    async fn next(&mut self) -> Result<(String, String), String> {
        loop {
            match self.decoder.decode().map_err(|e| e.to_string())? {
                Some(Decoded::Event(e)) if e.event_type() == EVENT_TYPE => {
                    return Ok((e.data().into(), e.last_event_id().into()));
                }
                Some(Decoded::Event(e)) => {
                    return Err(format!(
                        "an event of type {:?}: {}",
                        e.event_type(),
                        e.data()
                    ));
                }
                Some(_) => continue,
                None => {}
            }
            let frame = tokio::time::timeout(
                Duration::from_secs(10),
                self.open.response.body_mut().frame(),
            )
            .await
            .map_err(|_| "no event within 10 s".to_owned())?
            .ok_or("the stream ended")?
            .map_err(|e| e.to_string())?;
            if let Ok(data) = frame.into_data() {
                self.decoder.feed(&data);
            }
        }
    }
}
