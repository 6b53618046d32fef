//! Scenario `generations`: resumable generations (examples/llm-tokens) read by real clients.
//!
//! 1. **Chromium**: a page asks, streams the answer with `EventSource` and never closes it;
//!    after `done` the browser reconnects with `Last-Event-ID`, gets `204 No Content`, and
//!    must stop (readyState CLOSED, no further request), having seen every token once.
//! 2. **Node `eventsource`**: the same, from Node.
//! 3. **OpenAI's `openai` package**: `responses.create({stream: true})` against the example's
//!    Responses-shaped route, parsed by the package's own stream parser, cut after a few
//!    events, then `responses.retrieve(id, {stream: true, starting_after: N})`: together
//!    every event once, numbered 0, 1, 2, … with no hole, the deltas adding up to the text.
//!
//! The example binary is `example-llm-tokens` beside the demo binary (both built in release by
//! `cargo xtask e2e`).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::{
    Outcome, Tools,
    cut_proxy::CutProxy,
    process::{ChildGuard, Demo, TempDir},
};

/// The page the browser opens, served by the proxy.
const PAGE: &str = include_str!("generations.html");
/// The fake model's delay per token.
const TOKEN_MS: &str = "20";

fn binary(tools: &Tools) -> PathBuf {
    tools.demo.with_file_name("example-llm-tokens")
}

async fn start(tools: &Tools, label: &str) -> Result<Demo, String> {
    let bin = binary(tools);
    if !bin.exists() {
        return Err(format!("{} not found", bin.display()));
    }
    Demo::start(
        &bin,
        &["--token-ms", TOKEN_MS],
        &tools.log_path(&format!("llm-tokens-{label}")),
    )
    .await
}

/// Runs the three checks.
pub(crate) async fn generations(tools: &Tools) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    let t = Instant::now();
    outcomes.push(Outcome::report(
        "generations: chromium stops after done (204)",
        browser(tools).await,
        t.elapsed(),
    ));
    let t = Instant::now();
    outcomes.push(Outcome::report(
        "generations: node eventsource stops after done (204)",
        node_eventsource(tools).await,
        t.elapsed(),
    ));
    let t = Instant::now();
    outcomes.push(Outcome::report(
        "generations: openai package parses, cut and resumed by starting_after",
        openai(tools).await,
        t.elapsed(),
    ));
    outcomes
}

/// Checks tokens numbered 0.. without a hole or a repeat, one `done` after them, and an
/// EventSource that ended CLOSED.
fn check_stream(
    sequence: &[u64],
    terminal: &[(String, Value)],
    ready_states: &[i64],
) -> Result<String, String> {
    let mut failures = Vec::new();
    let expected: Vec<u64> = (0..sequence.len() as u64).collect();
    if sequence.is_empty() || sequence != expected {
        failures.push(format!("token sequence numbers {sequence:?}"));
    }
    match terminal {
        [(kind, data)] if kind == "done" => {
            if data["sequence_number"].as_u64() != Some(sequence.len() as u64) {
                failures.push(format!("done carries {data}"));
            }
        }
        other => failures.push(format!("terminal events {other:?}")),
    }
    if ready_states.last() != Some(&2) {
        failures.push(format!(
            "EventSource not CLOSED after done; readyState on each error: {ready_states:?}"
        ));
    }
    if failures.is_empty() {
        Ok(format!(
            "{} tokens then done, once each; readyState on errors {ready_states:?}",
            sequence.len()
        ))
    } else {
        Err(failures.join("; "))
    }
}

