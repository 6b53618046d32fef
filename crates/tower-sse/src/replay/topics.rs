//! The layer's resumption of a stream of several topics ([`SseLayer::stream_topics`]).
//!
//! Each topic of the set gets the single-topic machinery of the parent module (a
//! [`TopicResume`]: paged replay, the gap rule, the live filter, and the live join that reads
//! the log up to a late live event), fed with that topic's log ids. This module only routes
//! and rewrites:
//!
//! - **Replay**: the topics are replayed one after the other, in the order of the set, each
//!   from its position in the client's composite cursor (from its start when the position is
//!   empty; every topic as an unknown cursor when the cursor is not one of this set).
//! - **Ids**: every event that leaves carries the composite cursor of the positions the client
//!   then has, `<topic> m1.<hash>.<positions>`, written by [`TopicSet::encode_cursor`] as the
//!   hub writes it, so a client resumes from any of them. The positions are those of the
//!   events sent on *this* stream, not those of the handler's live source, which may have
//!   started later.
//! - **Live**: the handler's events carry the ids a hub subscription of the same set writes
//!   ([`Hub::subscribe_topics`](crate::Hub::subscribe_topics) with no cursor); each event's
//!   topic and log id are read from its id, and the event goes through its topic's filter
//!   with that log id (dropped when the client has it; the live join of that topic when it is
//!   the first newer one). The positions the id names for the *other* topics are where the
//!   source starts on them: a topic the client is behind on is read from the log up to there
//!   at once. Events whose id is not a cursor of the set (the handler's own) pass unchanged.
//!   Once every topic is joined and an event's id needed no rewrite, the source writes the
//!   client's cursor itself, and the stream passes through untouched.
//!
//! [`SseLayer::stream_topics`]: crate::SseLayer::stream_topics

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use tower_sse_core::{FrameBoundary, TopicSet};

use super::{
    DynLog, ReplayConfig, TopicResume,
    topic::{Block, MAX_HELD_EVENT, block_id},
};
use crate::{SSE_GAP, SSE_REPLAY_FROM, id_field::replace_id};

/// What a log reads as an unknown cursor: NUL is in no log id (the log conformance suite
/// checks it).
const UNKNOWN_CURSOR: &str = "\0unknown-composite-cursor";

/// A live event's topic, the event with that topic's log id, and the source's positions.
type Routed = (usize, Bytes, Vec<Option<Arc<str>>>);

/// The resumption of a stream of several topics.
pub(crate) struct TopicsResume {
    set: TopicSet,
    /// One per topic of the set, in its order.
    topics: Vec<TopicResume>,
    /// The last position the client has on each topic: what the next id says.
    positions: Vec<Option<Arc<str>>>,
    /// The topic being replayed; `topics.len()` once every replay is sent.
    replaying: usize,
    /// Under [`GapPolicy::Header`](crate::GapPolicy::Header): the topics prepared so far.
    prepared: usize,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The topic whose live join is under way, and the live bytes that follow its event.
    bridging: Option<usize>,
    pending: Bytes,
    /// Rewritten frames ready to write.
    out: BytesMut,
    end: bool,
    // The live body's parsing state.
    block: BytesMut,
    tracker: FrameBoundary,
    dropped_last: bool,
    /// Forwarding an event too large to hold, as it is, up to its end.
    passing: bool,
    /// The live source's ids are the client's cursor: nothing left to do.
    joined: bool,
}

impl fmt::Debug for TopicsResume {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicsResume")
            .field("set", &self.set)
            .field("positions", &self.positions)
            .field("replaying", &self.replaying)
            .field("bridging", &self.bridging)
            .finish_non_exhaustive()
    }
}

