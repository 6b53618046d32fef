//! The live tail's store errors are never silent: Redis killed under a hub with subscribers
//! is one incident of `sse_log_errors_total{op="tail"}` however many times the tail retries,
//! `sse_log_failing{op="tail"}` is 1 while it lasts, and the tail's reconnect closes it.

mod common;

use std::time::{Duration, Instant};

use common::RedisServer;
use futures_util::StreamExt;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_sse::{Hub, metrics};
use tower_sse_core::Event;
use tower_sse_redis::RedisLog;

fn value(handle: &PrometheusHandle, series: &str) -> f64 {
    let text = handle.render();
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

async fn wait_for(handle: &PrometheusHandle, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while value(handle, series) != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value(handle, series), want, "{series}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_is_one_incident_of_the_tail() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    metrics::describe();
    let errors = r#"sse_log_errors_total{op="tail"}"#;
    let failing = r#"sse_log_failing{op="tail"}"#;

    let mut server = RedisServer::start_persistent();
    let log = RedisLog::builder(server.url())
        .key_prefix(common::unique_prefix())
        .block(Duration::from_millis(300))
        .connect()
        .await
        .unwrap();
    let hub = Hub::with_live_log(log);
    let mut subscription = hub.subscribe("room", None).await.unwrap();
    assert_eq!(value(&handle, errors), 0.0);

    server.stop();
    wait_for(&handle, failing, 1.0).await;
    // The tail retries (50 ms, doubling): several failures, still one incident.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(value(&handle, errors), 1.0);
    assert_eq!(value(&handle, failing), 1.0);

    server.restart();
    wait_for(&handle, failing, 0.0).await;
    assert_eq!(value(&handle, errors), 1.0);

    // And the subscriber is live again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hub
        .publish("room", &Event::new().data("back"))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "publish still failing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let frame = tokio::time::timeout(Duration::from_secs(10), subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(frame.ends_with(b"data: back\n\n"), "{frame:?}");
}
