//! `serve`'s connection errors are counted once per incident: three broken connections in a
//! row are one increment of `sse_server_connection_errors_total{kind="connection"}`, and a
//! good connection closes the incident, so the next failure is a new one.

#![cfg(feature = "metrics")]

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};
use tower_sse_warp::{SseLayer, warp::Filter};

const WAIT: Duration = Duration::from_secs(10);

async fn exchange(addr: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    // The server answers (or not) and closes.
    let _ = timeout(WAIT, stream.read_to_end(&mut out)).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn count(text: &str) -> f64 {
    let series = "sse_server_connection_errors_total{kind=\"connection\"} ";
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// Waits until the server task recorded the outcome of the last connection.
async fn settle(handle: &metrics_exporter_prometheus::PrometheusHandle, want: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while count(&handle.render()) != want && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(count(&handle.render()), want);
}

#[tokio::test]
async fn connection_errors_are_counted_once_per_incident() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    tower_sse::metrics::describe();
    assert_eq!(count(&handle.render()), 0.0);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let routes = tower_sse_warp::warp::path!("ok").map(|| "ok");
    tokio::spawn(tower_sse_warp::serve(
        routes,
        SseLayer::new(),
        listener,
        std::future::pending(),
    ));

    for _ in 0..3 {
        exchange(&addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    }
    settle(&handle, 1.0).await;
    let ok = exchange(
        &addr,
        b"GET /ok HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // Let the good connection's end be recorded before the next failure.
    tokio::time::sleep(Duration::from_millis(100)).await;
    exchange(&addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    settle(&handle, 2.0).await;
}
