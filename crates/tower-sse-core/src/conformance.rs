//! The [`EventLog`] conformance suite: checks every store must pass.
//!
//! Enabled by the `conformance` feature, for tests only: a store crate adds
//! `tower-sse-core = { ..., features = ["conformance"] }` to its `[dev-dependencies]` and
//! awaits [`run`] on whatever runtime its client needs. The checks panic, like `assert!`,
//! with a message naming the rule that failed.
//!
//! The suite lives in the library behind a feature, rather than in a `tests/` file that
//! other crates would include by path, so that it is compiled, documented and versioned
//! with the trait it checks, and a store crate depends on it like on any other API.
//!
//! A store that several processes share also runs [`live_positions`] for its
//! [`LiveLog`] side.
//!
//! Only what every store can promise is checked here; behaviour specific to one store
//! (the epoch of [`MemoryLog`](crate::MemoryLog) ids, byte and age limits) is tested by that
//! store.
//!
//! # Example
//!
//! ```
//! use tower_sse_core::{MemoryLog, Retention, conformance};
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     match f.as_mut().poll(&mut cx) { std::task::Poll::Ready(out) => out, _ => unreachable!() }
//! # }
//! block_on(conformance::run(MemoryLog::new));
//! block_on(conformance::gap_after_count_eviction(|max| {
//!     MemoryLog::builder().retention(Retention::unbounded().max_events(max)).build()
//! }));
//! ```

use std::fmt::Debug;

use std::cmp::Ordering;

use crate::{
    Decoded, Decoder, Event, EventLog, LiveLog, LogTail, LoggedEvent, Replay, ReplayOutcome,
};

/// Runs every check that needs no retention setting, each on a new log from `make`.
///
/// `make` must return an empty log each time (for a shared server: a fresh key prefix).
pub async fn run<L: EventLog>(make: impl Fn() -> L) {
    fresh_reads_from_the_oldest(&make()).await;
    resumes_after_any_position(&make()).await;
    limit_pages_through_everything(&make()).await;
    frames_carry_the_assigned_id(&make()).await;
    ids_are_unique_across_topics(&make()).await;
    topics_are_independent(&make()).await;
    empty_cursor_is_fresh(&make()).await;
    foreign_cursors_are_unknown(&make()).await;
    cursors_of_other_topics_are_unknown(&make()).await;
    head_is_where_a_reader_has_everything(&make()).await;
    invalid_topic_names_are_refused(&make()).await;
}

/// A topic name outside the default [`TopicRules`](crate::TopicRules) (empty, longer than 128
/// bytes, a byte outside `A-Z a-z 0-9 . _ ~ / -`) is an error of `append`, `read_after` and
/// `head`, whose message does not repeat the name; nothing is stored under it, and the log
/// goes on serving valid topics.
pub async fn invalid_topic_names_are_refused<L: EventLog>(log: &L)
where
    L::Error: std::error::Error,
{
    let long = "a".repeat(129);
    let names = [
        "",
        long.as_str(),
        "a b",
        "chat\r\nFLUSHALL",
        "x:y",
        "*",
        "caf\u{e9}",
        "nul\0",
    ];
    let event = Event::new().data("never stored");
    for name in names {
        let shown = |error: &L::Error| {
            let text = format!(
                "{error} {:?}",
                std::error::Error::source(error).map(|s| s.to_string())
            );
            assert!(
                name.len() < 2 || !text.contains(name),
                "the error repeats the name {name:?}: {text}"
            );
        };
        match log.append(name, &event).await {
            Err(error) => shown(&error),
            Ok(logged) => panic!("append to {name:?} succeeded: {}", logged.id()),
        }
        match log.read_after(name, None, 10).await {
            Err(error) => shown(&error),
            Ok(replay) => panic!("read_after of {name:?} succeeded: {replay:?}"),
        }
        match log.head(name).await {
            Err(error) => shown(&error),
            Ok(head) => panic!("head of {name:?} succeeded: {head:?}"),
        }
    }
    let all = "ABCXYZabcxyz0189._~/-";
    let logged = ok(log.append(all, &event).await, "append to a valid topic");
    let replay = read(log, all, None, 10).await;
    assert_eq!(
        ids(&replay.events),
        [logged.id()],
        "the valid topic holds its event"
    );
    assert_eq!(
        ok(log.head(all).await, "head").as_deref(),
        Some(logged.id()),
        "the valid topic's head"
    );
    let max = "m".repeat(128);
    ok(log.append(&max, &event).await, "append to a 128-byte name");
}

