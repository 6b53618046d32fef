//! One gap rule for the layer's replay and the hub's subscribe and catch-up.
//!
//! A reconnecting client gets a contiguous run of the events that follow its cursor, at most
//! [`DEFAULT_MAX_REPLAY`](crate::DEFAULT_MAX_REPLAY) of them unless configured otherwise. When
//! that run cannot reach the live feed — the log dropped events after the cursor (retention),
//! the cursor is not a position of this topic, the client is further behind than the cap, or
//! the log failed — the stream carries a **gap signal at the discontinuity**:
//!
//! 1. first the contiguous events that could be replayed (none for an unknown cursor, a
//!    retention gap or a log error);
//! 2. then the gap signal, whose `id` is the position the stream continues from (so the
//!    client's `lastEventId` moves there) and whose data names the reason and that position;
//! 3. then only events after that position, live.
//!
//! Events the log still retains but that lie before the signal's position are never sent
//! after it: a client refetches its state when it sees the signal, and applying older events
//! after that refetch would make its state stale. The reason `log-error` tells a failure of the
//! store apart from a real gap.

use std::{borrow::Cow, fmt};

use bytes::{Bytes, BytesMut};
use http::HeaderName;
use tower_sse_core::Event;

/// The response header [`GapPolicy::Header`] sets: `gap`, `unknown-cursor` or `log-error`.
pub const SSE_GAP: HeaderName = HeaderName::from_static("sse-gap");
/// The response header [`GapPolicy::Header`] sets, with [`SSE_GAP`], to the position the
/// stream continues from (the events that follow are those after it); absent when the log has
/// no position for the topic.
pub const SSE_REPLAY_FROM: HeaderName = HeaderName::from_static("sse-replay-from");

/// How the layer tells a reconnecting client that it missed events it cannot replay: its
/// cursor is older than the log retains, unknown to the log (another epoch, another topic, or
/// invalid), more than [`max_replay`](crate::SseLayer::max_replay) events behind, or the log
/// failed.
///
/// Whatever the policy, the stream never carries a silent gap and never a duplicate; see
/// [`GapSignal`] for the rule.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum GapPolicy {
    /// An in-band event (by default of type `sse-gap`) at the discontinuity: after the events
    /// that could be replayed, carrying the position the stream continues from. The default.
    Event(GapSignal),
    /// Response headers: `sse-gap: gap`, `sse-gap: unknown-cursor` or `sse-gap: log-error`,
    /// and `sse-replay-from: <id>`, the position the stream continues from.
    ///
    /// Headers go out before the body, so they report what the *first* read of the log tells
    /// (a retention gap, an unknown cursor, a failed log). What can only be known later ends
    /// the stream instead, right after the last contiguous event: a client more than
    /// `max_replay` behind gets that many events per connection and continues on reconnect (so
    /// it misses nothing), and a log that fails mid-replay is retried on reconnect.
    Header,
    /// Say nothing: after a discontinuity the stream continues from the log's head.
    Ignore,
}

impl Default for GapPolicy {
    fn default() -> Self {
        Self::Event(GapSignal::default())
    }
}

/// Why a replay could not continue the client's cursor up to the live feed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GapReason {
    /// The log dropped events after the cursor (retention).
    Gap,
    /// The cursor is not a position of this topic in this log: malformed, another epoch,
    /// another topic, or ahead of the log.
    UnknownCursor,
    /// The client is more than the replay cap behind.
    TooFarBehind,
    /// The log failed while replaying; the client may have missed events.
    LogError,
}

impl GapReason {
    /// The reason as written in the signal's data: `gap`, `unknown-cursor`,
    /// `too-far-behind` or `log-error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gap => "gap",
            Self::UnknownCursor => "unknown-cursor",
            Self::TooFarBehind => "too-far-behind",
            Self::LogError => "log-error",
        }
    }
}

impl fmt::Display for GapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The in-band event that tells a client it missed events and should refetch its state.
///
/// An ordinary event with a configurable type (default `sse-gap`), sent at the point of the
/// discontinuity (see the module docs). Its data is JSON,
/// `{"reason":"gap","resume_from":"<id>"}`, where `resume_from` is the position the stream
/// continues from (`null` when the log has no position for the topic yet), and its `id` field
/// is that position (empty when there is none), so a client that reconnects after it resumes
/// from there. Listen for it with `source.addEventListener("sse-gap", refetch)`.
#[derive(Clone, Debug)]
pub struct GapSignal {
    event_type: Cow<'static, str>,
}

impl Default for GapSignal {
    fn default() -> Self {
        Self {
            event_type: Cow::Borrowed("sse-gap"),
        }
    }
}

impl GapSignal {
    /// A gap signal sent as an event of type `event_type`.
    ///
    /// # Errors
    ///
    /// If `event_type` contains CR, LF or NUL.
    pub fn new(
        event_type: impl Into<Cow<'static, str>>,
    ) -> Result<Self, tower_sse_core::EventError> {
        let event_type = event_type.into();
        Event::new().event(&*event_type)?;
        Ok(Self { event_type })
    }

    /// The event type the signal is sent as.
    pub fn event_type(&self) -> &str {
        &self.event_type
    }

    /// The encoded signal: `reason`, and the position the stream continues from.
    ///
    /// `resume_from` is an id the log issued (never a client's value); an id a log could not
    /// have issued (CR, LF or NUL) is left out rather than written.
    pub fn frame(&self, reason: GapReason, resume_from: Option<&str>) -> Bytes {
        let resume_from = resume_from.filter(|id| !id.contains(['\r', '\n', '\0']));
        let mut data = String::with_capacity(48 + resume_from.map_or(0, str::len));
        data.push_str(r#"{"reason":""#);
        data.push_str(reason.as_str());
        data.push_str(r#"","resume_from":"#);
        match resume_from {
            Some(id) => {
                data.push('"');
                for c in id.chars() {
                    match c {
                        '"' => data.push_str("\\\""),
                        '\\' => data.push_str("\\\\"),
                        c if u32::from(c) < 0x20 => {
                            data.push_str(&format!("\\u{:04x}", u32::from(c)));
                        }
                        c => data.push(c),
                    }
                }
                data.push('"');
            }
            None => data.push_str("null"),
        }
        data.push('}');
        let mut buf = BytesMut::new();
        Event::new()
            .event(&*self.event_type)
            .expect("validated in GapSignal::new")
            .id(resume_from.unwrap_or(""))
            .expect("CR, LF and NUL filtered above")
            .data(data)
            .encode(&mut buf);
        buf.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signal_carries_the_position_as_id_and_in_its_data() {
        let frame = GapSignal::default().frame(GapReason::TooFarBehind, Some("abc-12"));
        assert_eq!(
            &frame[..],
            b"id: abc-12\nevent: sse-gap\ndata: {\"reason\":\"too-far-behind\",\"resume_from\":\"abc-12\"}\n\n"
        );
    }

    #[test]
    fn without_a_position_the_id_is_reset() {
        let frame = GapSignal::default().frame(GapReason::UnknownCursor, None);
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(text.contains("\"resume_from\":null"), "{text}");
        assert!(text.lines().any(|l| l == "id:"), "{text}");
    }
}
