//! `MemoryLog` against the shared `EventLog` conformance suite, then what is specific to it:
//! epochs, byte and age retention with a manual clock, the topic limit, concurrency.

use std::{
    future::Future,
    pin::pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    thread,
    time::Duration,
};

use proptest::prelude::*;
use tower_sse_core::{
    Clock, Decoded, Decoder, Event, EventLog, LoggedEvent, ManualClock, MemoryLog, MemoryLogError,
    Replay, ReplayOutcome, Retention, UnknownCursor, conformance,
};

/// Polls `future` once: `MemoryLog` futures must be ready on their first poll, since a hub
/// calls the log under its own lock.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a MemoryLog future was not ready on its first poll"),
    }
}

fn bounded(max_events: usize) -> MemoryLog {
    MemoryLog::builder()
        .retention(Retention::unbounded().max_events(max_events))
        .build()
}

fn with_clock(retention: Retention) -> (MemoryLog<ManualClock>, ManualClock) {
    let clock = ManualClock::new();
    let log = MemoryLog::builder()
        .retention(retention)
        .clock(clock.clone())
        .build();
    (log, clock)
}

fn append<C: Clock>(log: &MemoryLog<C>, topic: &str, data: &str) -> LoggedEvent {
    log.append_sync(topic, &Event::new().data(data.to_owned()))
        .expect("append")
}

fn data(replay: &Replay) -> Vec<String> {
    replay
        .events
        .iter()
        .map(|event| {
            let mut decoder = Decoder::new();
            decoder.feed(event.frame());
            match decoder.decode() {
                Ok(Some(Decoded::Event(message))) => {
                    assert_eq!(message.last_event_id(), event.id());
                    message.data().into()
                }
                other => panic!("undecodable frame: {other:?}"),
            }
        })
        .collect()
}

fn seq(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

fn epoch(id: &str) -> &str {
    id.rsplit_once('-').unwrap().0
}

#[test]
fn conformance_suite() {
    ready(conformance::run(MemoryLog::new));
    ready(conformance::gap_after_count_eviction(bounded));
}

#[test]
fn conformance_suite_through_an_arc() {
    ready(conformance::run(|| Arc::new(MemoryLog::new())));
}

#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let log = MemoryLog::new();
    let event = Event::new().data("x");
    assert_send(&log.append("t", &event));
    assert_send(&log.read_after("t", None, 1));
}

#[test]
fn trait_and_sync_methods_agree() {
    let log = MemoryLog::new();
    let a = ready(log.append("t", &Event::new().data("a"))).unwrap();
    let b = append(&log, "t", "b");
    let via_trait = ready(log.read_after("t", Some(a.id()), 5)).unwrap();
    assert_eq!(via_trait, log.read_after_sync("t", Some(a.id()), 5));
    assert_eq!(via_trait.events, [b]);
}

#[test]
fn ids_are_epoch_and_strictly_increasing_sequence() {
    let log = MemoryLog::new();
    let ids: Vec<_> = (0..100)
        .map(|i| append(&log, ["a", "b", "c"][i % 3], "x"))
        .collect();
    let first_epoch = epoch(ids[0].id());
    assert_eq!(first_epoch.len(), 16);
    assert!(ids.iter().all(|e| epoch(e.id()) == first_epoch));
    assert!(ids.windows(2).all(|w| seq(w[0].id()) < seq(w[1].id())));
    assert_eq!(seq(ids[0].id()), 1);
}