impl TopicsResume {
    /// Resumes `set` from the client's `cursor` (a composite cursor of the set, or anything
    /// else, which is unknown to every topic).
    pub(super) fn new(
        config: &ReplayConfig,
        log: &Arc<dyn DynLog>,
        set: TopicSet,
        cursor: &str,
    ) -> Self {
        let parsed = set.parse_cursor(cursor);
        let topics = set
            .names()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let last = match &parsed {
                    Some(positions) => positions[i].clone(),
                    None => Some(Arc::from(UNKNOWN_CURSOR)),
                };
                config.topic(log, Arc::clone(name.as_shared()), last)
            })
            .collect();
        let positions = parsed.unwrap_or_else(|| vec![None; set.len()]);
        Self {
            set,
            topics,
            positions,
            replaying: 0,
            prepared: 0,
            headers: Vec::new(),
            bridging: None,
            pending: Bytes::new(),
            out: BytesMut::new(),
            end: false,
            block: BytesMut::new(),
            tracker: FrameBoundary::new(),
            dropped_last: false,
            passing: false,
            joined: false,
        }
    }

    /// Prepares every topic in turn; then one `sse-gap` header (the first topic's reason) and
    /// `sse-replay-from` with the composite cursor the stream continues from.
    pub(super) fn poll_prepare(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Some(topic) = self.topics.get_mut(self.prepared) {
            ready!(topic.poll_prepare(cx));
            self.prepared += 1;
        }
        let mut first = None;
        for (i, topic) in self.topics.iter_mut().enumerate() {
            let reason = topic
                .take_headers()
                .into_iter()
                .find_map(|(name, value)| (name == SSE_GAP).then_some(value));
            if let Some(reason) = reason {
                first.get_or_insert((i, reason));
            }
            // A topic past a discontinuity continues from its head; the others from the
            // client's position.
            self.positions[i] = topic.last().cloned();
        }
        if let Some((i, reason)) = first {
            self.headers.push((SSE_GAP, reason));
            let from = self.set.encode_cursor(i, &self.positions);
            if let Ok(value) = HeaderValue::from_str(&from) {
                self.headers.push((SSE_REPLAY_FROM, value));
            }
        }
        Poll::Ready(())
    }

    pub(super) fn take_headers(&mut self) -> Vec<(HeaderName, HeaderValue)> {
        std::mem::take(&mut self.headers)
    }

    pub(super) fn wants_output(&self) -> bool {
        !self.out.is_empty()
            || self.end
            || self.bridging.is_some()
            || self.replaying < self.topics.len()
    }

    /// Whether the stream is joined: every topic's filter is done and the live source writes
    /// the same cursors as this stream would (once one of its events needed no rewrite).
    pub(super) fn is_done(&self) -> bool {
        self.joined && self.out.is_empty() && self.bridging.is_none()
    }

    pub(super) fn is_end(&self) -> bool {
        self.end && self.out.is_empty()
    }

    pub(super) fn poll_output(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            if !self.out.is_empty() {
                return Poll::Ready(Some(self.out.split().freeze()));
            }
            if self.end {
                return Poll::Ready(None);
            }
            // The replays, one topic after the other; then a live join under way.
            let i = match self.bridging {
                Some(i) => i,
                None if self.replaying < self.topics.len() => self.replaying,
                None => return Poll::Ready(None),
            };
            match ready!(self.topics[i].poll_output(cx)) {
                Some(frame) => self.rewrite(i, &frame),
                None if self.topics[i].is_end() => self.end = true,
                None if self.bridging.is_some() => {
                    // Joined: the live bytes held behind the event go on.
                    self.bridging = None;
                    let pending = std::mem::take(&mut self.pending);
                    let forward = self.process(pending);
                    self.out.extend_from_slice(&forward);
                }
                None => self.replaying += 1,
            }
        }
    }

    /// Filters a chunk of the live body: each event through its topic's filter, its id
    /// rewritten to the stream's cursor.
    pub(super) fn filter(&mut self, chunk: Bytes) -> Bytes {
        if self.bridging.is_some() {
            // Not polled while a join is under way; kept in order if it is.
            let mut pending = BytesMut::from(&self.pending[..]);
            pending.extend_from_slice(&chunk);
            self.pending = pending.freeze();
            return Bytes::new();
        }
        self.process(chunk)
    }

    pub(super) fn finish(self) -> Bytes {
        let mut rest = self.block;
        rest.extend_from_slice(&self.pending);
        rest.freeze()
    }

    /// Routes the complete blocks of `bytes`; stops at an event that starts a live join,
    /// keeping what follows in `pending`.
    fn process(&mut self, bytes: Bytes) -> Bytes {
        let mut forward = BytesMut::new();
        let mut start = 0;
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
            let end = start + offset + 1;
            let line = &bytes[start..end];
            start = end;
            self.tracker.observe(line);
            if self.passing {
                forward.extend_from_slice(line);
                self.passing = !self.tracker.is_between_events();
                continue;
            }
            self.block.extend_from_slice(line);
            if !self.tracker.is_between_events() {
                continue;
            }
            let block = self.block.split().freeze();
            let routed = match block_id(&block) {
                // The LF of a CRLF whose CR ended a dropped event.
                Block::Blank if self.dropped_last => continue,
                Block::Blank | Block::CommentsOnly => None,
                Block::Event(id) => id.and_then(|id| self.route(id, &block)),
            };
            let Some((i, plain, positions)) = routed else {
                self.dropped_last = false;
                forward.extend_from_slice(&block);
                continue;
            };
            // The live source's position on every other topic: what it will not deliver.
            // A topic the client is behind on is read up to there first, so that a quiet
            // topic does not wait for its own next event (the source may have started late).
            let behind = positions.iter().enumerate().find_map(|(j, position)| {
                let position = position.as_deref().filter(|_| j != i)?;
                self.topics[j].catch_up(position).then_some(j)
            });
            if let Some(j) = behind {
                // This event is routed again once topic `j` has caught up.
                self.bridging = Some(j);
                let mut again = BytesMut::from(&block[..]);
                again.extend_from_slice(&bytes[start..]);
                self.pending = again.freeze();
                return forward.freeze();
            }
            let passed = self.topics[i].filter(plain);
            self.dropped_last = passed.is_empty();
            let rewritten = self.rewritten(i, &passed);
            forward.extend_from_slice(&rewritten);
            if self.topics[i].wants_output() {
                // The live join of topic `i` reads the log before this event goes out.
                self.bridging = Some(i);
                self.pending = bytes.slice(start..);
                return forward.freeze();
            }
            if rewritten[..] == block[..] && self.topics.iter().all(TopicResume::is_done) {
                // Every topic is joined and the source's cursor is the client's: from here on
                // its ids are what this stream would write, so everything passes as it is.
                self.joined = true;
                forward.extend_from_slice(&bytes[start..]);
                return forward.freeze();
            }
        }
        let rest = &bytes[start..];
        self.tracker.observe(rest);
        if self.passing {
            forward.extend_from_slice(rest);
        } else {
            self.block.extend_from_slice(rest);
            if self.block.len() > MAX_HELD_EVENT {
                // Too large to hold while deciding: forwarded as it is (a possible duplicate,
                // with the source's id, rather than unbounded memory).
                forward.extend_from_slice(&self.block.split());
                self.passing = !self.tracker.is_between_events();
            }
        }
        forward.freeze()
    }

    /// The topic of a live event whose id is `id`, the event with its topic's log id, and the
    /// positions its id names.
    fn route(&self, id: &[u8], block: &[u8]) -> Option<Routed> {
        let id = std::str::from_utf8(id).ok()?;
        let (label, _) = id.split_once(' ')?;
        let i = self
            .set
            .names()
            .binary_search_by(|name| name.as_str().cmp(label))
            .ok()?;
        let positions = self.set.parse_cursor(id)?;
        // No position: an event of the topic without one (a gap signal with no head).
        let plain = replace_id(block, positions[i].as_deref().unwrap_or(""));
        Some((i, plain, positions))
    }

    /// Appends `frames` (whole events of topic `i`) to the output, ids rewritten.
    fn rewrite(&mut self, i: usize, frames: &[u8]) {
        let rewritten = self.rewritten(i, frames);
        self.out.extend_from_slice(&rewritten);
    }

    /// `frames` (whole blocks of topic `i`) with each event's id replaced by the composite
    /// cursor, the topic's position moved to it first. An event with an empty id (a gap
    /// signal without a position) leaves the position.
    fn rewritten(&mut self, i: usize, frames: &[u8]) -> BytesMut {
        let mut out = BytesMut::with_capacity(frames.len() + frames.len() / 2);
        for block in Blocks::new(frames) {
            let id = match block_id(block) {
                Block::Event(id) => id.unwrap_or(b""),
                Block::Blank | Block::CommentsOnly => {
                    out.extend_from_slice(block);
                    continue;
                }
            };
            if let Ok(id) = std::str::from_utf8(id) {
                if !id.is_empty() {
                    self.positions[i] = Some(Arc::from(id));
                }
            }
            let cursor = self.set.encode_cursor(i, &self.positions);
            out.extend_from_slice(&replace_id(block, &cursor));
        }
        out
    }
}