/// [`EventLog::head`]: reading after it returns nothing, then exactly what is appended later.
pub async fn head_is_where_a_reader_has_everything<L: EventLog>(log: &L) {
    let empty = ok(log.head("head").await, "head");
    let replay = read(log, "head", empty.as_deref(), 10).await;
    assert!(
        !replay.outcome.is_discontinuous() && replay.events.is_empty(),
        "an empty topic's head reads empty: {replay:?}"
    );
    let appended = append_n(log, "head", "e", 3).await;
    let head = ok(log.head("head").await, "head");
    assert_eq!(
        head.as_deref(),
        appended.last().map(LoggedEvent::id),
        "the head is the newest event"
    );
    let replay = read(log, "head", head.as_deref(), 10).await;
    assert_eq!(
        (replay.outcome, replay.events.len()),
        (ReplayOutcome::Resumed, 0)
    );
    let later = append_n(log, "head", "f", 2).await;
    let replay = read(log, "head", head.as_deref(), 10).await;
    assert_eq!(
        replay.events, later,
        "after the head: what was appended later"
    );
    // An event published to an empty topic after its head was read is not lost either.
    let more = append_n(log, "head-empty", "g", 1).await;
    let replay = read(log, "head-empty", empty.as_deref(), 10).await;
    if empty.is_none() {
        assert_eq!(
            replay.events, more,
            "from the start of a topic that was empty"
        );
    }
}

/// Appends `n` events with data `"{prefix}{i}"` and returns what the log stored.
async fn append_n<L: EventLog>(log: &L, topic: &str, prefix: &str, n: usize) -> Vec<LoggedEvent> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let event = Event::new().data(format!("{prefix}{i}"));
        out.push(ok(log.append(topic, &event).await, "append"));
    }
    out
}

async fn read<L: EventLog>(log: &L, topic: &str, cursor: Option<&str>, limit: usize) -> Replay {
    ok(log.read_after(topic, cursor, limit).await, "read_after")
}

fn ok<T, E: Debug>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("{what} failed: {error:?}"),
    }
}

fn ids(events: &[LoggedEvent]) -> Vec<&str> {
    events.iter().map(LoggedEvent::id).collect()
}

/// No cursor: `Fresh`, with the retained events from the oldest; an empty topic reads empty.
pub async fn fresh_reads_from_the_oldest<L: EventLog>(log: &L) {
    let replay = read(log, "fresh", None, 10).await;
    assert_eq!(replay.outcome, ReplayOutcome::Fresh, "no cursor is Fresh");
    assert!(
        replay.events.is_empty() && !replay.has_more,
        "an unknown topic reads empty"
    );

    let appended = append_n(log, "fresh", "e", 3).await;
    let replay = read(log, "fresh", None, 10).await;
    assert_eq!(replay.outcome, ReplayOutcome::Fresh);
    assert_eq!(
        replay.events, appended,
        "Fresh returns every retained event in order"
    );
    assert!(!replay.has_more);
}

/// A cursor naming any event: `Resumed`, with exactly the events after it.
pub async fn resumes_after_any_position<L: EventLog>(log: &L) {
    let appended = append_n(log, "resume", "e", 5).await;
    for (i, event) in appended.iter().enumerate() {
        let replay = read(log, "resume", Some(event.id()), 10).await;
        assert_eq!(
            replay.outcome,
            ReplayOutcome::Resumed,
            "resuming after event {i}"
        );
        assert_eq!(replay.events, appended[i + 1..], "events after event {i}");
        assert!(!replay.has_more);
    }
    // Resuming after the last event, then going on after a new append.
    let last = appended.last().map(LoggedEvent::id);
    let more = append_n(log, "resume", "f", 1).await;
    let replay = read(log, "resume", last, 10).await;
    assert_eq!(
        (replay.outcome, replay.events),
        (ReplayOutcome::Resumed, more)
    );
}

/// `limit` bounds each read, `has_more` says whether to go on, and paging with
/// [`Replay::next_cursor`] returns every event exactly once.
pub async fn limit_pages_through_everything<L: EventLog>(log: &L) {
    let appended = append_n(log, "page", "e", 10).await;

    let replay = read(log, "page", None, 0).await;
    assert!(
        replay.events.is_empty() && replay.has_more,
        "limit 0 returns nothing, more remain"
    );

    let exact = read(log, "page", None, 10).await;
    assert_eq!(exact.events.len(), 10);
    assert!(
        !exact.has_more,
        "exactly `limit` events remaining is not `has_more`"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let replay = read(log, "page", cursor.as_deref(), 3).await;
        let expected = if page == 0 {
            ReplayOutcome::Fresh
        } else {
            ReplayOutcome::Resumed
        };
        assert_eq!(replay.outcome, expected, "page {page}");
        assert!(replay.events.len() <= 3, "page {page} respects the limit");
        seen.extend(replay.events.iter().cloned());
        if !replay.has_more {
            break;
        }
        assert_eq!(replay.events.len(), 3, "a page with more after it is full");
        cursor = replay.next_cursor().map(str::to_owned);
    }
    assert_eq!(seen, appended, "paging returns every event once, in order");
}

