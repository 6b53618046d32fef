//! [`EventStream`]: the body of an event-stream response, as the layer rewrites it.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use pin_project_lite::pin_project;
use tower_sse_core::FrameBoundary;

use crate::{
    ShutdownSignal,
    alarm::{Alarm, Alarms},
    joined::Joined,
    layer::Config,
    replay::Resume,
    telemetry::{CloseReason, RequestInfo, StreamTelemetry},
};

const BOM: &[u8] = b"\xEF\xBB\xBF";
/// `bom_seen` once the start of the stream has been checked for a byte order mark.
const BOM_CHECKED: u8 = u8::MAX;
/// The most inner frames joined into one, so that a body yielding empty frames forever cannot
/// keep the connection task busy.
const MAX_JOINED_FRAMES: usize = 1024;

/// Where an event stream is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet: the priming frame goes first.
    Priming,
    /// Forwarding the inner body, with heartbeats while it is idle.
    Live,
    /// Asked to end (shutdown or lifetime) while inside an event: forwarding up to the end of
    /// that event.
    Draining,
    /// At an event boundary and asked to end: the final event, if any, then the end.
    Closing,
    Done,
}

pin_project! {
    /// The inner body of an event stream, with priming, heartbeats and a managed end.
    pub(crate) struct EventStream<B> {
        #[pin]
        inner: B,
        config: Arc<Config>,
        alarms: Option<Pin<Box<Alarms>>>,
        // Follows every byte written to the client, injected frames included.
        tracker: FrameBoundary,
        phase: Phase,
        // How many bytes of a byte order mark the inner body has sent (and the layer held
        // back) so far, or `BOM_CHECKED`.
        bom_seen: u8,
        inner_done: bool,
        // A non-data frame (trailers) that arrived behind data still to be written.
        stashed: Option<Box<Frame<Bytes>>>,
        // The replay from the log and the join with the live body, until joined.
        resume: Option<Box<Resume>>,
        telemetry: StreamTelemetry,
    }
}

impl<B> EventStream<B> {
    pub(crate) fn new(
        inner: B,
        config: Arc<Config>,
        resume: Option<Box<Resume>>,
        info: RequestInfo,
    ) -> Self {
        Self {
            telemetry: StreamTelemetry::open(&config.telemetry, info),
            resume,
            inner,
            config,
            alarms: None,
            tracker: FrameBoundary::new(),
            phase: Phase::Priming,
            bom_seen: 0,
            inner_done: false,
            stashed: None,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.phase == Phase::Done
    }
}

impl<B: Body<Data = Bytes>> EventStream<B> {
    pub(crate) fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let poll = self.as_mut().poll_phases(cx);
        let this = self.project();
        this.telemetry
            .on_poll(&poll, this.tracker, *this.inner_done);
        poll
    }

