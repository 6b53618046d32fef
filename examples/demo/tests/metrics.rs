//! `GET /metrics` on every framework: every tower-sse metric from startup, then streams that
//! come and go (one resuming with an unknown id) and publishes, scraped over a real socket
//! until the open-streams gauge is back to 0.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    time::timeout,
};

const WAIT: Duration = Duration::from_secs(10);

const NAMES: &[&str] = &[
    "sse_server_active_streams",
    "sse_server_streams_total",
    "sse_server_stream_duration_seconds",
    "sse_server_events_total",
    "sse_server_event_bytes_total",
    "sse_server_heartbeats_total",
    "sse_server_replays_total",
    "sse_server_replayed_events_total",
    "sse_hub_subscribers",
    "sse_hub_published_total",
    "sse_hub_lagged_total",
    "sse_log_errors_total",
    "sse_log_read_seconds",
];

async fn start(framework: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0", "--framework", framework])
        .args(["--heartbeat-ms", "200", "--tick-ms", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    timeout(WAIT, stdout.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap()
        .to_owned();
    (child, addr)
}

/// One request with `Connection: close`; the whole response.
async fn request(addr: &str, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head} HTTP/1.1\r\nhost: demo\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8(response).unwrap()
}

async fn scrape(addr: &str) -> String {
    let response = request(addr, "GET /metrics", "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{response}"
    );
    response
}

fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Opens `/events` and reads until `until` went by.
async fn open(addr: &str, last_event_id: Option<&str>, until: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let header = last_event_id
        .map(|id| format!("last-event-id: {id}\r\n"))
        .unwrap_or_default();
    let request = format!("GET /events HTTP/1.1\r\nhost: demo\r\n{header}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    read_until(&mut stream, until).await;
    stream
}

async fn read_until(stream: &mut TcpStream, needle: &str) {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    timeout(WAIT, async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before {needle:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {}", String::from_utf8_lossy(&seen)));
}

async fn check(framework: &str) {
    let (_child, addr) = start(framework).await;
    let text = scrape(&addr).await;
    for name in NAMES {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{framework}: {name}:\n{text}"
        );
    }
    assert_eq!(value(&text, "sse_server_active_streams"), 0.0);
    assert_eq!(value(&text, "sse_server_streams_total"), 0.0);
    assert_eq!(
        value(&text, "sse_server_replays_total{outcome=\"unknown\"}"),
        0.0
    );
    assert_eq!(
        value(
            &text,
            "sse_server_stream_duration_seconds_bucket{reason=\"client_gone\",le=\"+Inf\"}"
        ),
        0.0
    );

    let mut fresh = open(&addr, None, ":\n").await;
    let mut stale = open(&addr, Some("not-an-id-of-this-log"), "sse-gap").await;
    let text = scrape(&addr).await;
    assert_eq!(
        value(&text, "sse_server_active_streams"),
        2.0,
        "{framework}"
    );
    assert_eq!(value(&text, "sse_hub_subscribers"), 2.0, "{framework}");
    assert_eq!(
        value(&text, "sse_server_replays_total{outcome=\"unknown\"}"),
        1.0
    );
    for n in 1..=2 {
        let response = request(&addr, "POST /publish?event=note", &format!("n{n}")).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }
    read_until(&mut fresh, "data: n2").await;
    read_until(&mut stale, "data: n2").await;
    // A heartbeat after the events (the 200 ms interval).
    read_until(&mut fresh, ":\n\n").await;
    drop((fresh, stale));

    // Back to 0 once the server has dropped both bodies (poem notices a gone client at its
    // next write: the 200 ms heartbeat).
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = scrape(&addr).await;
        if value(&text, "sse_server_active_streams") == 0.0 || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        value(&text, "sse_server_active_streams"),
        0.0,
        "{framework}:\n{text}"
    );
    assert_eq!(value(&text, "sse_hub_subscribers"), 0.0, "{framework}");
    assert_eq!(value(&text, "sse_server_streams_total"), 2.0, "{framework}");
    assert_eq!(
        value(
            &text,
            "sse_server_stream_duration_seconds_count{reason=\"client_gone\"}"
        ),
        2.0,
        "{framework}"
    );
    assert_eq!(value(&text, "sse_hub_published_total"), 2.0, "{framework}");
    // Two events each, and the gap signal.
    assert_eq!(value(&text, "sse_server_events_total"), 5.0, "{framework}");
    assert!(
        value(&text, "sse_server_heartbeats_total") >= 1.0,
        "{framework}"
    );
}

#[tokio::test]
async fn metrics_on_axum() {
    check("axum").await;
}

#[tokio::test]
async fn metrics_on_warp() {
    check("warp").await;
}

#[tokio::test]
async fn metrics_on_poem() {
    check("poem").await;
}
