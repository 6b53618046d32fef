//! The stream span and what is logged per event: at `INFO` one span per event stream with
//! its close reason and duration recorded, and nothing per event; at `TRACE` one event per
//! frame written.

#![cfg(feature = "tracing")]

use std::{
    convert::Infallible,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response, header::CONTENT_TYPE};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use tower::{ServiceBuilder, ServiceExt, service_fn};
use tower_sse::SseLayer;
use tracing::{
    Event, Level, Metadata, Subscriber,
    field::{Field, Visit},
    span::{Attributes, Id, Record},
    subscriber::Interest,
};

/// Everything tower-sse emits, as text.
#[derive(Default)]
struct Captured {
    spans: Vec<String>,
    records: Vec<String>,
    events: Vec<(Level, String)>,
}

struct Capture {
    max: Level,
    state: Arc<Mutex<Captured>>,
    next: AtomicU64,
}

struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?} ", field.name(), value));
    }
}

impl Subscriber for Capture {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= &self.max && metadata.target().starts_with("tower_sse")
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::from_level(self.max))
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut text = Text(format!("{} ", span.metadata().name()));
        span.record(&mut text);
        self.state.lock().unwrap().spans.push(text.0);
        Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    fn record(&self, _: &Id, values: &Record<'_>) {
        let mut text = Text(String::new());
        values.record(&mut text);
        self.state.lock().unwrap().records.push(text.0);
    }

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut text = Text(String::new());
        event.record(&mut text);
        self.state
            .lock()
            .unwrap()
            .events
            .push((*event.metadata().level(), text.0));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Serves one event stream of `events` events through the layer under a subscriber at
/// `max`, and returns what was captured.
async fn run(max: Level, events: usize) -> Captured {
    let state = Arc::new(Mutex::new(Captured::default()));
    let _guard = tracing::subscriber::set_default(Capture {
        max,
        state: Arc::clone(&state),
        next: AtomicU64::new(0),
    });
    let handler = service_fn(move |_: Request<()>| async move {
        let frames = (0..events)
            .map(|n| Ok::<_, Infallible>(Frame::data(Bytes::from(format!("data: {n}\n\n")))));
        let body = StreamBody::new(stream::iter(frames));
        let response = Response::builder()
            .header(CONTENT_TYPE, "text/event-stream")
            .body(body)
            .unwrap();
        Ok::<_, Infallible>(response)
    });
    let service = ServiceBuilder::new()
        .layer(SseLayer::new().no_heartbeat().coalesce_limit(0))
        .service(handler);
    let request = Request::builder()
        .uri("/updates")
        .header("last-event-id", "42")
        .body(())
        .unwrap();
    let response = service.oneshot(request).await.unwrap();
    response.into_body().collect().await.unwrap();
    std::mem::take(&mut *state.lock().unwrap())
}

#[tokio::test]
async fn one_span_per_stream_and_nothing_per_event_at_info() {
    let captured = run(Level::INFO, 100).await;
    assert_eq!(captured.spans.len(), 1, "{:?}", captured.spans);
    let span = &captured.spans[0];
    assert!(span.starts_with("sse_stream "), "{span}");
    assert!(span.contains("route=\"/updates\""), "{span}");
    assert!(span.contains("resumed=true"), "{span}");
    let records = captured.records.join(" ");
    assert!(
        records.contains("close_reason=\"handler_ended\""),
        "{records}"
    );
    assert!(records.contains("duration_s="), "{records}");
    assert!(records.contains("events=100"), "{records}");
    assert!(captured.events.is_empty(), "{:?}", captured.events);
}

#[tokio::test]
async fn frames_are_traced_at_trace() {
    let captured = run(Level::TRACE, 10).await;
    let frames = captured
        .events
        .iter()
        .filter(|(level, text)| *level == Level::TRACE && text.contains("frame written"))
        .count();
    assert!(frames >= 1, "{:?}", captured.events);
    assert!(
        captured.events.iter().any(
            |(level, text)| *level == Level::DEBUG && text.contains("reason=\"handler_ended\"")
        ),
        "{:?}",
        captured.events
    );
}
