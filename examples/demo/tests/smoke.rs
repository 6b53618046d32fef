//! Smoke test: starts the demo binary on a free port for each framework and checks
//! `/events`, `/publish`, `/plain` and a graceful exit on SIGTERM; then two demo servers
//! (different frameworks) sharing one real `redis-server` with `--log redis://...`.

use std::{process::Stdio, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};
use tower_sse_conformance::{RedisServer, request, send};

const NETWORK: Duration = Duration::from_secs(10);

async fn start(framework: &str) -> (Child, String) {
    start_with(framework, &[]).await
}

async fn start_with(framework: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0", "--framework", framework])
        .args(extra)
        .args([
            "--heartbeat-ms",
            "300",
            "--retry-ms",
            "1000",
            "--tick-ms",
            "0",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    timeout(NETWORK, stdout.read_line(&mut line))
        .await
        .expect("the address in time")
        .unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .to_owned();
    assert!(!addr.ends_with(":0"), "{addr}");
    (child, addr)
}

async fn text(response: Response<Incoming>) -> String {
    let body = timeout(NETWORK, response.into_body().collect())
        .await
        .unwrap();
    String::from_utf8(body.unwrap().to_bytes().to_vec()).unwrap()
}

async fn next_chunk(body: &mut Incoming) -> String {
    let frame = timeout(NETWORK, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    String::from_utf8(frame.into_data().unwrap().to_vec()).unwrap()
}

async fn check(framework: &str) {
    let (mut child, addr) = start(framework).await;

    let events = send(&addr, request("GET", "/events", b"")).await;
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    assert_eq!(events.headers()["cache-control"], "no-cache");
    let mut events = events.into_body();
    assert_eq!(next_chunk(&mut events).await, "retry: 1000\n\n");

    let published = send(&addr, request("POST", "/publish?event=note", b"two\nlines")).await;
    assert_eq!(published.status(), 200);
    let json = text(published).await;
    let id = json
        .strip_prefix(r#"{"id":""#)
        .and_then(|rest| rest.strip_suffix(r#""}"#))
        .unwrap_or_else(|| panic!("{json}"))
        .to_owned();
    let mut received = String::new();
    while !received.contains("\n\n") || received.trim_start_matches(":\n\n").is_empty() {
        received.push_str(&next_chunk(&mut events).await);
    }
    assert_eq!(
        received.trim_start_matches(":\n\n"),
        format!("id: {id}\nevent: note\ndata: two\ndata: lines\n\n")
    );

    for bad in [
        request("POST", "/publish?event=a%0Ab", b"x"),
        request("POST", "/publish", b"\xff\xfe"),
    ] {
        let response = send(&addr, bad).await;
        assert_eq!(response.status(), 400);
        assert!(!text(response).await.is_empty());
    }

    let plain = send(&addr, request("GET", "/plain", b"")).await;
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(!plain.headers().contains_key("cache-control"));
    assert!(text(plain).await.starts_with("plain text"));

    let page = send(&addr, request("GET", "/", b"")).await;
    assert!(text(page).await.contains("EventSource"));

    // SIGTERM: the open stream ends after the final event and the process exits cleanly.
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    while let Some(frame) = timeout(NETWORK, events.frame()).await.unwrap() {
        rest.push_str(std::str::from_utf8(&frame.unwrap().into_data().unwrap()).unwrap());
    }
    assert!(
        rest.ends_with("event: shutdown\ndata: the server is shutting down; reconnect shortly\n\n"),
        "{rest:?}"
    );
    let status = timeout(NETWORK, child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn axum() {
    check("axum").await;
}

#[tokio::test]
async fn warp() {
    check("warp").await;
}

#[tokio::test]
async fn poem() {
    check("poem").await;
}

/// Reads SSE chunks until `count` events (ignoring comments and the retry hint) have arrived;
/// returns (id, data) of each.
async fn read_events(body: &mut Incoming, count: usize) -> Vec<(String, String)> {
    let mut decoder = tower_sse_core::Decoder::new();
    let mut events = Vec::new();
    while events.len() < count {
        decoder.feed(next_chunk(body).await.as_bytes());
        while let Some(item) = decoder.decode().unwrap() {
            if let tower_sse_core::Decoded::Event(e) = item {
                events.push((e.last_event_id().into(), e.data().into()));
            }
        }
    }
    events
}

#[tokio::test]
async fn two_servers_share_one_redis() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let log = ["--log", redis_url.as_str()];
    let (_a, a) = start_with("axum", &log).await;
    let (_b, b) = start_with("poem", &log).await;

    // A client on B sees what is published on A.
    let mut on_b = send(&b, request("GET", "/events", b"")).await.into_body();
    assert_eq!(next_chunk(&mut on_b).await, "retry: 1000\n\n");
    for body in [&b"one"[..], b"two"] {
        let response = send(&a, request("POST", "/publish", body)).await;
        assert_eq!(response.status(), 200);
    }
    let seen = read_events(&mut on_b, 2).await;
    assert_eq!(
        seen.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    drop(on_b);

    // The client loses its connection, events go on being published on A, and it comes back
    // on B with its last id: exactly what it missed, then live.
    for body in [&b"three"[..], b"four"] {
        assert_eq!(
            send(&a, request("POST", "/publish", body)).await.status(),
            200
        );
    }
    let resume = Request::builder()
        .uri("/events")
        .header("host", "localhost")
        .header("last-event-id", seen[1].0.as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut back = send(&b, resume).await.into_body();
    let missed = read_events(&mut back, 2).await;
    assert_eq!(
        missed.iter().map(|(_, d)| d.as_str()).collect::<Vec<_>>(),
        ["three", "four"]
    );
    assert_eq!(
        send(&b, request("POST", "/publish", b"five"))
            .await
            .status(),
        200
    );
    assert_eq!(read_events(&mut back, 1).await[0].1, "five");
}

#[tokio::test]
async fn unreachable_redis_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let output = timeout(
        NETWORK,
        Command::new(env!("CARGO_BIN_EXE_example-demo"))
            .args(["--addr", "127.0.0.1:0", "--log", &url])
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&url), "{stderr}");
}

/// `--ring-capacity` is bounded (a ring is allocated whole per topic, and clients name
/// topics): 0 and more than 2^20 are refused with the flag named; a small ring still serves.
#[tokio::test]
async fn ring_capacity_is_bounded() {
    for bad in ["0", "1048577", "many"] {
        let output = timeout(
            NETWORK,
            Command::new(env!("CARGO_BIN_EXE_example-demo"))
                .args(["--addr", "127.0.0.1:0", "--ring-capacity", bad])
                .output(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(output.status.code(), Some(2), "--ring-capacity {bad}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--ring-capacity takes a count from 1 to 1048576"),
            "{stderr}"
        );
    }
    let (mut child, addr) = start_with("axum", &["--ring-capacity", "2"]).await;
    let mut events = send(&addr, request("GET", "/events", b""))
        .await
        .into_body();
    for i in 0..5 {
        let body: &'static [u8] = format!("ring {i}").into_bytes().leak();
        let published = send(&addr, request("POST", "/publish", body)).await;
        assert_eq!(published.status(), 200);
    }
    let events = read_events(&mut events, 5).await;
    let data: Vec<&str> = events.iter().map(|(_, data)| data.as_str()).collect();
    assert_eq!(data, ["ring 0", "ring 1", "ring 2", "ring 3", "ring 4"]);
    child.kill().await.unwrap();
}