/// Frames are encoded with the assigned id, replacing any id set on the event, and keep the
/// other fields.
pub async fn frames_carry_the_assigned_id<L: EventLog>(log: &L) {
    let event = Event::new()
        .id("chosen-by-the-caller")
        .and_then(|e| e.event("update"))
        .expect("a valid event")
        .data("line 1\nline 2");
    let logged = ok(log.append("frames", &event).await, "append");
    assert_ne!(logged.id(), "chosen-by-the-caller", "the log assigns ids");
    assert!(!logged.id().is_empty(), "ids are not empty");

    let mut decoder = Decoder::new();
    decoder.feed(logged.frame());
    let decoded = decoder.decode();
    let Ok(Some(Decoded::Event(message))) = decoded else {
        panic!("the frame decodes to one event, got {decoded:?}");
    };
    assert_eq!(
        message.last_event_id(),
        logged.id(),
        "the frame carries the assigned id"
    );
    assert_eq!(
        (message.event_type(), message.data()),
        ("update", "line 1\nline 2")
    );
    assert_eq!(decoder.decode(), Ok(None), "the frame is exactly one event");

    let replayed = read(log, "frames", None, 1).await;
    assert_eq!(
        replayed.events,
        [logged],
        "replay returns the stored frame unchanged"
    );
}

/// Ids are unique within the log, across topics.
pub async fn ids_are_unique_across_topics<L: EventLog>(log: &L) {
    let mut all = append_n(log, "unique-a", "a", 20).await;
    all.extend(append_n(log, "unique-b", "b", 20).await);
    let mut ids = ids(&all);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "every append gets a new id");
}

/// Events of one topic never appear in another.
pub async fn topics_are_independent<L: EventLog>(log: &L) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..4 {
        a.extend(append_n(log, "independent-a", &format!("a{i}-"), 1).await);
        b.extend(append_n(log, "independent-b", &format!("b{i}-"), 1).await);
    }
    assert_eq!(read(log, "independent-a", None, 100).await.events, a);
    assert_eq!(read(log, "independent-b", None, 100).await.events, b);
    let after = read(log, "independent-a", Some(a[1].id()), 100).await;
    assert_eq!(
        (after.outcome, after.events),
        (ReplayOutcome::Resumed, a[2..].to_vec())
    );
}

/// An empty cursor means no cursor, as an empty id does in the event-stream format.
pub async fn empty_cursor_is_fresh<L: EventLog>(log: &L) {
    let appended = append_n(log, "empty", "e", 2).await;
    let replay = read(log, "empty", Some(""), 10).await;
    assert_eq!(
        (replay.outcome, replay.events),
        (ReplayOutcome::Fresh, appended)
    );
}

/// Strings the log never issued are `Unknown`, with no events, whatever they contain.
pub async fn foreign_cursors_are_unknown<L: EventLog>(log: &L) {
    let appended = append_n(log, "foreign", "e", 3).await;
    let real = appended[1].id();
    let cursors = [
        "not an id".to_owned(),
        "-".to_owned(),
        "+".to_owned(),
        "$".to_owned(),
        ">".to_owned(),
        " ".to_owned(),
        "\u{1F980}".to_owned(),
        format!("{real}x"),
        format!("{real} "),
        format!(" {real}"),
        format!("{real}\0"),
        format!("{real}\r"),
        format!("{real}\n"),
        format!("\n{real}"),
        format!("{real}\r\nid: 1"),
        real.repeat(2),
        real.repeat(64 * 1024 / real.len() + 1),
        "\0".repeat(1024),
    ];
    for cursor in &cursors {
        let replay = read(log, "foreign", Some(cursor), 10).await;
        let shown: String = cursor.escape_debug().take(60).collect();
        assert!(
            matches!(replay.outcome, ReplayOutcome::Unknown(_)),
            "{shown:?} is Unknown, got {:?}",
            replay.outcome
        );
        assert!(
            replay.events.is_empty() && !replay.has_more,
            "{shown:?} replays nothing"
        );
    }
}