    fn poll_phases(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        loop {
            match *this.phase {
                Phase::Priming => {
                    *this.alarms = Alarms::new(this.config);
                    *this.phase = if shutdown_triggered(this.config) {
                        this.telemetry.ending(CloseReason::Shutdown);
                        Phase::Draining
                    } else {
                        Phase::Live
                    };
                    this.telemetry.priming();
                    return Poll::Ready(Some(Ok(write(this.tracker, &this.config.priming_frame))));
                }
                Phase::Live | Phase::Draining => {}
                Phase::Closing => {
                    *this.phase = Phase::Done;
                    if let Some(event) = &this.config.final_event {
                        return Poll::Ready(Some(Ok(write(this.tracker, event))));
                    }
                    continue;
                }
                Phase::Done => return Poll::Ready(None),
            }

            if let Some(frame) = this.stashed.take() {
                return Poll::Ready(Some(Ok(*frame)));
            }
            if *this.inner_done {
                *this.phase = Phase::Done;
                continue;
            }
            if *this.phase == Phase::Live && shutdown_triggered(this.config) {
                this.telemetry.ending(CloseReason::Shutdown);
                *this.phase = Phase::Draining;
            }
            if *this.phase == Phase::Draining && this.tracker.is_between_events() {
                *this.phase = Phase::Closing;
                continue;
            }

            // The replay, and the live join, go before the live body; they are whole events,
            // so the stream stays between events.
            let mut busy = false;
            if let Some(resume) = this.resume.as_mut() {
                if resume.wants_output() {
                    match resume.poll_output(cx) {
                        Poll::Ready(Some(bytes)) => {
                            return Poll::Ready(Some(Ok(write(this.tracker, &bytes))));
                        }
                        Poll::Ready(None) => {
                            if resume.is_end() {
                                *this.resume = None;
                                *this.phase = Phase::Done;
                            } else if resume.is_done() {
                                *this.resume = None;
                            }
                            continue;
                        }
                        // Waiting for the log: heartbeats and shutdown still apply.
                        Poll::Pending => busy = true,
                    }
                }
            }

            // Made at the first ready frame: an idle poll, the most common one, builds none.
            let mut gathered: Option<Joined> = None;
            let limit = this.config.coalesce_limit;
            let stop = if busy {
                Stop::Pending
            } else {
                loop {
                    let frame = match this.inner.as_mut().poll_frame(cx) {
                        Poll::Pending => break Stop::Pending,
                        Poll::Ready(None) => {
                            *this.inner_done = true;
                            if let Some(resume) = this.resume.take() {
                                let held = resume.finish();
                                this.tracker.observe(&held);
                                joined(&mut gathered, limit).push(held);
                            }
                            break Stop::Changed;
                        }
                        // The connection is dropped on error; what was gathered goes with it.
                        Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                        Poll::Ready(Some(Ok(frame))) => frame,
                    };
                    let mut data = match frame.into_data() {
                        Ok(data) => {
                            let data = strip_bom(this.bom_seen, data);
                            match this.resume.as_mut() {
                                Some(resume) => {
                                    let forward = resume.filter(data);
                                    if resume.is_done() {
                                        *this.resume = None;
                                    } else if resume.wants_output() {
                                        // The live join reads the log before the rest.
                                        this.tracker.observe(&forward);
                                        joined(&mut gathered, limit).push(forward);
                                        break Stop::Changed;
                                    }
                                    forward
                                }
                                None => data,
                            }
                        }
                        Err(frame) => {
                            *this.stashed = Some(Box::new(frame));
                            break Stop::Changed;
                        }
                    };
                    if *this.phase == Phase::Draining {
                        if let Some(end) = observe_to_boundary(this.tracker, &data) {
                            data.truncate(end);
                            joined(&mut gathered, limit).push(data);
                            *this.phase = Phase::Closing;
                            break Stop::Changed;
                        }
                    } else {
                        this.tracker.observe(&data);
                    }
                    let joined = joined(&mut gathered, limit);
                    joined.push(data);
                    if joined.len >= limit.max(1) {
                        break Stop::Full;
                    }
                    joined.frames += 1;
                    if joined.frames >= MAX_JOINED_FRAMES {
                        break Stop::Full;
                    }
                }
            };

            if let Some(data) = gathered.and_then(Joined::finish) {
                if let Some(alarms) = this.alarms.as_mut() {
                    if alarms.as_mut().on_frame() && *this.phase == Phase::Live {
                        this.telemetry.ending(CloseReason::Lifetime);
                        *this.phase = Phase::Draining;
                    }
                }
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            match stop {
                Stop::Changed => continue,
                Stop::Full => {
                    // Only empty frames so far: yield to other tasks, then go on.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Stop::Pending => {}
            }

            // The inner body is idle.
            let Some(alarms) = this.alarms.as_mut() else {
                return Poll::Pending;
            };
            match alarms.as_mut().poll_alarm(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(alarm @ (Alarm::Shutdown | Alarm::LifetimeOver)) => {
                    if *this.phase == Phase::Live {
                        this.telemetry.ending(match alarm {
                            Alarm::Shutdown => CloseReason::Shutdown,
                            _ => CloseReason::Lifetime,
                        });
                        *this.phase = Phase::Draining;
                    }
                }
                Poll::Ready(Alarm::Heartbeat) if *this.phase == Phase::Draining => {
                    // The handler has been silent inside an event for a whole interval while
                    // the stream should end: end it here. Clients discard an unterminated
                    // event, so nothing half-built is dispatched, and the final event is not
                    // sent (it would merge into the open one).
                    *this.phase = Phase::Done;
                }
                Poll::Ready(Alarm::Heartbeat) => {
                    // Mid-event a blank line would dispatch a half-built event: skip this
                    // beat (the timer is re-armed) and wait for the handler.
                    if this.tracker.is_between_events() {
                        this.telemetry.heartbeat();
                        // Not observed: comment lines written between events leave the
                        // tracker as it was (see `heartbeat_is_transparent`).
                        return Poll::Ready(Some(Ok(Frame::data(
                            this.config.heartbeat_frame.clone(),
                        ))));
                    }
                }
            }
        }
    }
}

fn shutdown_triggered(config: &Config) -> bool {
    config
        .shutdown
        .as_ref()
        .is_some_and(ShutdownSignal::is_triggered)
}

/// A frame the layer writes itself, observed like every other byte.
fn write(tracker: &mut FrameBoundary, frame: &Bytes) -> Frame<Bytes> {
    tracker.observe(frame);
    Frame::data(frame.clone())
}

/// The frames gathered so far, made at the first one.
fn joined(gathered: &mut Option<Joined>, limit: usize) -> &mut Joined {
    gathered.get_or_insert_with(|| Joined::new(limit))
}

/// Why gathering ready frames stopped.
enum Stop {
    /// The inner body has nothing more now.
    Pending,
    /// The inner body ended, sent a non-data frame, or the drain reached an event boundary.
    Changed,
    /// The gathered frame is as large as allowed.
    Full,
}

/// Drops a byte order mark at the start of the inner body.
///
/// A client strips one BOM at the very start of the stream only. After the priming frame the
/// handler's BOM is no longer at the start, so a client would read it as part of the first
/// field name and lose that field. Bytes that might begin a BOM are held back until it is
/// clear whether they do.
fn strip_bom(seen: &mut u8, data: Bytes) -> Bytes {
    if *seen == BOM_CHECKED {
        return data;
    }
    let held = usize::from(*seen);
    let rest = &BOM[held..];
    let n = rest.len().min(data.len());
    if data[..n] == rest[..n] {
        if n == rest.len() {
            *seen = BOM_CHECKED;
            return data.slice(n..);
        }
        *seen += n as u8; // n < 3
        return Bytes::new();
    }
    *seen = BOM_CHECKED;
    if held == 0 {
        return data;
    }
    // What was held back was not a BOM after all: give it back.
    let mut joined = BytesMut::with_capacity(held + data.len());
    joined.extend_from_slice(&BOM[..held]);
    joined.extend_from_slice(&data);
    joined.freeze()
}

/// Observes `data` up to the first point where the stream is between events, returning the
/// length of that prefix, or observes all of it and returns `None`.
fn observe_to_boundary(tracker: &mut FrameBoundary, data: &[u8]) -> Option<usize> {
    let mut start = 0;
    while let Some(offset) = data[start..].iter().position(|&b| b == b'\n' || b == b'\r') {
        let end = start + offset + 1;
        tracker.observe(&data[start..end]);
        start = end;
        if tracker.is_between_events() {
            return Some(end);
        }
    }
    tracker.observe(&data[start..]);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(chunks: &[&'static [u8]]) -> Vec<u8> {
        let mut seen = 0;
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&strip_bom(&mut seen, Bytes::from_static(chunk)));
        }
        out
    }

    #[test]
    fn bom_is_stripped_in_any_chunking() {
        assert_eq!(strip_all(&[b"\xEF\xBB\xBFdata: a\n\n"]), b"data: a\n\n");
        assert_eq!(strip_all(&[b"\xEF", b"\xBB", b"\xBFdata"]), b"data");
        assert_eq!(strip_all(&[b"", b"\xEF\xBB", b"", b"\xBF", b"x"]), b"x");
        // Only one BOM, only at the start.
        assert_eq!(strip_all(&[b"\xEF\xBB\xBF\xEF\xBB\xBF"]), b"\xEF\xBB\xBF");
        assert_eq!(strip_all(&[b"x", b"\xEF\xBB\xBF"]), b"x\xEF\xBB\xBF");
    }

    #[test]
    fn a_false_bom_prefix_is_given_back() {
        assert_eq!(strip_all(&[b"\xEF\xBB", b"x"]), b"\xEF\xBBx");
        assert_eq!(strip_all(&[b"\xEF", b"\xBBx"]), b"\xEF\xBBx");
        assert_eq!(strip_all(&[b"data"]), b"data");
    }

    /// Bytes from the few that matter to the tracker.
    fn sse_bytes(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(&b"a:\r\n "[..]), 0..max)
    }