/// The complete blocks of `bytes` (an event's lines up to and including the blank line that
/// ends it; comment and blank lines between events one by one); a trailing incomplete block
/// comes last, as it is.
struct Blocks<'a> {
    bytes: &'a [u8],
    tracker: FrameBoundary,
}

impl<'a> Blocks<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            tracker: FrameBoundary::new(),
        }
    }
}

impl<'a> Iterator for Blocks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.bytes.is_empty() {
            return None;
        }
        let mut end = 0;
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &self.bytes[end..]) {
            let line_end = end + offset + 1;
            self.tracker.observe(&self.bytes[end..line_end]);
            end = line_end;
            if self.tracker.is_between_events() {
                let (block, rest) = self.bytes.split_at(end);
                self.bytes = rest;
                return Some(block);
            }
        }
        let block = self.bytes;
        self.bytes = &[];
        Some(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_split_at_blank_lines() {
        let frames = b"id: 1\ndata: a\n\n:c\n\nid: 2\r\ndata: b\r\n\r\ndata: tail";
        let blocks: Vec<&[u8]> = Blocks::new(frames).collect();
        assert_eq!(
            blocks,
            [
                &b"id: 1\ndata: a\n\n"[..],
                // A comment line opens no event: it is a block of its own.
                b":c\n",
                b"\n",
                b"id: 2\r\ndata: b\r\n\r",
                b"\n",
                b"data: tail",
            ]
        );
    }
}
