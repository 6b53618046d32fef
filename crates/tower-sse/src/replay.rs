//! Last-Event-ID resumption inside the layer: read the log, prefix the live body with what the
//! client missed, and drop live events already replayed.
//!
//! The log is read *after* the handler has produced its response, so that whatever live
//! source the handler opened is already running: every event is then either in the replay,
//! in the live body, or in both. "Both" is the overlap window, and [`EventFilter`] drops those
//! live events by id, up to the first live event that was not replayed. That gives no gap
//! (the replay ends no earlier than where live starts) and no duplicate.

use std::{collections::HashSet, fmt, future::Future, pin::Pin, sync::Arc};

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue, request::Parts};
use tower_sse_core::{EventLog, FrameBoundary, ReplayOutcome};

use crate::{ClientCursor, GapSignal};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The response header [`GapPolicy::Header`] sets: `gap` or `unknown-cursor`.
pub const SSE_GAP: HeaderName = HeaderName::from_static("sse-gap");
/// The response header [`GapPolicy::Header`] sets to the id replay started from, when the
/// log still had events after a gap.
pub const SSE_REPLAY_FROM: HeaderName = HeaderName::from_static("sse-replay-from");

/// How the layer tells a reconnecting client that it missed events it cannot replay: its
/// cursor is older than the log retains, unknown to the log (another epoch, or invalid), more
/// than [`max_replay`](crate::SseLayer::max_replay) events behind, or the log failed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum GapPolicy {
    /// An in-band event (by default of type `sse-gap`) before the replayed events, telling
    /// the client to refetch its state. The default.
    Event(GapSignal),
    /// Response headers: `sse-gap: gap` or `sse-gap: unknown-cursor`, and
    /// `sse-replay-from: <id>` with the oldest id replayed when there is one.
    Header,
    /// Say nothing; the client gets what the log still has.
    Ignore,
}

impl Default for GapPolicy {
    fn default() -> Self {
        Self::Event(GapSignal::default())
    }
}

/// The object-safe face of an [`EventLog`], so that the layer is not generic over the log.
pub(crate) trait DynLog: Send + Sync {
    fn read_page(
        &self,
        topic: String,
        cursor: Arc<str>,
        limit: usize,
    ) -> BoxFuture<Result<tower_sse_core::Replay, BoxError>>;
}

impl<L: EventLog> DynLog for Arc<L> {
    fn read_page(
        &self,
        topic: String,
        cursor: Arc<str>,
        limit: usize,
    ) -> BoxFuture<Result<tower_sse_core::Replay, BoxError>> {
        let log = Arc::clone(self);
        Box::pin(async move {
            log.read_after(&topic, Some(&cursor), limit)
                .await
                .map_err(|e| Box::new(e) as BoxError)
        })
    }
}

type KeyFn = dyn Fn(&Parts) -> String + Send + Sync;

/// The layer's replay settings.
#[derive(Clone)]
pub(crate) struct ReplayConfig {
    pub(crate) log: Option<Arc<dyn DynLog>>,
    key: Arc<KeyFn>,
    pub(crate) max_replay: usize,
    pub(crate) gap: GapPolicy,
}

impl fmt::Debug for ReplayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayConfig")
            .field("max_replay", &self.max_replay)
            .field("gap", &self.gap)
            .finish_non_exhaustive()
    }
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            log: None,
            key: Arc::new(|parts: &Parts| parts.uri.path().to_owned()),
            max_replay: tower_sse_core::DEFAULT_MAX_REPLAY,
            gap: GapPolicy::default(),
        }
    }
}

impl ReplayConfig {
    pub(crate) fn set_log<L: EventLog>(&mut self, log: L) {
        self.log = Some(Arc::new(Arc::new(log)));
    }

    pub(crate) fn set_key<F>(&mut self, key: F)
    where
        F: Fn(&Parts) -> String + Send + Sync + 'static,
    {
        self.key = Arc::new(key);
    }

    /// The stream key of a request that carries a cursor.
    pub(crate) fn key(&self, parts: &Parts) -> String {
        (self.key)(parts)
    }