    proptest::proptest! {
        /// The heartbeat is written without being observed: any comment frame the layer
        /// builds, written between events, must leave the tracker as if it had not been there,
        /// whatever comes next (a CR just before it included).
        #[test]
        fn heartbeat_is_transparent(
            before in sse_bytes(24),
            text in "[a :\r\n]{0,6}",
            line in proptest::bool::ANY,
            after in sse_bytes(24),
        ) {
            let mut frame = BytesMut::new();
            match line {
                true => tower_sse_core::encode_comment_line(&text, &mut frame),
                false => tower_sse_core::encode_comment(&text, &mut frame),
            }
            let mut seen = FrameBoundary::new();
            seen.observe(&before);
            proptest::prop_assume!(seen.is_between_events());
            let mut skipped = seen.clone();
            seen.observe(&frame);
            proptest::prop_assert!(seen.is_between_events());
            proptest::prop_assert_eq!(seen.events(), skipped.events());
            for byte in after {
                seen.observe(&[byte]);
                skipped.observe(&[byte]);
                proptest::prop_assert_eq!(seen.position(), skipped.position());
                proptest::prop_assert_eq!(seen.events(), skipped.events());
            }
        }
    }

    #[test]
    fn boundary_is_found_inside_a_frame() {
        let mut tracker = FrameBoundary::new();
        tracker.observe(b"data: a");
        assert_eq!(
            observe_to_boundary(&mut tracker, b"bc\n\ndata: next\n\n"),
            Some(4)
        );
        assert!(tracker.is_between_events());

        let mut tracker = FrameBoundary::new();
        tracker.observe(b"data: a\r");
        assert_eq!(observe_to_boundary(&mut tracker, b"\n\r\ndata: b"), Some(2));

        let mut tracker = FrameBoundary::new();
        tracker.observe(b"data: a\n");
        assert_eq!(observe_to_boundary(&mut tracker, b"data: b\n"), None);
        assert!(!tracker.is_between_events());
    }
}
