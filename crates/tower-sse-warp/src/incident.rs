//! The server loop's errors, counted (`sse_server_connection_errors_total{kind}`) and logged
//! once per incident: from a first failure to the next success of the same kind, so that a
//! listener out of file descriptors or a burst of broken connections is one warning, not
//! thousands.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One kind of failure of the server loop.
#[derive(Debug)]
pub(crate) struct Incident {
    #[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
    kind: &'static str,
    failing: AtomicBool,
    failures: AtomicU64,
}

/// Accepting a connection failed.
pub(crate) static ACCEPT: Incident = Incident::new("accept");
/// A connection ended in an error (for example a client that sent a malformed request or
/// reset the connection).
pub(crate) static CONNECTION: Incident = Incident::new("connection");

impl Incident {
    const fn new(kind: &'static str) -> Self {
        Self {
            kind,
            failing: AtomicBool::new(false),
            failures: AtomicU64::new(0),
        }
    }

    /// Records how one attempt ended.
    pub(crate) fn record<T, E: std::fmt::Display>(&self, result: &Result<T, E>) {
        match result {
            Ok(_) => {
                if self.failing.load(Ordering::Relaxed) {
                    self.recovered();
                }
            }
            Err(error) => self.failed(error),
        }
    }

    #[cold]
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    fn failed(&self, error: &dyn std::fmt::Display) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let first = !self.failing.swap(true, Ordering::AcqRel);
        #[cfg(feature = "metrics")]
        if first {
            metrics::counter!(tower_sse::metrics::CONNECTION_ERRORS, "kind" => self.kind)
                .increment(1);
        }
        #[cfg(feature = "tracing")]
        if first {
            tracing::warn!(
                target: "tower_sse_warp::serve",
                kind = self.kind,
                error = %error,
                "server error (reported once until the next success)"
            );
        }
        #[cfg(not(any(feature = "metrics", feature = "tracing")))]
        let _ = first;
    }

    #[cold]
    fn recovered(&self) {
        if !self.failing.swap(false, Ordering::AcqRel) {
            return;
        }
        let failures = self.failures.swap(0, Ordering::Relaxed);
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "tower_sse_warp::serve",
            kind = self.kind,
            failures,
            "server recovered"
        );
        #[cfg(not(feature = "tracing"))]
        let _ = failures;
    }

    /// Whether an incident is open (for tests).
    #[cfg(test)]
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_incident_until_the_next_success() {
        let incident = Incident::new("test");
        incident.record(&Err::<(), _>("first"));
        incident.record(&Err::<(), _>("second"));
        assert!(incident.is_failing());
        assert_eq!(incident.failures.load(Ordering::Relaxed), 2);
        incident.record(&Ok::<(), &str>(()));
        assert!(!incident.is_failing());
        assert_eq!(incident.failures.load(Ordering::Relaxed), 0);
    }
}