#[test]
fn concurrent_appends_keep_each_topic_in_sequence_order() {
    let log = Arc::new(
        MemoryLog::builder()
            .retention(Retention::unbounded())
            .build(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for i in 0..500 {
                    append(
                        &log,
                        if i % 2 == 0 { "even" } else { "odd" },
                        &format!("{t}-{i}"),
                    );
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let even = log.read_after_sync("even", None, usize::MAX);
    let odd = log.read_after_sync("odd", None, usize::MAX);
    assert_eq!((even.events.len(), odd.events.len()), (1000, 1000));
    for replay in [&even, &odd] {
        assert!(
            replay
                .events
                .windows(2)
                .all(|w| seq(w[0].id()) < seq(w[1].id()))
        );
    }
    // Resuming from the middle of a concurrently written topic returns exactly the rest.
    let middle = log.read_after_sync("even", Some(even.events[499].id()), usize::MAX);
    assert_eq!(middle.events, even.events[500..]);
}

#[test]
fn ids_of_another_instance_are_other_epoch() {
    let before_restart = MemoryLog::new();
    let old = append(&before_restart, "t", "old");
    let log = MemoryLog::new();
    append(&log, "t", "new");
    assert_ne!(epoch(old.id()), epoch(append(&log, "t", "x").id()));
    let replay = log.read_after_sync("t", Some(old.id()), 10);
    assert_eq!(
        replay.outcome,
        ReplayOutcome::Unknown(UnknownCursor::OtherEpoch)
    );
    assert!(replay.events.is_empty() && !replay.has_more);
}

#[test]
fn sequence_numbers_not_yet_assigned_are_ahead() {
    let log = MemoryLog::new();
    let last = append(&log, "t", "a");
    let next = format!("{}-{}", epoch(last.id()), seq(last.id()) + 1);
    let far = format!("{}-{}", epoch(last.id()), u64::MAX);
    for cursor in [&next, &far] {
        let replay = log.read_after_sync("t", Some(cursor), 10);
        assert_eq!(
            replay.outcome,
            ReplayOutcome::Unknown(UnknownCursor::Ahead),
            "{cursor}"
        );
        assert!(replay.events.is_empty());
    }
    // Once assigned in another topic, it is a position there, and still none of "t".
    let other = append(&log, "other", "b");
    assert_eq!(other.id(), next);
    let replay = log.read_after_sync("t", Some(&next), 10);
    assert_eq!(
        (replay.outcome, replay.events.len()),
        (ReplayOutcome::Unknown(UnknownCursor::OtherTopic), 0)
    );
    let replay = log.read_after_sync("other", Some(&next), 10);
    assert_eq!(replay.outcome, ReplayOutcome::Resumed);
}

#[test]
fn malformed_cursors() {
    let log = MemoryLog::new();
    let id = append(&log, "t", "a");
    let zero = format!("{}-0", epoch(id.id()));
    let padded = format!("{}-01", epoch(id.id()));
    let upper = id.id().to_uppercase();
    let long = "9".repeat(1 << 20);
    for cursor in [&zero, &padded, &upper, &long, "\0", "\r\n", "1", "a-1"] {
        let replay = log.read_after_sync("t", Some(cursor), 10);
        let shown: String = cursor.chars().take(40).collect();
        assert_eq!(
            replay.outcome,
            ReplayOutcome::Unknown(UnknownCursor::Malformed),
            "{shown:?}"
        );
    }
}

#[test]
fn gap_after_eviction_by_bytes() {
    // Every frame is `id: <16 hex>-<1 digit>\ndata: N\n\n`: 32 bytes.
    let log = MemoryLog::builder()
        .retention(Retention::unbounded().max_bytes(3 * 32))
        .build();
    let appended: Vec<_> = (0..5).map(|i| append(&log, "t", &i.to_string())).collect();
    assert!(appended.iter().all(|e| e.frame().len() == 32));
    assert_eq!(log.len("t"), 3);

    let replay = log.read_after_sync("t", Some(appended[0].id()), 10);
    assert_eq!(
        replay.outcome,
        ReplayOutcome::gap(Some(appended[2].shared_id().clone()))
    );
    assert_eq!(data(&replay), ["2", "3", "4"]);
    let replay = log.read_after_sync("t", Some(appended[1].id()), 10);
    assert_eq!(
        (&replay.outcome, data(&replay)),
        (
            &ReplayOutcome::Resumed,
            vec!["2".into(), "3".into(), "4".into()]
        )
    );
}

#[test]
fn an_event_larger_than_max_bytes_is_returned_but_not_retained() {
    let log = MemoryLog::builder()
        .retention(Retention::unbounded().max_bytes(40))
        .build();
    let small = append(&log, "t", "small");
    let big = append(&log, "t", &"x".repeat(100));
    assert!(big.frame().len() > 40);
    assert_eq!(
        log.len("t"),
        0,
        "the big event pushed out everything, itself included"
    );
    let replay = log.read_after_sync("t", Some(small.id()), 10);
    assert_eq!(replay.outcome, ReplayOutcome::gap(None));
    let replay = log.read_after_sync("t", Some(big.id()), 10);
    assert_eq!(
        (replay.outcome, replay.events.len()),
        (ReplayOutcome::Resumed, 0)
    );
}

#[test]
fn gap_after_eviction_by_age() {
    let (log, clock) = with_clock(Retention::unbounded().max_age(Duration::from_secs(10)));
    let e0 = append(&log, "t", "0");
    let e1 = append(&log, "t", "1");
    clock.advance(Duration::from_secs(5));
    let e2 = append(&log, "t", "2");

    clock.advance(Duration::from_millis(4_999));
    assert_eq!(data(&log.read_after_sync("t", None, 10)), ["0", "1", "2"]);

    // At 10 s the first two expire, on read: no append needed.
    clock.advance(Duration::from_millis(1));
    let replay = log.read_after_sync("t", Some(e0.id()), 10);
    assert_eq!(
        replay.outcome,
        ReplayOutcome::gap(Some(e2.shared_id().clone()))
    );
    assert_eq!(data(&replay), ["2"]);
    let replay = log.read_after_sync("t", Some(e1.id()), 10);
    assert_eq!(
        (&replay.outcome, data(&replay)),
        (&ReplayOutcome::Resumed, vec!["2".into()])
    );

    clock.advance(Duration::from_secs(5));
    let replay = log.read_after_sync("t", Some(e1.id()), 10);
    assert_eq!(
        replay.outcome,
        ReplayOutcome::gap(None),
        "everything expired"
    );
    assert!(replay.events.is_empty());
}

#[test]
fn retention_limits_combine_whichever_is_first() {
    let (log, clock) = with_clock(
        Retention::unbounded()
            .max_events(4)
            .max_bytes(3 * 32)
            .max_age(Duration::from_secs(60)),
    );
    for i in 0..3 {
        append(&log, "t", &i.to_string());
    }
    assert_eq!(log.len("t"), 3);
    append(&log, "t", "3");
    assert_eq!(log.len("t"), 3, "bytes bind before count");
    append(&log, "t", "four");
    assert_eq!(
        data(&log.read_after_sync("t", None, 10)),
        ["3", "four"],
        "a bigger frame"
    );
    clock.advance(Duration::from_secs(60));
    append(&log, "t", "5");
    assert_eq!(data(&log.read_after_sync("t", None, 10)), ["5"], "then age");

    let log = MemoryLog::builder()
        .retention(Retention::default().max_events(2).max_bytes(1 << 20))
        .build();
    for i in 0..5 {
        append(&log, "t", &i.to_string());
    }
    assert_eq!(
        data(&log.read_after_sync("t", None, 10)),
        ["3", "4"],
        "count binds"
    );
}

#[test]
fn max_events_zero_assigns_ids_but_replays_nothing() {
    let log = bounded(0);
    let a = append(&log, "t", "a");
    let b = append(&log, "t", "b");
    assert_ne!(a.id(), b.id());
    assert!(b.frame().ends_with(b"data: b\n\n"));
    assert_eq!(log.len("t"), 0);
    assert_eq!(
        log.read_after_sync("t", Some(a.id()), 9).outcome,
        ReplayOutcome::gap(None)
    );
    assert_eq!(
        log.read_after_sync("t", Some(b.id()), 9).outcome,
        ReplayOutcome::Resumed
    );
}

#[test]
fn default_retention_is_bounded() {
    let log = MemoryLog::new();
    assert_eq!(
        log.retention().max_events,
        Some(tower_sse_core::DEFAULT_MAX_EVENTS)
    );
    for _ in 0..tower_sse_core::DEFAULT_MAX_EVENTS + 5 {
        append(&log, "t", "x");
    }
    assert_eq!(log.len("t"), tower_sse_core::DEFAULT_MAX_EVENTS);
}

#[test]
fn reads_do_not_create_topics() {
    let log = MemoryLog::new();
    let replay = log.read_after_sync("nobody", None, 10);
    assert_eq!(
        (replay.outcome, replay.events.len()),
        (ReplayOutcome::Fresh, 0)
    );
    assert_eq!(log.topic_count(), 0);
}

#[test]
fn topic_limit_is_an_error_until_a_topic_empties() {
    let (log, clock) = {
        let clock = ManualClock::new();
        let log = MemoryLog::builder()
            .max_topics(2)
            .retention(Retention::default().max_age(Duration::from_secs(10)))
            .clock(clock.clone())
            .build();
        (log, clock)
    };
    append(&log, "a", "1");
    clock.advance(Duration::from_secs(5));
    append(&log, "b", "1");
    clock.advance(Duration::from_secs(1));
    let error = log.append_sync("c", &Event::new().data("1")).unwrap_err();
    assert_eq!(error, MemoryLogError::TooManyTopics { limit: 2 });
    assert_eq!(
        error.to_string(),
        "too many topics: all 2 topics still retain events"
    );
    append(&log, "a", "2"); // existing topics still take appends

    clock.advance(Duration::from_secs(9)); // "b" expires entirely, "a" still has "2"
    append(&log, "c", "1");
    assert_eq!(log.topic_count(), 2);
    assert_eq!(log.len("b"), 0);
}

#[test]
fn evict_expired_removes_empty_topics_and_remembers_the_gap() {
    let (log, clock) = with_clock(Retention::unbounded().max_age(Duration::from_secs(1)));
    let other = append(&log, "other", "x");
    let first = append(&log, "t", "1");
    let last = append(&log, "t", "2");
    clock.advance(Duration::from_secs(1));
    assert_eq!(log.topic_count(), 2);
    log.evict_expired();
    assert_eq!(log.topic_count(), 0);

    // Removed: the earlier cursor missed "2", the later one missed nothing.
    let replay = log.read_after_sync("t", Some(first.id()), 10);
    assert_eq!(replay.outcome, ReplayOutcome::gap(None));
    assert_eq!(
        log.read_after_sync("t", Some(last.id()), 10).outcome,
        ReplayOutcome::Resumed
    );

    // Removed topics share one watermark, so a cursor of a removed topic that is older than
    // another removed topic's last event is conservatively a gap: never a silent loss.
    let replay = log.read_after_sync("other", Some(other.id()), 10);
    assert_eq!(replay.outcome, ReplayOutcome::gap(None));

    // Created again: ids keep increasing, and the gap is still reported.
    let again = append(&log, "t", "3");
    assert!(seq(again.id()) > seq(last.id()));
    let replay = log.read_after_sync("t", Some(first.id()), 10);
    assert_eq!(
        replay.outcome,
        ReplayOutcome::gap(Some(again.shared_id().clone()))
    );
    assert_eq!(data(&replay), ["3"]);
    let replay = log.read_after_sync("t", Some(last.id()), 10);
    assert_eq!(
        (&replay.outcome, data(&replay)),
        (&ReplayOutcome::Resumed, vec!["3".into()])
    );
}

proptest! {
    #[test]
    fn arbitrary_cursors_never_panic_and_are_unknown_unless_issued(
        cursor in prop_oneof![
            any::<String>(),
            "[0-9a-f]{16}-[0-9]{1,21}",
            "[0-9a-fA-F\\-]{0,40}",
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
        ],
        limit in 0usize..8,
    ) {
        let log = MemoryLog::new();
        let issued: Vec<_> = (0..5).map(|i| append(&log, "t", &i.to_string())).collect();
        let replay = log.read_after_sync("t", Some(&cursor), limit);
        match issued.iter().position(|e| e.id() == cursor) {
            Some(i) => {
                prop_assert_eq!(replay.outcome, ReplayOutcome::Resumed);
                prop_assert_eq!(replay.events.len(), (4 - i).min(limit));
            }
            None if cursor.is_empty() => prop_assert_eq!(replay.outcome, ReplayOutcome::Fresh),
            None => {
                prop_assert!(matches!(replay.outcome, ReplayOutcome::Unknown(_)), "{:?}", replay.outcome);
                prop_assert!(replay.events.is_empty());
            }
        }
    }

    #[test]
    fn real_ids_with_a_random_epoch_are_other_epoch(epoch in "[0-9a-f]{16}", seq in 1u64..6) {
        let log = MemoryLog::new();
        let issued = append(&log, "t", "x");
        for _ in 0..5 {
            append(&log, "t", "x");
        }
        prop_assume!(epoch != self::epoch(issued.id()));
        let replay = log.read_after_sync("t", Some(&format!("{epoch}-{seq}")), 10);
        prop_assert_eq!(replay.outcome, ReplayOutcome::Unknown(UnknownCursor::OtherEpoch));
    }
}
