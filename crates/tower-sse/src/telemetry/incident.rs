//! Store failures, counted and logged once per incident: from an operation's first failure
//! to its next success, however many subscribers, readers or retries fail in between.

use std::{
    future::Future,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

/// What the hub or the layer asked of the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogOp {
    Append,
    Read,
    LastId,
    Tail,
}

impl LogOp {
    fn index(self) -> usize {
        self as usize
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    fn as_str(self) -> &'static str {
        crate::metrics::LOG_OPS[self.index()]
    }
}

const OPS: usize = 4;

/// Whether an incident of each operation is open (process-wide: an operator watches the
/// process's store, not one `Hub` value).
static FAILING: [AtomicBool; OPS] = [const { AtomicBool::new(false) }; OPS];
/// Failures during the open incident of each operation.
static FAILURES: [AtomicU64; OPS] = [const { AtomicU64::new(0) }; OPS];

/// Records how an operation of the log ended: the first failure opens an incident (counted,
/// logged at `WARN` with the error), later ones only add to it, and the next success closes
/// it (logged at `INFO` with the number of failures). A success outside an incident costs
/// one relaxed load.
#[inline]
pub(crate) fn log_outcome<T, E: std::error::Error>(op: LogOp, result: &Result<T, E>) {
    match result {
        Ok(_) => {
            if FAILING[op.index()].load(Ordering::Relaxed) {
                recovered(op);
            }
        }
        Err(error) => failed(op, error),
    }
}

#[cold]
#[cfg_attr(
    not(any(feature = "metrics", feature = "tracing")),
    allow(unused_variables)
)]
fn failed(op: LogOp, error: &dyn std::error::Error) {
    FAILURES[op.index()].fetch_add(1, Ordering::Relaxed);
    let already = FAILING[op.index()].swap(true, Ordering::AcqRel);
    #[cfg(feature = "metrics")]
    if !already {
        ::metrics::counter!(crate::metrics::LOG_ERRORS, "op" => op.as_str()).increment(1);
        ::metrics::gauge!(crate::metrics::LOG_FAILING, "op" => op.as_str()).set(1.0);
    }
    #[cfg(feature = "tracing")]
    if already {
        tracing::debug!(target: "tower_sse::log", op = op.as_str(), error = %error, "event log still failing");
    } else {
        tracing::warn!(
            target: "tower_sse::log",
            op = op.as_str(),
            error = %error,
            "event log failing (reported once until it recovers)"
        );
    }
}

#[cold]
fn recovered(op: LogOp) {
    if !FAILING[op.index()].swap(false, Ordering::AcqRel) {
        return;
    }
    let failures = FAILURES[op.index()].swap(0, Ordering::Relaxed);
    #[cfg(feature = "metrics")]
    ::metrics::gauge!(crate::metrics::LOG_FAILING, "op" => op.as_str()).set(0.0);
    #[cfg(feature = "tracing")]
    tracing::info!(
        target: "tower_sse::log",
        op = op.as_str(),
        failures,
        "event log recovered"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = failures;
}

/// Awaits a read of the log, timing it into `sse_log_read_seconds` and recording its
/// outcome as a [`LogOp::Read`].
pub(crate) async fn timed_read<T, E, F>(read: F) -> Result<T, E>
where
    F: Future<Output = Result<T, E>>,
    E: std::error::Error,
{
    #[cfg(feature = "metrics")]
    let started = std::time::Instant::now();
    let result = read.await;
    #[cfg(feature = "metrics")]
    ::metrics::histogram!(crate::metrics::LOG_READ_DURATION)
        .record(started.elapsed().as_secs_f64());
    log_outcome(LogOp::Read, &result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Down;

    impl std::fmt::Display for Down {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("down")
        }
    }

    impl std::error::Error for Down {}

    #[test]
    fn an_incident_runs_from_the_first_failure_to_the_next_success() {
        // `LastId` is used by no other unit test, so the statics are this test's alone.
        let op = LogOp::LastId;
        let fail: Result<(), Down> = Err(Down);
        let ok: Result<(), Down> = Ok(());
        log_outcome(op, &ok);
        assert!(!FAILING[op.index()].load(Ordering::Relaxed));
        for _ in 0..3 {
            log_outcome(op, &fail);
        }
        assert!(FAILING[op.index()].load(Ordering::Relaxed));
        assert_eq!(FAILURES[op.index()].load(Ordering::Relaxed), 3);
        log_outcome(op, &ok);
        assert!(!FAILING[op.index()].load(Ordering::Relaxed));
        assert_eq!(FAILURES[op.index()].load(Ordering::Relaxed), 0);
    }
}
