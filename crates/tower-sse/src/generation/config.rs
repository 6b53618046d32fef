//! [`GenerationConfig`] and [`Padding`]: the knobs of [`Generations`](super::Generations).

use std::time::Duration;

/// The default [`GenerationConfig::retention`]: one hour after the end.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(3600);

/// The default [`GenerationConfig::max_key_len`]: 256 bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 256;

/// The default [`GenerationConfig::max_running`]: 1,024 producers per process.
pub const DEFAULT_MAX_RUNNING: usize = 1024;

/// The default [`GenerationConfig::max_events`]: 100,000 events per generation.
pub const DEFAULT_MAX_EVENTS: u64 = 100_000;

/// How [`Generations`](super::Generations) behaves; build it with the bare-noun methods.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GenerationConfig {
    /// How long a finished generation stays readable (and its idempotency key remembered);
    /// also the time after which a generation whose producer vanished (a crashed server) is
    /// forgotten, as a running producer refreshes its record every third of it.
    pub retention: Duration,
    /// Cancel a generation when no client has had its stream open for this long (`None`: never).
    pub idle_cancel: Option<Duration>,
    /// How often a producer's watcher checks for a cancellation requested on another server
    /// and for idleness.
    pub watch_interval: Duration,
    /// The most producers running at once in this process; past it `start` is refused.
    pub max_running: usize,
    /// The longest idempotency key accepted, in bytes.
    pub max_key_len: usize,
    /// The most events one generation may append (its producer gets an error past it).
    pub max_events: u64,
    /// How long a stream waits for more tokens before writing the ones it has: tokens that
    /// arrive within this time go out in one write. `ZERO` writes at once whatever is ready
    /// (tokens already waiting still share one write).
    pub batch_window: Duration,
    /// The most bytes written at once by a stream's batch.
    pub max_batch_bytes: usize,
    /// Pads every event to a size bucket, against packet-size side channels.
    pub padding: Option<Padding>,
    /// Prefix of the log topics and store keys of generations.
    pub namespace: String,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            retention: DEFAULT_RETENTION,
            idle_cancel: None,
            watch_interval: Duration::from_millis(250),
            max_running: DEFAULT_MAX_RUNNING,
            max_key_len: DEFAULT_MAX_KEY_LEN,
            max_events: DEFAULT_MAX_EVENTS,
            batch_window: Duration::ZERO,
            max_batch_bytes: 16 * 1024,
            padding: None,
            namespace: "generation/".to_owned(),
        }
    }
}

/// Padding of events to a few sizes (buckets), with a comment line, so that the size of what
/// goes on the wire says little about the tokens inside: the "Whisper Leak" side channel.
///
/// An event of `n` bytes is preceded by a comment line (`:` then filler then LF, ignored by
/// every client per the WHATWG parsing rules) that brings it to the smallest bucket of at
/// least `n + 2` bytes; beyond the largest bucket, to the next multiple of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Padding {
    buckets: Vec<usize>,
}

impl Padding {
    /// Padding to `buckets` (sizes in bytes; sorted and deduplicated here).
    ///
    /// # Panics
    ///
    /// If `buckets` is empty or holds a size below 2 (a comment line takes two bytes).
    #[must_use]
    pub fn buckets(mut buckets: Vec<usize>) -> Self {
        assert!(
            !buckets.is_empty() && buckets.iter().all(|&b| b >= 2),
            "padding buckets must be at least 2 bytes"
        );
        buckets.sort_unstable();
        buckets.dedup();
        Self { buckets }
    }

    /// The size an event of `len` bytes is padded to.
    pub fn padded_len(&self, len: usize) -> usize {
        let need = len + 2;
        if let Some(&bucket) = self.buckets.iter().find(|&&b| b >= need) {
            return bucket;
        }
        let largest = *self.buckets.last().expect("not empty");
        need.div_ceil(largest) * largest
    }
}

impl Default for Padding {
    /// 128, 256, 512 and 1,024 bytes.
    fn default() -> Self {
        Self::buckets(vec![128, 256, 512, 1024])
    }
}

impl GenerationConfig {
    /// Sets [`retention`](Self::retention).
    #[must_use]
    pub fn retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Sets [`idle_cancel`](Self::idle_cancel).
    #[must_use]
    pub fn idle_cancel(mut self, idle: Option<Duration>) -> Self {
        self.idle_cancel = idle;
        self
    }

    /// Sets [`watch_interval`](Self::watch_interval).
    #[must_use]
    pub fn watch_interval(mut self, every: Duration) -> Self {
        self.watch_interval = every;
        self
    }

    /// Sets [`max_running`](Self::max_running).
    #[must_use]
    pub fn max_running(mut self, max: usize) -> Self {
        self.max_running = max;
        self
    }

    /// Sets [`max_key_len`](Self::max_key_len).
    #[must_use]
    pub fn max_key_len(mut self, max: usize) -> Self {
        self.max_key_len = max;
        self
    }

    /// Sets [`max_events`](Self::max_events).
    #[must_use]
    pub fn max_events(mut self, max: u64) -> Self {
        self.max_events = max;
        self
    }

    /// Sets [`batch_window`](Self::batch_window).
    #[must_use]
    pub fn batch_window(mut self, window: Duration) -> Self {
        self.batch_window = window;
        self
    }

    /// Sets [`max_batch_bytes`](Self::max_batch_bytes).
    #[must_use]
    pub fn max_batch_bytes(mut self, max: usize) -> Self {
        self.max_batch_bytes = max;
        self
    }

    /// Sets [`padding`](Self::padding).
    #[must_use]
    pub fn padding(mut self, padding: Option<Padding>) -> Self {
        self.padding = padding;
        self
    }

    /// Sets [`namespace`](Self::namespace).
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }
}
