//! One topic's retained events, with retention and lookup after a sequence number.

use std::{collections::VecDeque, time::Instant};

use crate::{LoggedEvent, Replay, ReplayOutcome, Retention, UnknownCursor};

/// The retained events of one topic, oldest first, with strictly increasing sequence numbers.
#[derive(Debug)]
pub(super) struct TopicLog {
    entries: VecDeque<Entry>,
    /// Sum of the retained frames' lengths.
    bytes: usize,
    /// Every event of this topic with a sequence number up to this one that is no longer
    /// retained has been dropped; a reader positioned before it missed something. 0: none.
    dropped_through: u64,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    appended_at: Instant,
    event: LoggedEvent,
}

impl TopicLog {
    /// An empty topic. `dropped_through` carries over what is known of dropped events when a
    /// topic is created again after being removed.
    pub(super) fn new(dropped_through: u64) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            dropped_through,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn dropped_through(&self) -> u64 {
        self.dropped_through
    }

    /// The sequence number a reader that has everything stands at: the newest entry, or the
    /// last dropped one; 0 when the topic never held anything.
    pub(super) fn head(&self) -> u64 {
        self.entries
            .back()
            .map_or(self.dropped_through, |entry| entry.seq)
    }

    /// Appends an event whose sequence number is above every retained one, then applies
    /// `retention` (which may drop the new event itself).
    pub(super) fn push(
        &mut self,
        seq: u64,
        event: LoggedEvent,
        now: Instant,
        retention: &Retention,
    ) {
        debug_assert!(self.entries.back().is_none_or(|last| last.seq < seq));
        self.bytes += event.frame().len();
        self.entries.push_back(Entry {
            seq,
            appended_at: now,
            event,
        });
        while retention.exceeded_by(self.entries.len(), self.bytes) {
            self.pop_oldest();
        }
        self.expire(retention, now);
    }

    /// Drops the events whose age has reached `retention.max_age`.
    pub(super) fn expire(&mut self, retention: &Retention, now: Instant) {
        let Some(max_age) = retention.max_age else {
            return;
        };
        // Appends hold the topic's lock while reading the clock, so times never decrease
        // along the queue and the expired events are a prefix.
        while self
            .entries
            .front()
            .is_some_and(|oldest| now.saturating_duration_since(oldest.appended_at) >= max_age)
        {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            self.bytes -= entry.event.frame().len();
            self.dropped_through = entry.seq;
        }
    }

    /// The events after sequence number `after` (`None`: from the oldest), at most `limit`.
    ///
    /// `after` must be a sequence number the log has assigned. The lookup is a binary search:
    /// sequence numbers are shared by every topic, so they increase but are not contiguous.
    ///
    /// Which cursors belong to this topic needs no memory beyond the queue: an event after
    /// `dropped_through` is retained (drops are a prefix), so a number past it that is not an
    /// entry is another topic's ([`UnknownCursor::OtherTopic`]); `dropped_through` itself is
    /// the last event a reader may have seen before the cut (`Resumed`); a number before it is
    /// reported as a `Gap`, whether it was this topic's dropped event or another topic's
    /// (telling them apart would mean remembering every dropped number; a gap is visible, so
    /// the conservative answer never makes a reader silently miss events).
    pub(super) fn read_after(&self, after: Option<u64>, limit: usize) -> Replay {
        let (outcome, start) = match after {
            None => (ReplayOutcome::Fresh, 0),
            Some(seq) if seq < self.dropped_through => (self.gap(), 0),
            // The reader saw the last dropped event: nothing missed.
            Some(seq) if seq == self.dropped_through => (ReplayOutcome::Resumed, 0),
            Some(seq) => {
                // Drops are a prefix, so every event of this topic after `dropped_through` is
                // still retained: a sequence number past it that is not an entry belongs to
                // another topic (the sequence is shared), and resuming from it would be
                // silence, not a position.
                let start = self.entries.partition_point(|entry| entry.seq < seq);
                if self.entries.get(start).is_none_or(|entry| entry.seq != seq) {
                    return Replay::new(
                        ReplayOutcome::Unknown(UnknownCursor::OtherTopic),
                        Vec::new(),
                        false,
                    );
                }
                (ReplayOutcome::Resumed, start + 1)
            }
        };
        let available = self.entries.len() - start;
        let events = self
            .entries
            .range(start..)
            .take(limit)
            .map(|entry| entry.event.clone())
            .collect();
        Replay::new(outcome, events, available > limit)
    }

