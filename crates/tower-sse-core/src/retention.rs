//! [`Retention`]: how much an [`EventLog`](crate::EventLog) keeps per topic.

use std::time::Duration;

/// The default [`Retention::max_events`]: 10,000 events per topic.
pub const DEFAULT_MAX_EVENTS: usize = 10_000;

/// How much of each topic a log retains: by count, by total frame bytes and by age.
///
/// Each limit is optional and they combine: an event is dropped as soon as any limit is
/// exceeded, oldest first. Limits are applied on every append, and a log applies the age
/// limit on reads too, so an expired event is never replayed. A reader whose cursor precedes
/// a dropped event gets [`ReplayOutcome::Gap`](crate::ReplayOutcome::Gap).
///
/// The [`Default`] keeps at most [`DEFAULT_MAX_EVENTS`] per topic, with no byte or age limit.
/// [`Retention::unbounded`] keeps everything, which is only safe when something else bounds
/// the log.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_sse_core::Retention;
///
/// // At most 1,000 events, 1 MiB of frames and 5 minutes per topic, whichever comes first.
/// let retention = Retention::default()
///     .max_events(1_000)
///     .max_bytes(1 << 20)
///     .max_age(Duration::from_secs(300));
/// assert_eq!(retention.max_events, Some(1_000));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Retention {
    /// The most events kept per topic. `Some(0)` keeps none: appends still assign ids and
    /// return frames (to fan out live), but nothing is replayable.
    pub max_events: Option<usize>,
    /// The most bytes of encoded frames kept per topic. A single event larger than this is
    /// not retained. Bookkeeping (ids, indexes) is not counted.
    pub max_bytes: Option<usize>,
    /// How long an event is kept: it is dropped once its age reaches this, as measured by the
    /// log's clock.
    pub max_age: Option<Duration>,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            max_events: Some(DEFAULT_MAX_EVENTS),
            max_bytes: None,
            max_age: None,
        }
    }
}

impl Retention {
    /// No limit at all: every event is kept forever.
    #[must_use]
    pub fn unbounded() -> Self {
        Self {
            max_events: None,
            max_bytes: None,
            max_age: None,
        }
    }

    /// Keeps at most `max` events per topic.
    #[must_use]
    pub fn max_events(mut self, max: usize) -> Self {
        self.max_events = Some(max);
        self
    }

    /// Keeps at most `max` bytes of encoded frames per topic.
    #[must_use]
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = Some(max);
        self
    }

    /// Keeps events for at most `max` after they were appended.
    #[must_use]
    pub fn max_age(mut self, max: Duration) -> Self {
        self.max_age = Some(max);
        self
    }

    /// Whether a topic holding `events` events of `bytes` bytes in total is over the count or
    /// byte limit.
    pub(crate) fn exceeded_by(&self, events: usize, bytes: usize) -> bool {
        self.max_events.is_some_and(|max| events > max)
            || self.max_bytes.is_some_and(|max| bytes > max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_combine() {
        let r = Retention::unbounded().max_events(2).max_bytes(10);
        assert!(!r.exceeded_by(2, 10));
        assert!(r.exceeded_by(3, 1));
        assert!(r.exceeded_by(1, 11));
        assert!(!Retention::unbounded().exceeded_by(usize::MAX, usize::MAX));
    }

    #[test]
    fn default_bounds_the_count_only() {
        let r = Retention::default();
        assert_eq!(
            (r.max_events, r.max_bytes, r.max_age),
            (Some(DEFAULT_MAX_EVENTS), None, None)
        );
    }
}
