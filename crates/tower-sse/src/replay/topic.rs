//! [`TopicResume`]: the resumption of one topic (the replay, the gap rule, the live filter and
//! the live join), as described in the [parent module](super).

use std::{cmp::Ordering, fmt, pin::Pin, sync::Arc, task::Context, task::Poll};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use tower_sse_core::{FrameBoundary, Replay, ReplayOutcome};

use super::{DynLog, MAX_SEEK_PAGES, PAGE_BYTES, PAGE_EVENTS, SEEK_EVENTS};
use crate::{
    GapPolicy, GapReason, SSE_GAP, SSE_REPLAY_FROM,
    coalesce::{Flights, Page, PageRead},
    telemetry::{self, ReplayKind},
};

/// Where a resumption is.
#[derive(Debug)]
enum Step {
    /// Reading the events after `last` (the client's cursor at first) and sending them.
    Replay,
    /// After a discontinuity: reading on to the log's head without sending; then the signal.
    Seek {
        reason: GapReason,
        from: Option<Arc<str>>,
        head: Option<Arc<str>>,
        pages: usize,
    },
    /// Filtering the live body: events at or before `last` are dropped.
    Filter,
    /// Reading the log after `last` up to the first new live event (`to`), sent before it.
    ///
    /// With `through` (a multi-topic stream's catch-up, [`TopicResume::catch_up`]): up to and
    /// including `to`, with no live event held, then back to filtering.
    Bridge { to: Arc<str>, through: bool },
    /// Joined: everything passes.
    Done,
    /// The stream ends here (a late discontinuity under [`GapPolicy::Header`]).
    End,
}

/// The resumption of one response: the replay, the live join, and the filter.
pub(crate) struct TopicResume {
    log: Arc<dyn DynLog>,
    flights: Arc<Flights>,
    topic: Arc<str>,
    max_replay: usize,
    gap: GapPolicy,
    /// The last position the client has: live events at or before it are dropped.
    last: Option<Arc<str>>,
    replayed: usize,
    step: Step,
    read: Option<PageRead>,
    /// A page being written out, from this index.
    page: Option<(Arc<Replay>, usize)>,
    /// Frames ready to write (a gap signal, the live bytes held during the join).
    out: BytesMut,
    /// The live bytes held while the join reads the log: the first new event and what
    /// followed it in its chunk.
    held: Option<Bytes>,
    // The live filter's parsing state.
    block: BytesMut,
    tracker: FrameBoundary,
    dropped_last: bool,
    /// Whether the live join may read the log (not after the log failed).
    bridge: bool,
    /// Reading before the response headers are sent ([`GapPolicy::Header`]).
    preparing: bool,
    first_read: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl fmt::Debug for TopicResume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicResume")
            .field("topic", &self.topic)
            .field("last", &self.last)
            .field("replayed", &self.replayed)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl TopicResume {
    /// The resumption of `topic` from `last` (`None`: from the topic's start).
    pub(super) fn new(
        log: Arc<dyn DynLog>,
        flights: Arc<Flights>,
        topic: Arc<str>,
        max_replay: usize,
        gap: GapPolicy,
        last: Option<Arc<str>>,
    ) -> Self {
        Self {
            log,
            flights,
            topic,
            max_replay,
            gap,
            last,
            replayed: 0,
            step: Step::Replay,
            read: None,
            page: None,
            out: BytesMut::new(),
            held: None,
            block: BytesMut::new(),
            tracker: FrameBoundary::new(),
            dropped_last: false,
            bridge: true,
            preparing: false,
            first_read: true,
            headers: Vec::new(),
        }
    }

    /// The last position the client has on this topic.
    pub(super) fn last(&self) -> Option<&Arc<str>> {
        self.last.as_ref()
    }

    /// Under [`GapPolicy::Header`]: reads until what the first read tells is known (and, after
    /// a discontinuity, the head), before the response headers go out.
    pub(crate) fn poll_prepare(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.preparing = true;
        while self.first_read || matches!(self.step, Step::Seek { .. }) {
            let page = std::task::ready!(self.poll_read(cx));
            self.on_page(page);
        }
        self.preparing = false;
        Poll::Ready(())
    }

    /// The headers the gap policy asks for.
    pub(crate) fn take_headers(&mut self) -> Vec<(HeaderName, HeaderValue)> {
        std::mem::take(&mut self.headers)
    }

    /// Whether the resumption has frames to write before the live body may be polled.
    pub(crate) fn wants_output(&self) -> bool {
        !self.out.is_empty()
            || self.page.is_some()
            || matches!(
                self.step,
                Step::Replay | Step::Seek { .. } | Step::Bridge { .. } | Step::End
            )
    }

    /// Whether the live body is joined: the resumption has nothing left to do.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.step, Step::Done) && self.out.is_empty() && self.page.is_none()
    }

