//! `--publish-addr`: `POST /publish` on a listener served by a runtime of its own, over the
//! memory log and over a real `redis-server`; events published there reach the streams of
//! the main listener, with the same checks as the main `/publish`.

use std::{process::Stdio, time::Duration};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
    time::timeout,
};
use tower_sse_conformance::{RedisServer, request, send};

const NETWORK: Duration = Duration::from_secs(10);

/// A demo with `--publish-addr`: the process, its stdout (kept open) and both addresses.
struct Demo {
    _child: Child,
    _stdout: Lines<BufReader<ChildStdout>>,
    events: String,
    publish: String,
}

async fn start(extra: &[&str]) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0", "--publish-addr", "127.0.0.1:0"])
        .args(["--tick-ms", "0"])
        .args(extra)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let events = line(&mut lines, "listening on http://").await;
    let publish = line(&mut lines, "publishing on http://").await;
    assert_ne!(events, publish);
    Demo {
        _child: child,
        _stdout: lines,
        events,
        publish,
    }
}

/// The next line of the demo's stdout, without `prefix`.
async fn line(lines: &mut Lines<BufReader<ChildStdout>>, prefix: &str) -> String {
    let line = timeout(NETWORK, lines.next_line())
        .await
        .expect("the line in time")
        .unwrap()
        .expect("the demo is running");
    line.strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned()
}

/// Reads until `count` events have arrived; their data.
async fn read_events(body: &mut Incoming, count: usize) -> Vec<String> {
    let mut decoder = tower_sse_core::Decoder::new();
    let mut events = Vec::new();
    while events.len() < count {
        let frame = timeout(NETWORK, body.frame())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        decoder.feed(frame.data_ref().unwrap());
        while let Some(item) = decoder.decode().unwrap() {
            if let tower_sse_core::Decoded::Event(e) = item {
                events.push(e.data().to_owned());
            }
        }
    }
    events
}

async fn check(demo: &Demo) {
    let mut stream = send(&demo.events, request("GET", "/events", b""))
        .await
        .into_body();
    // The stream is primed before the first event: it is subscribed once a frame arrives.
    timeout(NETWORK, stream.frame()).await.unwrap();
    for body in [&b"one"[..], b"two"] {
        let response = send(&demo.publish, request("POST", "/publish", body)).await;
        assert_eq!(response.status(), 200);
        let json = response.into_body().collect().await.unwrap().to_bytes();
        assert!(json.starts_with(br#"{"id":""#), "{json:?}");
    }
    assert_eq!(read_events(&mut stream, 2).await, ["one", "two"]);

    // The same refusals as the main listener's `/publish`.
    let bad = send(&demo.publish, request("POST", "/publish?topic=a%0Ab", b"x")).await;
    assert_eq!(bad.status(), 400);
    let private = send(
        &demo.publish,
        request("POST", "/publish?topic=private/x", b"x"),
    )
    .await;
    assert_eq!(private.status(), 403);
    // Only publishing is served there: streams stay on the main runtime.
    let events = send(&demo.publish, request("GET", "/events", b"")).await;
    assert_eq!(events.status(), 404);
    // And the main listener still publishes.
    let main = send(&demo.events, request("POST", "/publish", b"three")).await;
    assert_eq!(main.status(), 200);
    assert_eq!(read_events(&mut stream, 1).await, ["three"]);
}

#[tokio::test]
async fn publishes_over_memory() {
    check(&start(&[]).await).await;
}

#[tokio::test]
async fn publishes_over_redis() {
    let redis = RedisServer::start();
    let url = redis.url();
    check(&start(&["--log", &url]).await).await;
}

#[tokio::test]
async fn other_frameworks_are_refused() {
    let output = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0", "--publish-addr", "127.0.0.1:0"])
        .args(["--framework", "warp"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--publish-addr is for --framework axum"),
        "{stderr}"
    );
}
