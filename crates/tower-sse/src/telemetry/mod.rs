//! What the layer and the hub record, behind the `tracing` and `metrics` features.
//!
//! The rest of the crate calls the small functions and types here at a handful of points;
//! without either feature they are empty and compile away. Names and label values are in
//! [`crate::metrics`], documented in one place.
//!
//! Cost on the hot path: per body frame of an event stream, two atomic adds on handles that
//! the layer resolved once (at its first event stream) and a `trace!` whose level check is a
//! static comparison; per publish, one atomic add. Registry lookups (the `metrics` macros)
//! happen per stream, per reconnect, per replay page or per failure, never per event.

// With one feature or none, some arguments and fields only serve the other.
#![cfg_attr(
    not(all(feature = "metrics", feature = "tracing")),
    allow(unused_variables, dead_code)
)]

mod incident;
mod stream;

pub(crate) use incident::{LogOp, log_outcome, timed_read};
pub(crate) use stream::{CloseReason, LayerTelemetry, RequestInfo, StreamTelemetry};

/// How a reconnect's cursor related to the log, as counted in `sse_server_replays_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplayKind {
    Resumed,
    Gap,
    Unknown,
    LogError,
}

impl ReplayKind {
    pub(crate) fn from_outcome(outcome: &tower_sse_core::ReplayOutcome) -> Self {
        use tower_sse_core::ReplayOutcome;
        match outcome {
            ReplayOutcome::Gap { .. } => Self::Gap,
            ReplayOutcome::Unknown(_) => Self::Unknown,
            // `Fresh` cannot come from a read with a cursor; counted as resumed if it did.
            _ => Self::Resumed,
        }
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Resumed => "resumed",
            Self::Gap => "gap",
            Self::Unknown => "unknown",
            Self::LogError => "log_error",
        }
    }
}

/// A reconnect's first read of the log told `kind` (`source`: `layer` or `hub`).
#[cfg_attr(
    not(any(feature = "metrics", feature = "tracing")),
    allow(unused_variables)
)]
pub(crate) fn replay(kind: ReplayKind, source: &'static str, topic: &str) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(crate::metrics::REPLAYS, "outcome" => kind.as_str()).increment(1);
    #[cfg(feature = "tracing")]
    match kind {
        ReplayKind::Resumed => {
            tracing::debug!(target: "tower_sse::replay", source, topic, "client resumed from the log");
        }
        // `log_error` is also reported, once per incident, by the incident's warning.
        _ => tracing::info!(
            target: "tower_sse::replay",
            source,
            topic,
            outcome = kind.as_str(),
            "client could not resume: it gets a gap signal"
        ),
    }
}

/// `events` were sent from the log to a reconnecting (or catching-up) client.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn replayed(events: usize) {
    #[cfg(feature = "metrics")]
    if events > 0 {
        ::metrics::counter!(crate::metrics::REPLAYED_EVENTS).increment(events as u64);
    }
}

/// A hub subscriber fell `missed` events behind the live ring and catches up from the log.
#[cfg_attr(
    not(any(feature = "metrics", feature = "tracing")),
    allow(unused_variables)
)]
pub(crate) fn lagged(topic: &str, missed: u64) {
    #[cfg(feature = "metrics")]
    ::metrics::counter!(crate::metrics::HUB_LAGGED).increment(1);
    #[cfg(feature = "tracing")]
    tracing::debug!(
        target: "tower_sse::hub",
        topic,
        missed,
        "slow subscriber fell behind the live ring: catching up from the log"
    );
}

/// A gap signal was written to a hub subscriber after it had started (a catch-up that could
/// not reach the live feed).
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn late_gap(topic: &str, reason: crate::GapReason) {
    #[cfg(feature = "tracing")]
    tracing::info!(
        target: "tower_sse::hub",
        topic,
        reason = reason.as_str(),
        "subscriber missed events: gap signal sent"
    );
}

/// Counts one open hub subscription in `sse_hub_subscribers` until dropped.
#[derive(Debug)]
pub(crate) struct SubscriberGauge(());

impl SubscriberGauge {
    pub(crate) fn new() -> Self {
        #[cfg(feature = "metrics")]
        ::metrics::gauge!(crate::metrics::HUB_SUBSCRIBERS).increment(1.0);
        Self(())
    }
}

impl Drop for SubscriberGauge {
    fn drop(&mut self) {
        #[cfg(feature = "metrics")]
        ::metrics::gauge!(crate::metrics::HUB_SUBSCRIBERS).decrement(1.0);
    }
}

/// A hub's own handles, resolved at its first publish.
#[derive(Default)]
pub(crate) struct HubTelemetry {
    #[cfg(feature = "metrics")]
    published: std::sync::OnceLock<::metrics::Counter>,
}

impl std::fmt::Debug for HubTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubTelemetry").finish_non_exhaustive()
    }
}

impl HubTelemetry {
    /// A publish through the hub ended with `result`: counted when stored, an incident of
    /// [`LogOp::Append`] when not.
    #[inline]
    pub(crate) fn published<T, E: std::error::Error>(&self, result: &Result<T, E>) {
        #[cfg(feature = "metrics")]
        if result.is_ok() {
            self.published
                .get_or_init(|| ::metrics::counter!(crate::metrics::HUB_PUBLISHED))
                .increment(1);
        }
        log_outcome(LogOp::Append, result);
    }
}
