//! [`RetryPolicy`]: when and how soon an [`EventSource`](crate::EventSource) reconnects.

use std::{
    collections::hash_map::RandomState,
    fmt,
    hash::{BuildHasher, Hasher},
    sync::Arc,
    time::Duration,
};

use http::StatusCode;

use crate::Error;

/// The reconnection delay before the server sets one with `retry`: 3 s, as browsers use.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(3);
/// The default cap on the exponential backoff: 30 s.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(30);
/// Consecutive failures after the first grow from at least this delay, so that a server
/// asking for `retry: 0` is not hammered in a tight loop while it keeps failing.
const MIN_BACKOFF: Duration = Duration::from_millis(10);

/// When an [`EventSource`](crate::EventSource) reconnects, and how long it waits first.
///
/// The delay before the first reconnection after a working connection is the reconnection
/// time (the server's `retry`, or [`initial_delay`](Self::initial_delay)) plus a random jitter
/// of at most 50 %; each further consecutive failure doubles it, up to
/// [`max_delay`](Self::max_delay) (plus jitter). A connection that delivers an event resets
/// the count. Retries go on indefinitely, as a browser's do, unless
/// [`max_retries`](Self::max_retries) is set.
///
/// Which failures are retried: network and body errors, read timeouts, a stream the server
/// ended, and statuses for which [`retry_status`](Self::retry_status) says yes (5xx by
/// default). Never retried: a wrong `Content-Type`, a bad redirect, an invalid request.
///
/// ```
/// use std::time::Duration;
/// use tower_sse_client::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .initial_delay(Duration::from_millis(500))
///     .max_delay(Duration::from_secs(10))
///     .max_retries(20)
///     // also retry 429 Too Many Requests
///     .retry_status(|status| status.is_server_error() || status.as_u16() == 429);
/// # let _ = policy;
/// ```
#[derive(Clone)]
pub struct RetryPolicy {
    pub(crate) initial_delay: Duration,
    max_delay: Duration,
    max_retries: Option<u32>,
    retry_status: Arc<dyn Fn(StatusCode) -> bool + Send + Sync>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_delay: DEFAULT_INITIAL_DELAY,
            max_delay: DEFAULT_MAX_DELAY,
            max_retries: None,
            retry_status: Arc::new(|status: StatusCode| status.is_server_error()),
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("initial_delay", &self.initial_delay)
            .field("max_delay", &self.max_delay)
            .field("max_retries", &self.max_retries)
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// The reconnection time until the server sends `retry` (default 3 s).
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// The cap on the exponential backoff, before jitter (default 30 s). A server's `retry`
    /// above it is still honoured.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Gives up after this many consecutive failed reconnections (default: never).
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = Some(retries);
        self
    }

    /// Which non-2xx statuses are retried (default: 5xx).
    #[must_use]
    pub fn retry_status(mut self, f: impl Fn(StatusCode) -> bool + Send + Sync + 'static) -> Self {
        self.retry_status = Arc::new(f);
        self
    }

    /// Whether this error, the `failures`-th in a row, is retried.
    pub(crate) fn retries(&self, error: &Error, failures: u32) -> bool {
        let kind = match error {
            Error::Transport(_) | Error::Body(_) | Error::StreamEnded | Error::ReadTimeout(_) => {
                true
            }
            Error::Status(status) => (self.retry_status)(*status),
            _ => false,
        };
        kind && self.max_retries.is_none_or(|max| failures <= max)
    }

    /// The wait before reconnecting after `failures` consecutive failures (at least 1),
    /// with `base` the current reconnection time.
    pub(crate) fn delay(&self, base: Duration, failures: u32, rng: &mut Jitter) -> Duration {
        let delay = if failures <= 1 {
            base
        } else {
            let doublings = (failures - 1).min(31);
            base.max(MIN_BACKOFF)
                .saturating_mul(1 << doublings)
                .min(self.max_delay.max(base))
        };
        delay + delay.mul_f64(rng.next_unit() / 2.0)
    }
}

/// A small xorshift generator for jitter: no dependency, seeded per stream from the
/// process's random hash keys, so that clients started together spread out.
#[derive(Debug)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_usize(&hasher as *const _ as usize);
        Self(hasher.finish() | 1)
    }

    /// A number in `[0, 1)`.
    fn next_unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reconnect_waits_retry_plus_at_most_half() {
        let policy = RetryPolicy::default();
        let mut rng = Jitter::new();
        let base = Duration::from_millis(1000);
        let delays: Vec<_> = (0..1000).map(|_| policy.delay(base, 1, &mut rng)).collect();
        assert!(delays.iter().all(|d| *d >= base && *d <= base * 3 / 2));
        // jitter is spread, not constant
        assert!(delays.iter().any(|d| *d > base * 5 / 4));
        assert!(delays.iter().any(|d| *d < base * 5 / 4));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default().max_delay(Duration::from_secs(8));
        let mut rng = Jitter::new();
        let base = Duration::from_secs(1);
        for (failures, expected) in [(2, 2), (3, 4), (4, 8), (5, 8), (40, 8)] {
            let d = policy.delay(base, failures, &mut rng);
            let expected = Duration::from_secs(expected);
            assert!(d >= expected && d <= expected * 3 / 2, "{failures}: {d:?}");
        }
        // a server retry above the cap is honoured
        let d = policy.delay(Duration::from_secs(20), 3, &mut rng);
        assert!(d >= Duration::from_secs(20), "{d:?}");
        // retry: 0 reconnects at once, then backs off from a floor
        assert_eq!(policy.delay(Duration::ZERO, 1, &mut rng), Duration::ZERO);
        assert!(policy.delay(Duration::ZERO, 3, &mut rng) >= MIN_BACKOFF * 4);
    }

    #[test]
    fn classification_and_limit() {
        let policy = RetryPolicy::default().max_retries(2);
        assert!(policy.retries(&Error::StreamEnded, 2));
        assert!(!policy.retries(&Error::StreamEnded, 3));
        assert!(policy.retries(&Error::Status(StatusCode::BAD_GATEWAY), 1));
        assert!(!policy.retries(&Error::Status(StatusCode::NOT_FOUND), 1));
        assert!(!policy.retries(&Error::ContentType(None), 1));
        let all = RetryPolicy::default().retry_status(|_| true);
        assert!(all.retries(&Error::Status(StatusCode::TOO_MANY_REQUESTS), 100));
    }
}
