//! One event stream's telemetry: the span, the open-streams gauge and the counters, closed
//! exactly once with the reason the stream ended.

use std::task::Poll;

use bytes::Bytes;
use http_body::Frame;
use tower_sse_core::FrameBoundary;

/// Why an event stream ended; the `reason` label of `sse_server_stream_duration_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The body was dropped before it ended: the client went away (or the server dropped the
    /// connection).
    ClientGone,
    /// The handler's body ended.
    HandlerEnded,
    /// The shutdown signal ended it.
    Shutdown,
    /// Its maximum lifetime was over.
    Lifetime,
    /// The handler's body failed, or the replay ended the stream.
    Error,
}

impl CloseReason {
    fn index(self) -> usize {
        self as usize
    }

    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    fn as_str(self) -> &'static str {
        crate::metrics::CLOSE_REASONS[self.index()]
    }
}

/// What the request told about the stream, kept until the response is known to be an event
/// stream: whether it carried a cursor and, when the stream span is enabled, its path.
#[derive(Debug, Default)]
pub(crate) struct RequestInfo {
    resumed: bool,
    #[cfg(feature = "tracing")]
    route: Option<Box<str>>,
}

impl RequestInfo {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(resumed: bool, path: &str) -> Self {
        Self {
            resumed,
            // The path is copied only when the span will be recorded.
            #[cfg(feature = "tracing")]
            route: tracing::enabled!(target: "tower_sse::stream", tracing::Level::INFO)
                .then(|| path.into()),
        }
    }
}

/// The stream metrics' handles of one layer, resolved at its first event stream (so that a
/// recorder installed after the layer was built is still the one used).
#[derive(Clone, Default)]
pub(crate) struct LayerTelemetry {
    #[cfg(feature = "metrics")]
    handles: std::sync::Arc<std::sync::OnceLock<StreamHandles>>,
}

impl std::fmt::Debug for LayerTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerTelemetry").finish_non_exhaustive()
    }
}

#[cfg(feature = "metrics")]
struct StreamHandles {
    active: ::metrics::Gauge,
    streams: ::metrics::Counter,
    events: ::metrics::Counter,
    bytes: ::metrics::Counter,
    heartbeats: ::metrics::Counter,
    durations: [::metrics::Histogram; 5],
}

#[cfg(feature = "metrics")]
impl StreamHandles {
    fn resolve() -> Self {
        use crate::metrics::{
            ACTIVE_STREAMS, CLOSE_REASONS, EVENT_BYTES, EVENTS, HEARTBEATS, STREAM_DURATION,
            STREAMS,
        };
        Self {
            active: ::metrics::gauge!(ACTIVE_STREAMS),
            streams: ::metrics::counter!(STREAMS),
            events: ::metrics::counter!(EVENTS),
            bytes: ::metrics::counter!(EVENT_BYTES),
            heartbeats: ::metrics::counter!(HEARTBEATS),
            durations: std::array::from_fn(
                |i| ::metrics::histogram!(STREAM_DURATION, "reason" => CLOSE_REASONS[i]),
            ),
        }
    }
}

/// A frame the layer wrote itself, not counted as event bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Injected {
    None,
    Priming,
    Heartbeat,
}

/// One event stream's telemetry; closing it (at the end, or on drop) records the duration
/// and takes the stream out of the open-streams gauge, exactly once.
pub(crate) struct StreamTelemetry {
    #[cfg(feature = "metrics")]
    layer: std::sync::Arc<std::sync::OnceLock<StreamHandles>>,
    #[cfg(feature = "tracing")]
    span: tracing::Span,
    #[cfg(any(feature = "metrics", feature = "tracing"))]
    opened: std::time::Instant,
    /// Why the stream is ending, once the layer decided to end it (shutdown, lifetime).
    ending: Option<CloseReason>,
    closed: bool,
    injected: Injected,
    /// The tracker's event count when last looked at.
    events_seen: u64,
    /// Events written, priming excluded.
    events: u64,
}

impl std::fmt::Debug for StreamTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTelemetry")
            .field("ending", &self.ending)
            .field("closed", &self.closed)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

