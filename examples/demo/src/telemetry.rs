//! The demo's metrics and logs: tower-sse's metrics rendered in Prometheus text at
//! `GET /metrics` (no listener of the exporter's own: each framework serves the route), the
//! dashboard's script at `GET /dashboard.js` (and the dashboard alone at `GET /dashboard`),
//! and tower-sse's spans and events on stderr.

use std::{sync::OnceLock, time::Duration};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tower_sse::metrics;
use tracing_subscriber::filter::LevelFilter;

/// The `Content-Type` of `GET /metrics`: Prometheus text format 0.0.4.
pub(crate) const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The script of the page's dashboard (its markup included), at `GET /dashboard.js`.
pub(crate) const DASHBOARD_JS: &str = include_str!("dashboard.js");

/// The dashboard alone, at `GET /dashboard`: without the page's own event stream, a headless
/// browser's virtual clock can run it (the end-to-end check does).
pub(crate) const DASHBOARD_HTML: &str = include_str!("dashboard.html");

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (explicit histogram buckets), registers every tower-sse
/// metric at 0, and logs to stderr at the level in `RUST_LOG` (`info` by default; a level
/// name only, such as `debug`). Call before building the hub and the layer.
pub(crate) fn install() -> Result<(), String> {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| value.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    // Another subscriber already set (tests) is fine.
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();

    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::STREAM_DURATION.into()),
            metrics::STREAM_DURATION_BUCKETS,
        )
        .and_then(|builder| {
            builder.set_buckets_for_metric(
                Matcher::Full(metrics::LOG_READ_DURATION.into()),
                metrics::LOG_READ_BUCKETS,
            )
        })
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    metrics::describe();
    // Without the exporter's own runtime, its upkeep (draining histogram samples) is ours.
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let _ = HANDLE.set(handle);
    Ok(())
}

/// The metrics in Prometheus text format.
pub(crate) fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}
