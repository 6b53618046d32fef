//! The metrics tower-sse records, by their Prometheus names, in one place.
//!
//! With the `metrics` feature, the layer and the [`Hub`](crate::Hub) record these through the
//! [`metrics`](https://docs.rs/metrics) facade, so any recorder collects them; with
//! `metrics-exporter-prometheus` they are printed under exactly the names below (the exporter
//! adds no suffix of its own: counters already end in `_total`, and no unit is described that
//! a unit-suffixing exporter could append). Without the feature nothing is recorded and these
//! are only names.
//!
//! | name | type | labels | what it counts |
//! |---|---|---|---|
//! | `sse_server_active_streams` | gauge | | event streams open now (other routes do not count) |
//! | `sse_server_streams_total` | counter | | event streams opened |
//! | `sse_server_stream_duration_seconds` | histogram | `reason` | how long closed streams lasted, by [close reason](CLOSE_REASONS) |
//! | `sse_server_events_total` | counter | | events written (replayed, live, gap signals, final events) |
//! | `sse_server_event_bytes_total` | counter | | their bytes (heartbeats and priming excluded) |
//! | `sse_server_heartbeats_total` | counter | | heartbeat comments written |
//! | `sse_server_replays_total` | counter | `outcome` | reconnects with a cursor, by [outcome](REPLAY_OUTCOMES) |
//! | `sse_server_replayed_events_total` | counter | | events sent from the log to reconnecting clients |
//! | `sse_hub_subscribers` | gauge | | hub subscriptions open now |
//! | `sse_hub_published_total` | counter | | events published through a hub |
//! | `sse_hub_lagged_total` | counter | | times a subscriber fell behind the live ring and caught up from the log |
//! | `sse_log_errors_total` | counter | `op` | store incidents, by [operation](LOG_OPS): one per run of failures |
//! | `sse_log_failing` | gauge | `op` | 1 while an incident of that operation is open, else 0 |
//! | `sse_log_read_seconds` | histogram | | how long log reads took (replay, catch-up, live tail) |
//! | `sse_server_connection_errors_total` | counter | `kind` | incidents of `tower_sse_warp::serve`: failed accepts (`accept`) or connections that ended in an error (`connection`) |
//!
//! A store that fails is counted once per *incident*, from its first failure to the next
//! success of the same operation, not once per subscriber or retry: a Redis outage during
//! which ten thousand clients reconnect and the live tail retries every two seconds is one
//! increment of `sse_log_errors_total{op="read"}` (and one warning in the log), and
//! `sse_log_failing{op="read"}` stays at 1 until the store answers again. How many clients
//! it affected shows in `sse_server_replays_total{outcome="log_error"}`.
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "metrics")]
//! # fn install() {
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use tower_sse::metrics;
//!
//! let handle = PrometheusBuilder::new()
//!     .set_buckets_for_metric(
//!         Matcher::Full(metrics::STREAM_DURATION.into()),
//!         metrics::STREAM_DURATION_BUCKETS,
//!     )
//!     .unwrap()
//!     .set_buckets_for_metric(
//!         Matcher::Full(metrics::LOG_READ_DURATION.into()),
//!         metrics::LOG_READ_BUCKETS,
//!     )
//!     .unwrap()
//!     .install_recorder()
//!     .unwrap();
//! // Every metric is in the output from now on, at 0.
//! metrics::describe();
//! let text = handle.render(); // serve this at GET /metrics
//! # let _ = text;
//! # }
//! ```

/// Gauge: event streams open now.
pub const ACTIVE_STREAMS: &str = "sse_server_active_streams";
/// Counter: event streams opened.
pub const STREAMS: &str = "sse_server_streams_total";
/// Histogram, label `reason`: the duration of closed event streams, in seconds.
pub const STREAM_DURATION: &str = "sse_server_stream_duration_seconds";
/// Counter: events written to clients, heartbeats excluded.
pub const EVENTS: &str = "sse_server_events_total";
/// Counter: bytes of those events.
pub const EVENT_BYTES: &str = "sse_server_event_bytes_total";
/// Counter: heartbeat comments written.
pub const HEARTBEATS: &str = "sse_server_heartbeats_total";
/// Counter, label `outcome`: reconnects that carried a cursor.
pub const REPLAYS: &str = "sse_server_replays_total";
/// Counter: events replayed from the log.
pub const REPLAYED_EVENTS: &str = "sse_server_replayed_events_total";
/// Gauge: hub subscriptions open now.
pub const HUB_SUBSCRIBERS: &str = "sse_hub_subscribers";
/// Counter: events published through a hub.
pub const HUB_PUBLISHED: &str = "sse_hub_published_total";
/// Counter: subscribers that fell behind the live ring.
pub const HUB_LAGGED: &str = "sse_hub_lagged_total";
/// Counter, label `op`: store incidents.
pub const LOG_ERRORS: &str = "sse_log_errors_total";
/// Gauge, label `op`: 1 while a store incident is open.
pub const LOG_FAILING: &str = "sse_log_failing";
/// Histogram: the duration of log reads, in seconds.
pub const LOG_READ_DURATION: &str = "sse_log_read_seconds";
/// Counter, label `kind` (`accept` or `connection`): incidents of a server loop (the warp
/// adapter's `serve`), one per run of failures until the next success.
pub const CONNECTION_ERRORS: &str = "sse_server_connection_errors_total";