async fn browser(tools: &Tools) -> Result<String, String> {
    let mut server = start(tools, "browser").await?;
    let proxy = CutProxy::start(server.addr, PAGE.to_owned(), Vec::new()).await?;
    let profile = TempDir::new(&tools.work_dir.join("tmp"), "chromium-generations")?;
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
    let log = tools.log_path("chromium-generations");
    let mut chromium = ChildGuard::spawn("chromium", command, &log, true)?;
    let deadline = Instant::now() + Duration::from_secs(40);
    let closed = |report: &Value| {
        report["readyStates"]
            .as_array()
            .and_then(|s| s.last())
            .and_then(Value::as_i64)
            == Some(2)
    };
    loop {
        if let Some(status) = chromium.exited() {
            return Err(format!("chromium exited ({status}); see {}", log.display()));
        }
        server.check_alive()?;
        if proxy.log().report.as_ref().is_some_and(closed) {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no CLOSED EventSource within 40 s; last report {:?}",
                proxy.log().report
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A browser that did not stop would reconnect within its retry (1 s) and open again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let report = proxy.log().report.unwrap_or_default();
    let numbers = |key: &str| -> Vec<i64> {
        report[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let sequence: Vec<u64> = numbers("sequence").into_iter().map(|n| n as u64).collect();
    let terminal: Vec<(String, Value)> = report["terminal"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let data = t["data"].as_str().unwrap_or("null");
                    (
                        t["kind"].as_str().unwrap_or("?").to_owned(),
                        serde_json::from_str(data).unwrap_or(Value::Null),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let figures = check_stream(&sequence, &terminal, &numbers("readyStates"))?;
    let opens = report["opens"].as_i64().unwrap_or(0);
    if opens != 1 {
        return Err(format!(
            "{opens} opens: the EventSource went on after the 204"
        ));
    }
    if report["others"].as_array().is_some_and(|o| !o.is_empty()) {
        return Err(format!("unexpected message events {}", report["others"]));
    }
    Ok(figures)
}

/// Runs `node generations.mjs MODULES ARGS…` to its end (at most 40 s) and returns its JSON
/// lines.
async fn node(tools: &Tools, label: &str, args: &[String]) -> Result<Vec<Value>, String> {
    let script = tools.node_client.with_file_name("generations.mjs");
    let log = tools.log_path(&format!("node-{label}"));
    let stderr = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut command = Command::new("node");
    command
        .arg(&script)
        .arg(&tools.node_modules)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(stderr);
    let mut child = ChildGuard::start("node", command, false)?;
    let stdout = child
        .child_mut()
        .stdout
        .take()
        .ok_or("node stdout not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let mut out = Vec::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            let json = serde_json::from_str(&line)
                .map_err(|_| format!("node printed {line:?}, not JSON"))?;
            out.push(json);
        }
        Ok::<(), String>(())
    };
    tokio::time::timeout(Duration::from_secs(40), read)
        .await
        .map_err(|_| format!("node did not finish within 40 s; see {}", log.display()))??;
    let status = tokio::time::timeout(Duration::from_secs(5), child.child_mut().wait())
        .await
        .map_err(|_| "node did not exit".to_owned())?
        .map_err(|e| e.to_string())?;
    if !status.success() {
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!("node exited {status}: {}", said.trim()));
    }
    Ok(out)
}

async fn node_eventsource(tools: &Tools) -> Result<String, String> {
    let server = start(tools, "node").await?;
    let id = ask(server.addr).await?;
    let url = format!("http://{}/answers/{id}", server.addr);
    let lines = node(tools, "eventsource", &["eventsource".to_owned(), url]).await?;
    let mut sequence = Vec::new();
    let mut terminal = Vec::new();
    let mut ready_states = Vec::new();
    for line in &lines {
        match line["kind"].as_str() {
            Some("event") => {
                let data: Value =
                    serde_json::from_str(line["data"].as_str().unwrap_or("")).unwrap_or_default();
                match line["type"].as_str() {
                    Some("token") => {
                        sequence.push(data["sequence_number"].as_u64().unwrap_or(u64::MAX))
                    }
                    Some(kind) => terminal.push((kind.to_owned(), data)),
                    None => return Err(format!("event without type {line}")),
                }
            }
            Some("error") => ready_states.push(line["readyState"].as_i64().unwrap_or(-1)),
            _ => return Err(format!("unexpected line {line}")),
        }
    }
    check_stream(&sequence, &terminal, &ready_states)
}

async fn openai(tools: &Tools) -> Result<String, String> {
    let server = start(tools, "openai").await?;
    let base = format!("http://{}", server.addr);
    let cut = 5;
    let lines = node(
        tools,
        "openai",
        &["openai".to_owned(), base, cut.to_string()],
    )
    .await?;
    let items: Vec<(&str, &Value)> = lines
        .iter()
        .map(|l| (l["phase"].as_str().unwrap_or("?"), &l["item"]))
        .collect();
    let created = items.iter().filter(|(p, _)| *p == "create").count();
    if created != cut {
        return Err(format!("{created} events before the cut, not {cut}"));
    }
    let numbers: Vec<u64> = items
        .iter()
        .map(|(_, item)| item["sequence_number"].as_u64().unwrap_or(u64::MAX))
        .collect();
    let expected: Vec<u64> = (0..numbers.len() as u64).collect();
    if numbers != expected {
        return Err(format!("sequence numbers across the cut {numbers:?}"));
    }
    let kinds: Vec<&str> = items
        .iter()
        .map(|(_, item)| item["type"].as_str().unwrap_or("-"))
        .collect();
    let n = kinds.len();
    if n < 5
        || kinds[0] != "response.created"
        || kinds[n - 3] != "response.output_text.done"
        || kinds[n - 2] != "response.completed"
        || items[n - 1].1["status"] != "done"
    {
        return Err(format!("event types {kinds:?}"));
    }
    let deltas: String = items
        .iter()
        .filter(|(_, item)| item["type"] == "response.output_text.delta")
        .map(|(_, item)| item["delta"].as_str().unwrap_or(""))
        .collect();
    let text = items[n - 3].1["text"].as_str().unwrap_or("");
    if deltas != text || !text.starts_with("You asked: \"why?\".") {
        return Err(format!("deltas {deltas:?} != text {text:?}"));
    }
    Ok(format!(
        "{n} events parsed by openai's Stream, cut after {cut}, resumed with starting_after={}",
        cut - 1
    ))
}

/// `POST /ask` → the id.
async fn ask(addr: std::net::SocketAddr) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("ask: {e}"))?;
    stream
        .write_all(
            b"POST /ask HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nConnection: close\r\n\r\nwhy?",
        )
        .await
        .map_err(|e| format!("ask: {e}"))?;
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .map_err(|_| "ask: no answer in 10 s".to_owned())?
    .map_err(|e| format!("ask: {e}"))?;
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    let json: Value =
        serde_json::from_str(body).map_err(|_| format!("ask answered {response:?}"))?;
    json["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("ask answered {body}"))
}