    /// Reads what the client missed: at most `max_replay` events after its cursor.
    ///
    /// Only called when a log is set.
    pub(crate) fn fetch(&self, key: String, cursor: ClientCursor) -> BoxFuture<ReplayPrefix> {
        let log = Arc::clone(self.log.as_ref().expect("fetch only with a log"));
        let max_replay = self.max_replay;
        let gap = self.gap.clone();
        Box::pin(async move {
            let Some(cursor) = cursor.log_cursor().map(Arc::<str>::from) else {
                return ReplayPrefix::default();
            };
            let mut prefix = ReplayPrefix::default();
            let mut next = cursor;
            let mut first_outcome = None;
            let mut missed = None;
            loop {
                let budget = max_replay - prefix.ids.len();
                // One past the budget tells "exactly at the cap" from "beyond it".
                let page = match log
                    .read_page(key.clone(), next.clone(), budget.min(512) + 1)
                    .await
                {
                    Ok(page) => page,
                    Err(_) => {
                        // The store is unreachable: nothing to replay, and the client must
                        // know it may have missed events. Never an error response.
                        missed = Some(Missed::Gap);
                        break;
                    }
                };
                if first_outcome.is_none() {
                    missed = match &page.outcome {
                        ReplayOutcome::Gap { .. } => Some(Missed::Gap),
                        ReplayOutcome::Unknown(_) => Some(Missed::Unknown),
                        _ => None,
                    };
                    first_outcome = Some(page.outcome.clone());
                }
                let more = page.has_more;
                let mut over = false;
                for event in page.events {
                    if prefix.ids.len() == max_replay {
                        over = true;
                        break;
                    }
                    let (id, frame) = event.into_parts();
                    next = Arc::clone(&id);
                    prefix.first_id.get_or_insert_with(|| Arc::clone(&id));
                    prefix.ids.insert(id);
                    prefix.frames.push(frame);
                }
                if over || (more && prefix.ids.len() == max_replay) {
                    // Too far behind: send the newest part is not possible without reading
                    // it all, so send what fits and signal the rest as a gap.
                    missed.get_or_insert(Missed::Gap);
                    break;
                }
                if !more {
                    break;
                }
            }
            prefix.apply(&gap, missed);
            prefix
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Missed {
    Gap,
    Unknown,
}

/// What goes before the live body: replayed frames, the ids to drop from the live body, and
/// the headers the gap policy asks for.
#[derive(Debug, Default)]
pub(crate) struct ReplayPrefix {
    pub(crate) frames: Vec<Bytes>,
    pub(crate) ids: HashSet<Arc<str>>,
    first_id: Option<Arc<str>>,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
}

impl ReplayPrefix {
    fn apply(&mut self, gap: &GapPolicy, missed: Option<Missed>) {
        let Some(missed) = missed else { return };
        match gap {
            GapPolicy::Event(signal) => {
                let reason = match missed {
                    Missed::Gap => crate::GapReason::Gap,
                    Missed::Unknown => crate::GapReason::UnknownCursor,
                };
                self.frames.insert(0, signal.frame(reason, None));
            }
            GapPolicy::Header => {
                let value = match missed {
                    Missed::Gap => "gap",
                    Missed::Unknown => "unknown-cursor",
                };
                self.headers
                    .push((SSE_GAP, HeaderValue::from_static(value)));
                // Ids come from the log, not the client; still, only a valid header value
                // is ever written.
                if let Some(first) = &self.first_id {
                    if let Ok(value) = HeaderValue::from_str(first) {
                        self.headers.push((SSE_REPLAY_FROM, value));
                    }
                }
            }
            GapPolicy::Ignore => {}
        }
    }

    /// `priming` followed by the replayed frames, as one body frame (they are all ready at
    /// once, and joining them here copies each byte once); `None` when nothing was replayed.
    pub(crate) fn take_first_frame(&mut self, priming: &[u8]) -> Option<Bytes> {
        if self.frames.is_empty() {
            return None;
        }
        let frames = std::mem::take(&mut self.frames);
        let len = priming.len() + frames.iter().map(Bytes::len).sum::<usize>();
        let mut joined = BytesMut::with_capacity(len);
        joined.extend_from_slice(priming);
        for frame in frames {
            joined.extend_from_slice(&frame);
        }
        Some(joined.freeze())
    }

    /// The filter for the live body, when anything was replayed.
    pub(crate) fn take_filter(&mut self) -> Option<EventFilter> {
        (!self.ids.is_empty()).then(|| EventFilter::new(std::mem::take(&mut self.ids)))
    }
}

/// The most bytes of one live event held while deciding whether it was replayed; past it the
/// filter gives up and forwards (a possible duplicate rather than unbounded memory).
const MAX_HELD_EVENT: usize = 64 * 1024;

/// Drops live events whose id was already replayed, until the first live event that was not.
#[derive(Debug)]
pub(crate) struct EventFilter {
    replayed: HashSet<Arc<str>>,
    held: BytesMut,
    tracker: FrameBoundary,
    dropped_last: bool,
}

/// What the filter lets through for one chunk of the live body.
#[derive(Debug)]
pub(crate) struct Filtered {
    pub(crate) forward: Bytes,
    /// The filter has seen a live event that was not replayed: everything after passes.
    pub(crate) done: bool,
}

impl EventFilter {
    fn new(replayed: HashSet<Arc<str>>) -> Self {
        Self {
            replayed,
            held: BytesMut::new(),
            tracker: FrameBoundary::new(),
            dropped_last: false,
        }
    }

    /// Feeds the next chunk of the live body.
    pub(crate) fn push(&mut self, chunk: Bytes) -> Filtered {
        let mut forward = BytesMut::new();
        let mut start = 0;
        let bytes = &chunk[..];
        while let Some(offset) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) {
            let end = start + offset + 1;
            self.tracker.observe(&bytes[start..end]);
            self.held.extend_from_slice(&bytes[start..end]);
            start = end;
            if self.tracker.is_between_events() {
                let block = self.held.split().freeze();
                match block_id(&block) {
                    // The LF of a CRLF whose CR ended the previous block: it goes wherever
                    // that block went.
                    Block::Blank if self.dropped_last => {}
                    Block::Blank | Block::CommentsOnly => {
                        self.dropped_last = false;
                        forward.extend_from_slice(&block);
                    }
                    Block::Event(Some(id))
                        if std::str::from_utf8(id).is_ok_and(|id| self.replayed.contains(id)) =>
                    {
                        self.dropped_last = true;
                    }
                    Block::Event(_) => {
                        forward.extend_from_slice(&block);
                        forward.extend_from_slice(&bytes[start..]);
                        return Filtered {
                            forward: forward.freeze(),
                            done: true,
                        };
                    }
                }
            }
        }
        self.tracker.observe(&bytes[start..]);
        self.held.extend_from_slice(&bytes[start..]);
        if self.held.len() > MAX_HELD_EVENT {
            forward.extend_from_slice(&self.held.split());
            return Filtered {
                forward: forward.freeze(),
                done: true,
            };
        }
        Filtered {
            forward: forward.freeze(),
            done: false,
        }
    }

    /// What is still held when the live body ends: an unterminated event, which clients
    /// discard anyway; forwarded unchanged so the layer changes nothing it need not.
    pub(crate) fn finish(self) -> Bytes {
        self.held.freeze()
    }
}

enum Block<'a> {
    /// Only line ends.
    Blank,
    CommentsOnly,
    /// An event block and its own `id` field, if it has one.
    Event(Option<&'a [u8]>),
}

/// Classifies one complete block (lines up to and including its blank line).
fn block_id(block: &[u8]) -> Block<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(ids: &[&str]) -> EventFilter {
        EventFilter::new(ids.iter().map(|s| Arc::from(*s)).collect())
    }

    #[test]
    fn drops_replayed_events_until_a_new_one() {
        let mut f = filter(&["1", "2"]);
        let out = f.push(Bytes::from_static(
            b"id: 1\ndata: a\n\n:hb\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\nid: 1\ndata: again\n\n",
        ));
        assert!(out.done);
        assert_eq!(
            &out.forward[..],
            b":hb\n\nid: 3\ndata: c\n\nid: 1\ndata: again\n\n"
        );
    }

    #[test]
    fn events_split_across_chunks() {
        let mut f = filter(&["7"]);
        let a = f.push(Bytes::from_static(b"id: 7\nda"));
        assert!(!a.done && a.forward.is_empty());
        // The replayed event ends and a new one starts; it is held until it is complete.
        let b = f.push(Bytes::from_static(b"ta: x\r\n\r\nid: 8\r\ndata: y"));
        assert!(!b.done && b.forward.is_empty());
        let c = f.push(Bytes::from_static(b"\r\n\r\ndata: z"));
        assert!(c.done);
        assert_eq!(&c.forward[..], b"id: 8\r\ndata: y\r\n\r\ndata: z");
    }

    #[test]
    fn an_event_without_id_ends_filtering() {
        let mut f = filter(&["1"]);
        let out = f.push(Bytes::from_static(b"data: no id\n\n"));
        assert!(out.done);
        assert_eq!(&out.forward[..], b"data: no id\n\n");
    }

    #[test]
    fn an_oversized_event_is_forwarded() {
        let mut f = filter(&["1"]);
        let big = Bytes::from(vec![b'x'; MAX_HELD_EVENT + 1]);
        let out = f.push(big);
        assert!(out.done);
        assert_eq!(out.forward.len(), MAX_HELD_EVENT + 1);
    }
}
