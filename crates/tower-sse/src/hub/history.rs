//! A topic's recent history: the last events its ring carried, kept so that replays from a
//! recent cursor are answered from memory instead of the log.
//!
//! Over a live log ([`Hub::with_live_log`](crate::Hub::with_live_log)) the hub's tail reads
//! every topic's events from the log in order and sends them to the topic's ring; the
//! history keeps the last of those, a contiguous run of the log that ends at the ring's last
//! event. A reconnect storm — thousands of clients a few hundred events behind — is then
//! served from these shared frames, with no read of the store per client. A cursor that is
//! not in the run (older than its first event, unknown, or a position the tail has not
//! reached) is read from the log as before.

use std::collections::VecDeque;

use tower_sse_core::{EventLog, LoggedEvent, Replay, ReplayOutcome};

/// Events kept per topic by default (with a live log).
pub const DEFAULT_HISTORY_EVENTS: usize = 4096;

/// Frame bytes kept per topic by default (with a live log).
pub const DEFAULT_HISTORY_BYTES: usize = 4 * 1024 * 1024;

/// The last events a topic's ring carried, oldest first, with no gap between them; its last
/// event is always the ring's last (`TopicState::last_sent`).
#[derive(Debug)]
pub(crate) struct History {
    events: VecDeque<LoggedEvent>,
    bytes: usize,
    max_events: usize,
    max_bytes: usize,
}

impl History {
    /// An empty history bounded by `max_events` and `max_bytes`; zero of either keeps none.
    pub(crate) fn new(max_events: usize, max_bytes: usize) -> Self {
        Self {
            events: VecDeque::new(),
            bytes: 0,
            max_events,
            max_bytes,
        }
    }

    /// Records the event just sent to the ring.
    pub(crate) fn push(&mut self, event: &LoggedEvent) {
        if self.max_events == 0 || self.max_bytes == 0 {
            return;
        }
        self.bytes += event.frame().len();
        self.events.push_back(event.clone());
        while self.events.len() > self.max_events || self.bytes > self.max_bytes {
            let Some(old) = self.events.pop_front() else {
                break;
            };
            self.bytes -= old.frame().len();
        }
    }

    /// Forgets everything: the ring's next event may not follow the last one kept.
    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.bytes = 0;
    }

    /// The events after `cursor`, at most `limit` of them and about `max_bytes` of frames (at
    /// least one), when `cursor` is the id of a kept event; `None` when it is not (the caller
    /// reads the log). `has_more` is false when the page reaches the ring's last event: every
    /// later one reaches a receiver that joined the ring before this call.
    pub(crate) fn page_after<L: EventLog>(
        &self,
        log: &L,
        cursor: &str,
        limit: usize,
        max_bytes: usize,
    ) -> Option<Replay> {
        if limit == 0 {
            return None;
        }
        let at = self
            .events
            .binary_search_by(|event| {
                // Ids of another epoch or malformed ones are not in the run: sort them past
                // its end, so the search misses.
                log.compare_ids(event.id(), cursor)
                    .unwrap_or(std::cmp::Ordering::Greater)
            })
            .ok()?;
        let mut events = Vec::with_capacity(limit.min(self.events.len() - at - 1));
        let mut bytes = 0;
        for event in self.events.iter().skip(at + 1) {
            if events.len() == limit || (!events.is_empty() && bytes >= max_bytes) {
                break;
            }
            bytes += event.frame().len();
            events.push(event.clone());
        }
        let has_more = at + 1 + events.len() < self.events.len();
        Some(Replay::new(ReplayOutcome::Resumed, events, has_more))
    }
}

#[cfg(test)]
mod tests {
    use tower_sse_core::{Event, MemoryLog};

    use super::*;

    fn filled(log: &MemoryLog, n: usize, history: &mut History) -> Vec<LoggedEvent> {
        (0..n)
            .map(|i| {
                let event = log
                    .append_sync("t", &Event::new().data(format!("e{i}")))
                    .unwrap();
                history.push(&event);
                event
            })
            .collect()
    }

    #[test]
    fn pages_follow_a_kept_cursor_and_end_at_the_last_event() {
        let log = MemoryLog::new();
        let mut history = History::new(100, usize::MAX);
        let events = filled(&log, 10, &mut history);
        let page = history
            .page_after(&log, events[2].id(), 4, usize::MAX)
            .unwrap();
        assert_eq!(page.outcome, ReplayOutcome::Resumed);
        assert_eq!(page.events, events[3..7].to_vec());
        assert!(page.has_more);
        let page = history
            .page_after(&log, events[6].id(), 4, usize::MAX)
            .unwrap();
        assert_eq!(page.events, events[7..10].to_vec());
        assert!(!page.has_more);
        let page = history
            .page_after(&log, events[9].id(), 4, usize::MAX)
            .unwrap();
        assert!(page.events.is_empty() && !page.has_more);
    }

    #[test]
    fn cursors_outside_the_run_are_read_from_the_log() {
        let log = MemoryLog::new();
        let mut history = History::new(5, usize::MAX);
        let events = filled(&log, 10, &mut history);
        // Dropped by the bound, never kept, and malformed: all misses.
        assert!(
            history
                .page_after(&log, events[4].id(), 4, usize::MAX)
                .is_none()
        );
        assert!(
            history
                .page_after(&log, events[5].id(), 4, usize::MAX)
                .is_some()
        );
        assert!(
            history
                .page_after(&log, "not-an-id", 4, usize::MAX)
                .is_none()
        );
        let other = MemoryLog::new()
            .append_sync("t", &Event::new().data("x"))
            .unwrap();
        assert!(
            history
                .page_after(&log, other.id(), 4, usize::MAX)
                .is_none()
        );
        history.clear();
        assert!(
            history
                .page_after(&log, events[8].id(), 4, usize::MAX)
                .is_none()
        );
    }

    #[test]
    fn bounded_by_bytes_and_pages_by_bytes() {
        let log = MemoryLog::new();
        // Ids of three digits from here on: frames of one length.
        filled(&log, 100, &mut History::new(0, 0));
        let frame = log
            .append_sync("t", &Event::new().data("e0"))
            .unwrap()
            .frame()
            .len();
        let mut history = History::new(1000, frame * 4);
        let events = filled(&log, 9, &mut history);
        assert!(events.iter().all(|e| e.frame().len() == frame));
        // Four frames kept: events 5 to 8.
        assert!(
            history
                .page_after(&log, events[4].id(), 9, usize::MAX)
                .is_none()
        );
        let page = history
            .page_after(&log, events[5].id(), 9, frame * 2)
            .unwrap();
        assert_eq!(page.events, events[6..8].to_vec());
        assert!(page.has_more);
        // A zero bound keeps nothing.
        let mut none = History::new(0, 1 << 20);
        filled(&log, 3, &mut none);
        assert!(none.events.is_empty());
    }
}
