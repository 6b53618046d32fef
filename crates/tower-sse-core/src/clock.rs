//! [`Clock`]: where a log gets the time, so that tests control it.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// A monotonic source of time for age-based retention.
///
/// Log logic never reads the system clock itself; it asks its `Clock`. Production code uses
/// [`StdClock`]; tests use [`ManualClock`] and move time forward by hand, so they never sleep.
/// An application on a runtime with a controllable clock (such as tokio's paused time) can
/// implement this trait over that clock.
pub trait Clock: Send + Sync + 'static {
    /// The current time. Must never go backwards.
    fn now(&self) -> Instant;
}

/// The standard monotonic clock: [`Instant::now`].
#[derive(Clone, Copy, Debug, Default)]
pub struct StdClock;

impl Clock for StdClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, for tests. Clones share the same time.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse_core::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now() - start, Duration::from_secs(60));
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock stopped at an arbitrary instant (read once from [`Instant::now`], as `Instant`
    /// has no other constructor).
    #[must_use]
    pub fn new() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves the time forward by `by`, for this clock and all its clones.
    pub fn advance(&self, by: Duration) {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