impl StreamTelemetry {
    /// An event stream opens: counted, and in the gauge until closed.
    #[cfg_attr(
        not(any(feature = "metrics", feature = "tracing")),
        allow(unused_variables)
    )]
    pub(crate) fn open(layer: &LayerTelemetry, info: RequestInfo) -> Self {
        #[cfg(feature = "metrics")]
        {
            let handles = layer.handles.get_or_init(StreamHandles::resolve);
            handles.streams.increment(1);
            handles.active.increment(1.0);
        }
        #[cfg(feature = "tracing")]
        let span = {
            let span = tracing::info_span!(
                target: "tower_sse::stream",
                "sse_stream",
                route = info.route.as_deref(),
                resumed = info.resumed,
                close_reason = tracing::field::Empty,
                duration_s = tracing::field::Empty,
                events = tracing::field::Empty,
            );
            tracing::debug!(target: "tower_sse::stream", parent: &span, "event stream opened");
            span
        };
        Self {
            #[cfg(feature = "metrics")]
            layer: std::sync::Arc::clone(&layer.handles),
            #[cfg(feature = "tracing")]
            span,
            #[cfg(any(feature = "metrics", feature = "tracing"))]
            opened: std::time::Instant::now(),
            ending: None,
            closed: false,
            injected: Injected::None,
            events_seen: 0,
            events: 0,
        }
    }

    /// The layer decided to end the stream at its next event boundary, for `reason`; the
    /// first reason given is the one recorded.
    pub(crate) fn ending(&mut self, reason: CloseReason) {
        self.ending.get_or_insert(reason);
    }

    /// The next frame is the priming frame.
    pub(crate) fn priming(&mut self) {
        self.injected = Injected::Priming;
    }

    /// The next frame is a heartbeat.
    pub(crate) fn heartbeat(&mut self) {
        self.injected = Injected::Heartbeat;
    }

    /// Looks at what the stream's `poll_frame` returned: counts what was written, and closes
    /// the telemetry when the stream ended. `handler_ended` tells whether the handler's body
    /// had ended by then.
    #[inline]
    pub(crate) fn on_poll<E>(
        &mut self,
        poll: &Poll<Option<Result<Frame<Bytes>, E>>>,
        tracker: &FrameBoundary,
        handler_ended: bool,
    ) {
        match poll {
            Poll::Pending => {}
            Poll::Ready(Some(Ok(frame))) => {
                let Some(data) = frame.data_ref() else {
                    return;
                };
                let events = tracker.events();
                let new = events - self.events_seen;
                self.events_seen = events;
                match std::mem::replace(&mut self.injected, Injected::None) {
                    // A retry hint is a block of its own: not an event.
                    Injected::Priming => {}
                    Injected::Heartbeat =>
                    {
                        #[cfg(feature = "metrics")]
                        if let Some(handles) = self.layer.get() {
                            handles.heartbeats.increment(1);
                        }
                    }
                    Injected::None => {
                        self.events += new;
                        #[cfg(feature = "metrics")]
                        if let Some(handles) = self.layer.get() {
                            handles.events.increment(new);
                            handles.bytes.increment(data.len() as u64);
                        }
                        #[cfg(feature = "tracing")]
                        tracing::trace!(
                            target: "tower_sse::stream",
                            parent: &self.span,
                            bytes = data.len(),
                            events = new,
                            "frame written"
                        );
                        #[cfg(not(any(feature = "metrics", feature = "tracing")))]
                        let _ = data;
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => self.close(CloseReason::Error),
            Poll::Ready(None) => {
                let reason = match self.ending {
                    Some(reason) => reason,
                    None if handler_ended => CloseReason::HandlerEnded,
                    None => CloseReason::Error,
                };
                self.close(reason);
            }
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if std::mem::replace(&mut self.closed, true) {
            return;
        }
        #[cfg(any(feature = "metrics", feature = "tracing"))]
        let seconds = self.opened.elapsed().as_secs_f64();
        #[cfg(feature = "metrics")]
        if let Some(handles) = self.layer.get() {
            handles.active.decrement(1.0);
            handles.durations[reason.index()].record(seconds);
        }
        #[cfg(feature = "tracing")]
        {
            self.span.record("close_reason", reason.as_str());
            self.span.record("duration_s", seconds);
            self.span.record("events", self.events);
            tracing::debug!(
                target: "tower_sse::stream",
                parent: &self.span,
                reason = reason.as_str(),
                duration_s = seconds,
                events = self.events,
                "event stream closed"
            );
        }
        #[cfg(not(any(feature = "metrics", feature = "tracing")))]
        let _ = reason;
    }
}

impl Drop for StreamTelemetry {
    fn drop(&mut self) {
        // Dropped before it ended: the connection went away (client gone, or the server
        // dropped it). Every way out of a stream passes here, so the gauge is exact.
        self.close(CloseReason::ClientGone);
    }
}