    fn gap(&self) -> ReplayOutcome {
        let oldest = self.entries.front().map(|e| e.event.shared_id().clone());
        ReplayOutcome::gap(oldest)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn event(seq: u64, len: usize) -> LoggedEvent {
        LoggedEvent::from_parts(seq.to_string(), Bytes::from(vec![b'x'; len]))
    }

    fn ids(replay: &Replay) -> Vec<&str> {
        replay.events.iter().map(LoggedEvent::id).collect()
    }

    #[test]
    fn lookup_skips_sequence_numbers_of_other_topics() {
        let now = Instant::now();
        let mut topic = TopicLog::new(0);
        for seq in [2, 5, 9] {
            topic.push(seq, event(seq, 1), now, &Retention::unbounded());
        }
        assert_eq!(ids(&topic.read_after(Some(2), 10)), ["5", "9"]);
        assert_eq!(ids(&topic.read_after(Some(5), 10)), ["9"]);
        for other in [1, 4, 6, 10] {
            assert_eq!(
                topic.read_after(Some(other), 10).outcome,
                ReplayOutcome::Unknown(UnknownCursor::OtherTopic),
                "{other} is another topic's number"
            );
        }
        assert_eq!(ids(&topic.read_after(Some(9), 10)), Vec::<&str>::new());
        assert_eq!(
            topic.read_after(Some(9), 10).outcome,
            ReplayOutcome::Resumed
        );
    }

    #[test]
    fn bytes_are_accounted_on_every_drop() {
        let now = Instant::now();
        let retention = Retention::unbounded().max_bytes(10);
        let mut topic = TopicLog::new(0);
        topic.push(1, event(1, 4), now, &retention);
        topic.push(2, event(2, 4), now, &retention);
        assert_eq!((topic.len(), topic.bytes), (2, 8));
        topic.push(3, event(3, 4), now, &retention);
        assert_eq!((topic.len(), topic.bytes, topic.dropped_through), (2, 8, 1));
        topic.push(4, event(4, 11), now, &retention);
        assert_eq!((topic.len(), topic.bytes, topic.dropped_through), (0, 0, 4));
    }

    #[test]
    fn a_gap_starts_at_the_oldest_retained_event() {
        let now = Instant::now();
        let retention = Retention::unbounded().max_events(2);
        let mut topic = TopicLog::new(0);
        for seq in 1..=4 {
            topic.push(seq, event(seq, 1), now, &retention);
        }
        let replay = topic.read_after(Some(1), 1);
        assert_eq!(replay.outcome, ReplayOutcome::gap(Some("3".into())));
        assert_eq!((ids(&replay), replay.has_more), (vec!["3"], true));
        // The last dropped event is not a gap for a reader that saw it.
        assert_eq!(topic.read_after(Some(2), 9).outcome, ReplayOutcome::Resumed);
    }

    #[test]
    fn age_is_measured_from_each_append() {
        let start = Instant::now();
        let retention = Retention::unbounded().max_age(Duration::from_secs(10));
        let mut topic = TopicLog::new(0);
        topic.push(1, event(1, 1), start, &retention);
        topic.push(2, event(2, 1), start + Duration::from_secs(5), &retention);
        topic.expire(&retention, start + Duration::from_millis(9_999));
        assert_eq!(topic.len(), 2);
        topic.expire(&retention, start + Duration::from_secs(10));
        assert_eq!((topic.len(), topic.dropped_through), (1, 1));
        topic.expire(&retention, start + Duration::from_secs(15));
        assert!(topic.is_empty());
    }
}