/// An id this log issued for another topic is no position of this one: `Unknown`, with no
/// events, wherever it falls relative to this topic's events and whether or not this topic
/// exists. (Resuming from it would replay nothing and look like success: a reader whose
/// `stream_key` differs from the topic it reads must see a gap, never silence.)
pub async fn cursors_of_other_topics_are_unknown<L: EventLog>(log: &L) {
    let before = append_n(log, "other-b", "b", 1).await;
    let mut mine = Vec::new();
    let mut between = Vec::new();
    for i in 0..3 {
        mine.extend(append_n(log, "other-a", &format!("a{i}-"), 1).await);
        between.extend(append_n(log, "other-b", &format!("b{i}-"), 1).await);
    }
    let cases = [
        ("before the topic's first event", before[0].id(), "other-a"),
        ("between the topic's events", between[0].id(), "other-a"),
        ("after the topic's last event", between[2].id(), "other-a"),
        ("on a topic never written", mine[1].id(), "other-never"),
    ];
    for (what, cursor, topic) in cases {
        let replay = read(log, topic, Some(cursor), 10).await;
        assert!(
            matches!(replay.outcome, ReplayOutcome::Unknown(_)),
            "another topic's id {what} is Unknown, got {:?}",
            replay.outcome
        );
        assert!(
            replay.events.is_empty() && !replay.has_more,
            "another topic's id {what} replays nothing"
        );
    }
    let own = read(log, "other-a", Some(mine[0].id()), 10).await;
    assert_eq!(
        (own.outcome, own.events),
        (ReplayOutcome::Resumed, mine[1..].to_vec()),
        "the topic's own ids still resume"
    );
}

/// Count retention: a cursor older than what is retained is a `Gap` starting at the oldest
/// retained event; a cursor on the last dropped event is not a gap.
///
/// `make(max)` must return an empty log that keeps at most `max` events per topic, exactly.
pub async fn gap_after_count_eviction<L: EventLog>(make: impl Fn(usize) -> L) {
    let log = make(3);
    let appended = append_n(&log, "gap", "e", 6).await;
    let retained = &appended[3..];

    let replay = read(&log, "gap", None, 10).await;
    assert_eq!(
        (replay.outcome, &replay.events[..]),
        (ReplayOutcome::Fresh, retained)
    );

    for dropped in &appended[..2] {
        let replay = read(&log, "gap", Some(dropped.id()), 10).await;
        let oldest = Some(retained[0].shared_id().clone());
        assert_eq!(
            replay.outcome,
            ReplayOutcome::gap(oldest),
            "after {}",
            dropped.id()
        );
        assert_eq!(replay.events, retained, "a gap replays what is retained");
    }
    let paged = read(&log, "gap", Some(appended[0].id()), 1).await;
    assert!(
        paged.has_more && paged.events == retained[..1],
        "a gap respects the limit"
    );
    let next = read(&log, "gap", paged.next_cursor(), 10).await;
    assert_eq!(
        (next.outcome, &next.events[..]),
        (ReplayOutcome::Resumed, &retained[1..])
    );

    let replay = read(&log, "gap", Some(appended[2].id()), 10).await;
    assert_eq!(
        (replay.outcome, &replay.events[..]),
        (ReplayOutcome::Resumed, retained),
        "the reader saw the last dropped event: no gap"
    );
}

/// [`LiveLog`]: the last id is a position that reads resume from, ids are ordered as appended,
/// and a tail returns at once when events follow its position.
///
/// `log` must be empty. The tail is awaited only where an event follows its position, so the
/// check needs no timer.
pub async fn live_positions<L: LiveLog>(log: &L) {
    let start = ok(log.last_id("live").await, "last_id");
    let replay = read(log, "live", start.as_deref(), 10).await;
    assert!(
        !replay.outcome.is_discontinuous() && replay.events.is_empty(),
        "reading after the last id of an empty topic: nothing, no gap (got {:?})",
        replay.outcome
    );

    let appended = append_n(log, "live", "e", 3).await;
    let (a, b) = (appended[0].id(), appended[1].id());
    assert_eq!(log.compare_ids(a, b), Some(Ordering::Less), "append order");
    assert_eq!(log.compare_ids(b, a), Some(Ordering::Greater));
    assert_eq!(log.compare_ids(a, a), Some(Ordering::Equal));
    assert_eq!(
        log.compare_ids(a, "\nnot an id"),
        None,
        "not an id: no order"
    );

    let last = ok(log.last_id("live").await, "last_id");
    assert_eq!(
        last.as_deref(),
        Some(appended[2].id()),
        "the last id is the newest"
    );
    let replay = read(log, "live", start.as_deref(), 10).await;
    assert_eq!(
        replay.events, appended,
        "reading after the old last id returns what was appended since"
    );

    let mut tail = log.tail();
    let never = || std::future::pending::<()>();
    let positions = [
        (std::sync::Arc::<str>::from("live-quiet"), None),
        (
            std::sync::Arc::<str>::from("live"),
            Some(std::sync::Arc::<str>::from(b)),
        ),
    ];
    assert_eq!(
        ok(tail.wait_any(&positions, never()).await, "wait_any"),
        [1],
        "an event follows in the second topic: the tail names it"
    );
    let positions = [(std::sync::Arc::<str>::from("live"), start.clone())];
    assert_eq!(
        ok(tail.wait_any(&positions, never()).await, "wait_any"),
        [0],
        "events follow the start"
    );
}