/// Every metric name, in the order of the table above.
pub const ALL: &[&str] = &[
    ACTIVE_STREAMS,
    STREAMS,
    STREAM_DURATION,
    EVENTS,
    EVENT_BYTES,
    HEARTBEATS,
    REPLAYS,
    REPLAYED_EVENTS,
    HUB_SUBSCRIBERS,
    HUB_PUBLISHED,
    HUB_LAGGED,
    LOG_ERRORS,
    LOG_FAILING,
    LOG_READ_DURATION,
    CONNECTION_ERRORS,
];

/// The values of `kind` on [`CONNECTION_ERRORS`].
pub const CONNECTION_ERROR_KINDS: &[&str] = &["accept", "connection"];

/// The values of `reason` on [`STREAM_DURATION`]: the client went away (its connection was
/// dropped), the handler's body ended, the [`ShutdownSignal`](crate::ShutdownSignal) ended it,
/// its [`max_lifetime`](crate::SseLayer::max_lifetime) was over, or an error ended it (the
/// handler's body failed, or a replay under [`GapPolicy::Header`](crate::GapPolicy::Header)
/// could not continue).
pub const CLOSE_REASONS: &[&str] = &[
    "client_gone",
    "handler_ended",
    "shutdown",
    "lifetime",
    "error",
];

/// The values of `outcome` on [`REPLAYS`]: the cursor was resumed from the log, the log had
/// dropped events after it (`gap`), it was unknown to the log (another epoch, another topic,
/// malformed or too long: `unknown`), or the log failed to answer (`log_error`, which the
/// client sees as a gap signal with reason `log-error`).
pub const REPLAY_OUTCOMES: &[&str] = &["resumed", "gap", "unknown", "log_error"];

/// The values of `op` on [`LOG_ERRORS`] and [`LOG_FAILING`]: `append` (publishing), `read`
/// (replay, catch-up and the live tail's reads), `last_id` (where the live tail starts a
/// topic) and `tail` (the live tail's wait for new events).
pub const LOG_OPS: &[&str] = &["append", "read", "last_id", "tail"];

/// The buckets of [`STREAM_DURATION`], in seconds: from a second to a day.
pub const STREAM_DURATION_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 21600.0, 86400.0,
];

/// The buckets of [`LOG_READ_DURATION`], in seconds: from 100 µs to 5 s.
pub const LOG_READ_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Describes every metric to the installed recorder and registers each (every label value
/// included) at 0, so that all of them appear in an exporter's output from startup.
///
/// Call it once, after installing the recorder and before serving. Histogram buckets are the
/// exporter's to set: use [`STREAM_DURATION_BUCKETS`] and [`LOG_READ_BUCKETS`].
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe() {
    use ::metrics::{
        counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
    };

    describe_gauge!(ACTIVE_STREAMS, "Event streams open now.");
    describe_counter!(STREAMS, "Event streams opened.");
    describe_histogram!(
        STREAM_DURATION,
        "Duration of closed event streams in seconds, by close reason."
    );
    describe_counter!(EVENTS, "Events written to clients, heartbeats excluded.");
    describe_counter!(EVENT_BYTES, "Bytes of events written to clients.");
    describe_counter!(HEARTBEATS, "Heartbeat comments written.");
    describe_counter!(
        REPLAYS,
        "Reconnects that carried a Last-Event-ID, by outcome."
    );
    describe_counter!(REPLAYED_EVENTS, "Events replayed from the log.");
    describe_gauge!(HUB_SUBSCRIBERS, "Hub subscriptions open now.");
    describe_counter!(HUB_PUBLISHED, "Events published through a hub.");
    describe_counter!(
        HUB_LAGGED,
        "Subscribers that fell behind the live ring and caught up from the log."
    );
    describe_counter!(
        LOG_ERRORS,
        "Event log incidents (first failure until the next success), by operation."
    );
    describe_gauge!(
        LOG_FAILING,
        "1 while an event log incident is open, by operation."
    );
    describe_histogram!(LOG_READ_DURATION, "Duration of event log reads in seconds.");

    gauge!(ACTIVE_STREAMS).increment(0.0);
    counter!(STREAMS).increment(0);
    for reason in CLOSE_REASONS {
        // Registered without a sample: the exporter prints the histogram with zero counts.
        let _ = histogram!(STREAM_DURATION, "reason" => *reason);
    }
    counter!(EVENTS).increment(0);
    counter!(EVENT_BYTES).increment(0);
    counter!(HEARTBEATS).increment(0);
    for outcome in REPLAY_OUTCOMES {
        counter!(REPLAYS, "outcome" => *outcome).increment(0);
    }
    counter!(REPLAYED_EVENTS).increment(0);
    gauge!(HUB_SUBSCRIBERS).increment(0.0);
    counter!(HUB_PUBLISHED).increment(0);
    counter!(HUB_LAGGED).increment(0);
    for op in LOG_OPS {
        counter!(LOG_ERRORS, "op" => *op).increment(0);
        gauge!(LOG_FAILING, "op" => *op).increment(0.0);
    }
    let _ = histogram!(LOG_READ_DURATION);
    describe_counter!(
        CONNECTION_ERRORS,
        "Server loop incidents (failed accepts, failed connections), by kind."
    );
    for kind in CONNECTION_ERROR_KINDS {
        counter!(CONNECTION_ERRORS, "kind" => *kind).increment(0);
    }
}