    /// Whether the stream must end here.
    pub(crate) fn is_end(&self) -> bool {
        matches!(self.step, Step::End) && self.out.is_empty()
    }

    /// The next frame to write before the live body; `None` once there is none.
    pub(crate) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if let Some((page, index)) = self.page.take() {
                self.write_page(page, index);
            }
            if !self.out.is_empty() {
                return Poll::Ready(Some(self.out.split().freeze()));
            }
            if !matches!(
                self.step,
                Step::Replay | Step::Seek { .. } | Step::Bridge { .. }
            ) {
                return Poll::Ready(None);
            }
            let page = std::task::ready!(self.poll_read(cx));
            self.on_page(page);
        }
    }

    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Page> {
        if self.read.is_none() {
            let (cursor, limit) = match &self.step {
                Step::Replay => (
                    self.last.clone(),
                    PAGE_EVENTS.min(self.max_replay - self.replayed).max(1),
                ),
                Step::Seek { from, .. } => (from.clone(), SEEK_EVENTS),
                Step::Bridge { .. } => (self.last.clone(), PAGE_EVENTS),
                _ => unreachable!("no read in this step"),
            };
            self.read = Some(
                self.flights
                    .read(&self.log, &self.topic, cursor.as_ref(), limit),
            );
        }
        let page = std::task::ready!(Pin::new(self.read.as_mut().expect("set above")).poll(cx));
        self.read = None;
        Poll::Ready(page)
    }

    fn on_page(&mut self, page: Page) {
        let first = std::mem::replace(&mut self.first_read, false);
        if first {
            let kind = match &page {
                Ok(page) => ReplayKind::from_outcome(&page.outcome),
                Err(_) => ReplayKind::LogError,
            };
            telemetry::replay(kind, "layer", &self.topic);
        }
        match std::mem::replace(&mut self.step, Step::Done) {
            Step::Replay => match page {
                Err(_) => self.discontinuity(GapReason::LogError, first),
                Ok(page) => match &page.outcome {
                    ReplayOutcome::Gap { .. } => {
                        // The page holds the oldest retained events: the head is at or after
                        // the last of them.
                        let head = page.events.last().map(|e| Arc::clone(e.shared_id()));
                        self.seek(GapReason::Gap, head.clone(), head, page.has_more, first);
                    }
                    ReplayOutcome::Unknown(_) => {
                        self.seek(GapReason::UnknownCursor, None, None, true, first);
                    }
                    _ => {
                        // Under `GapPolicy::Header`, a client beyond the cap is told by
                        // ending the stream after it, whenever that is found.
                        self.step = Step::Replay;
                        self.page = Some((page, 0));
                    }
                },
            },
            Step::Seek {
                reason,
                from,
                head,
                pages,
            } => match page {
                Err(_) => self.discontinuity(GapReason::LogError, first),
                Ok(page) => {
                    let more = page.has_more && !page.events.is_empty();
                    let head = page
                        .events
                        .last()
                        .map(|e| Arc::clone(e.shared_id()))
                        .or(head);
                    let step = Step::Seek {
                        reason,
                        from: head.clone().or(from),
                        head,
                        pages: pages + 1,
                    };
                    self.step = step;
                    if !more || pages + 1 >= MAX_SEEK_PAGES {
                        self.signal();
                    }
                }
            },
            Step::Bridge { to, through } => match page {
                Err(_) => self.bridge_failed(GapReason::LogError),
                Ok(page) if page.outcome.is_discontinuous() => {
                    // The log dropped what lies between the last event sent and the live
                    // body (or lost the position): a gap, whose far side is only known as
                    // "the next live event".
                    let reason = match page.outcome {
                        ReplayOutcome::Unknown(_) => GapReason::UnknownCursor,
                        _ => GapReason::Gap,
                    };
                    self.bridge_failed(reason);
                }
                Ok(page) => {
                    self.step = Step::Bridge { to, through };
                    self.page = Some((page, 0));
                }
            },
            step @ (Step::Filter | Step::Done | Step::End) => self.step = step,
        }
    }

    /// Starts reading on to the head after a discontinuity found by a read.
    fn seek(
        &mut self,
        reason: GapReason,
        from: Option<Arc<str>>,
        head: Option<Arc<str>>,
        more: bool,
        first: bool,
    ) {
        if matches!(self.gap, GapPolicy::Header) && !first {
            self.step = Step::End;
            return;
        }
        self.step = Step::Seek {
            reason,
            from,
            head,
            pages: 0,
        };
        if !more {
            self.signal();
        }
    }

    /// The head is known (or as close as allowed): the signal, then the live join from there.
    fn signal(&mut self) {
        let Step::Seek { reason, head, .. } = std::mem::replace(&mut self.step, Step::Done) else {
            unreachable!("signal after a seek")
        };
        match &self.gap {
            GapPolicy::Event(signal) => {
                self.out
                    .extend_from_slice(&signal.frame(reason, head.as_deref()));
            }
            GapPolicy::Header => self.set_headers(reason, head.as_deref()),
            GapPolicy::Ignore => {}
        }
        // Only events after the head go out now; without a head (the topic held nothing),
        // every live event is new, and the live join reads from the topic's start up to the
        // first one (a handler that subscribes late misses nothing published meanwhile).
        self.step = Step::Filter;
        self.last = head;
    }

    /// A discontinuity found while replaying: the log failed, or the client is too far behind.
    fn discontinuity(&mut self, reason: GapReason, first: bool) {
        match (&self.gap, reason) {
            (GapPolicy::Header, _) if !first => self.step = Step::End,
            (_, GapReason::LogError) => {
                // The head cannot be read: say so, and go on with the live body, dropping
                // what the client already has (ids still compare without the store).
                match &self.gap {
                    GapPolicy::Event(signal) => {
                        self.out.extend_from_slice(&signal.frame(reason, None));
                    }
                    GapPolicy::Header => self.set_headers(reason, None),
                    GapPolicy::Ignore => {}
                }
                self.bridge = false;
                self.step = Step::Filter;
            }
            _ => {
                let from = self.last.clone();
                self.seek(reason, from.clone(), from, true, first);
            }
        }
    }

    /// The live join could not read the log: the signal (without a position: the stream
    /// continues with the held live event), then the live body.
    fn bridge_failed(&mut self, reason: GapReason) {
        match &self.gap {
            GapPolicy::Event(signal) => {
                self.out.extend_from_slice(&signal.frame(reason, None));
            }
            GapPolicy::Header => {
                self.step = Step::End;
                self.held = None;
                return;
            }
            GapPolicy::Ignore => {}
        }
        if let Some(held) = self.held.take() {
            self.out.extend_from_slice(&held);
        }
        self.step = Step::Done;
    }

    fn set_headers(&mut self, reason: GapReason, resume_from: Option<&str>) {
        self.headers
            .push((SSE_GAP, HeaderValue::from_static(reason.as_str())));
        // Ids come from the log, not the client; still, only a valid header value is written.
        if let Some(value) = resume_from.and_then(|id| HeaderValue::from_str(id).ok()) {
            self.headers.push((SSE_REPLAY_FROM, value));
        }
    }

    /// Writes events of `page` from `index` into `out`, up to [`PAGE_BYTES`], and decides what
    /// follows when the page is used up.
    fn write_page(&mut self, page: Arc<Replay>, mut index: usize) {
        let events = &page.events;
        let mut reached = false;
        let replayed_before = self.replayed;
        while index < events.len() {
            let event = &events[index];
            match &self.step {
                Step::Replay if self.replayed == self.max_replay => break,
                Step::Bridge { to, through } => {
                    let past = match self.log.compare_ids(event.id(), to) {
                        Some(Ordering::Less) => false,
                        Some(Ordering::Equal) => !through,
                        _ => true,
                    };
                    if past {
                        reached = true;
                        break;
                    }
                }
                _ => {}
            }
            if self.out.len() >= PAGE_BYTES {
                // The rest of the page after the connection took this frame.
                self.page = Some((page, index));
                telemetry::replayed(self.replayed - replayed_before);
                return;
            }
            self.out.extend_from_slice(event.frame());
            self.last = Some(Arc::clone(event.shared_id()));
            if matches!(self.step, Step::Replay) {
                self.replayed += 1;
            }
            index += 1;
        }
        let rest = index < events.len();
        telemetry::replayed(self.replayed - replayed_before);
        match self.step {
            Step::Replay => {
                if rest || (page.has_more && self.replayed >= self.max_replay) {
                    self.discontinuity(GapReason::TooFarBehind, false);
                } else if !page.has_more || events.is_empty() {
                    // Caught up with the log as it was. (A page claiming more but holding
                    // nothing ends the replay too, rather than reading it again forever.)
                    self.step = Step::Filter;
                }
            }
            Step::Bridge { ref to, through } if reached || !page.has_more || events.is_empty() => {
                if through {
                    // The live source starts after `to`: the client stands there now (a log
                    // that lost events before it without a gap would otherwise be read again
                    // at every live event).
                    self.last = Some(Arc::clone(to));
                    self.step = Step::Filter;
                    return;
                }
                if let Some(held) = self.held.take() {
                    self.out.extend_from_slice(&held);
                }
                self.step = Step::Done;
            }
            _ => {}
        }
    }

    /// Filters the next chunk of the live body: drops events at or before the last position
    /// the client has; at the first newer one, either starts the live join (the returned bytes
    /// go first, then [`poll_output`](Self::poll_output)) or lets everything pass.
    pub(crate) fn filter(&mut self, chunk: Bytes) -> Bytes {
        if !matches!(self.step, Step::Filter) {
            return chunk;
        }
        // Without a position (the topic held nothing), every event the log can order is new,
        // and the live join reads the topic from its start up to the first of them.
        let last = self.last.clone();
        let mut forward = BytesMut::new();
        let mut start = 0;
        let bytes = &chunk[..];
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
            let end = start + offset + 1;
            self.tracker.observe(&bytes[start..end]);
            self.block.extend_from_slice(&bytes[start..end]);
            start = end;
            if !self.tracker.is_between_events() {
                continue;
            }
            let block = self.block.split().freeze();
            let id = match block_id(&block) {
                // The LF of a CRLF whose CR ended the previous block: it goes wherever that
                // block went.
                Block::Blank if self.dropped_last => continue,
                Block::Blank | Block::CommentsOnly => {
                    self.dropped_last = false;
                    forward.extend_from_slice(&block);
                    continue;
                }
                Block::Event(id) => id.and_then(|id| std::str::from_utf8(id).ok()),
            };
            let order = id.and_then(|id| match &last {
                Some(last) => self.log.compare_ids(id, last),
                None => self.log.compare_ids(id, id).map(|_| Ordering::Greater),
            });
            match order {
                Some(Ordering::Less | Ordering::Equal) => {
                    self.dropped_last = true;
                }
                Some(Ordering::Greater) if self.bridge => {
                    let mut held = BytesMut::with_capacity(block.len() + bytes.len() - start);
                    held.extend_from_slice(&block);
                    held.extend_from_slice(&bytes[start..]);
                    self.held = Some(held.freeze());
                    self.step = Step::Bridge {
                        through: false,
                        to: Arc::from(id.expect("ordered ids exist")),
                    };
                    return forward.freeze();
                }
                // A newer event without a join to make, an event without an id, or with an id
                // the log cannot order (the handler's own): the live body is joined.
                _ => {
                    forward.extend_from_slice(&block);
                    forward.extend_from_slice(&bytes[start..]);
                    self.step = Step::Done;
                    return forward.freeze();
                }
            }
        }
        self.tracker.observe(&bytes[start..]);
        self.block.extend_from_slice(&bytes[start..]);
        if self.block.len() > MAX_HELD_EVENT {
            // Too large to hold while deciding: forwarded (a possible duplicate rather than
            // unbounded memory).
            forward.extend_from_slice(&self.block.split());
            self.step = Step::Done;
        }
        forward.freeze()
    }

    /// Starts reading the log after the client's position through `to`, a position the live
    /// source is known to start after (a multi-topic stream learns it from the ids of another
    /// topic's live events), when the client is behind it; whether it did. Only while
    /// filtering: a joined topic gets everything from the live source.
    pub(crate) fn catch_up(&mut self, to: &str) -> bool {
        if !matches!(self.step, Step::Filter) || !self.bridge {
            return false;
        }
        let behind = match &self.last {
            Some(last) => self.log.compare_ids(to, last) == Some(Ordering::Greater),
            None => self.log.compare_ids(to, to).is_some(),
        };
        if behind {
            self.step = Step::Bridge {
                to: Arc::from(to),
                through: true,
            };
        }
        behind
    }

    /// What the filter still holds when the live body ends: an unterminated event, which
    /// clients discard anyway; forwarded unchanged so the layer changes nothing it need not.
    pub(crate) fn finish(self) -> Bytes {
        self.block.freeze()
    }
}

/// The most bytes of one live event held while deciding whether the client already has it.
pub(super) const MAX_HELD_EVENT: usize = 64 * 1024;

pub(super) enum Block<'a> {
    /// Only line ends.
    Blank,
    CommentsOnly,
    /// An event block and its own `id` field, if it has one.
    Event(Option<&'a [u8]>),
}

/// Classifies one complete block (lines up to and including its blank line).
pub(super) fn block_id(block: &[u8]) -> Block<'_> {
    if block.iter().all(|&b| b == b'\n' || b == b'\r') {
        return Block::Blank;
    }
    let mut id = None;
    let mut fields = false;
    for line in block.split(|&b| b == b'\n' || b == b'\r') {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        fields = true;
        let (name, value) = match memchr::memchr(b':', line) {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &b""[..]),
        };
        if name == b"id" && !value.contains(&0) {
            id = Some(value);
        }
    }
    if fields {
        Block::Event(id)
    } else {
        Block::CommentsOnly
    }
}
