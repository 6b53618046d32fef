//! Helpers shared by the integration tests: a scripted body, a timeline recorder and a decoder
//! that shows what a client would see.

#![allow(dead_code, unreachable_pub)]

use std::{
    convert::Infallible,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, header::CONTENT_TYPE};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use tokio::{sync::mpsc, time::Instant};
use tower::{Service, ServiceExt, service_fn};
use tower_sse::{ResponseBody, SseLayer};
use tower_sse_core::{Decoded, Decoder};

/// A body whose frames the test sends one by one; it ends when the [`Script`] is dropped.
#[derive(Debug)]
pub struct ChannelBody {
    rx: mpsc::UnboundedReceiver<Result<Frame<Bytes>, io::Error>>,
    _guard: Option<DropGuard>,
}

impl ChannelBody {
    /// Flips `flag` when the body is dropped.
    pub fn with_guard(mut self, flag: Arc<AtomicBool>) -> Self {
        self._guard = Some(DropGuard(flag));
        self
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.get_mut().rx.poll_recv(cx)
    }
}

#[derive(Debug)]
struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// The sending side of a [`ChannelBody`].
#[derive(Clone, Debug)]
pub struct Script {
    tx: mpsc::UnboundedSender<Result<Frame<Bytes>, io::Error>>,
}

impl Script {
    pub fn data(&self, data: &'static str) {
        self.tx
            .send(Ok(Frame::data(Bytes::from_static(data.as_bytes()))))
            .unwrap();
    }

    pub fn bytes(&self, data: &'static [u8]) {
        self.tx
            .send(Ok(Frame::data(Bytes::from_static(data))))
            .unwrap();
    }

    pub fn trailers(&self, trailers: HeaderMap) {
        self.tx.send(Ok(Frame::trailers(trailers))).unwrap();
    }

    pub fn error(&self, kind: io::ErrorKind) {
        self.tx.send(Err(io::Error::from(kind))).unwrap();
    }
}

pub fn channel() -> (Script, ChannelBody) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Script { tx }, ChannelBody { rx, _guard: None })
}

pub fn event_stream<B>(body: B) -> Response<B> {
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

/// Runs `body` through `layer` as the response of a one-shot `service_fn` handler.
pub async fn through<B>(layer: SseLayer, response: Response<B>) -> Response<ResponseBody<B>>
where
    B: Body<Data = Bytes> + Send + 'static,
{
    let mut response = Some(response);
    let handler = service_fn(move |_request: Request<()>| {
        let response = response.take().expect("one request");
        async move { Ok::<_, Infallible>(response) }
    });
    let mut service = tower::ServiceBuilder::new().layer(layer).service(handler);
    let service = ServiceExt::<Request<()>>::ready(&mut service)
        .await
        .unwrap();
    service.call(Request::new(())).await.unwrap()
}

/// What a client received, frame by frame, with the time (since `start`) each arrived.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub frames: Vec<(Duration, Bytes)>,
    pub trailers: Option<HeaderMap>,
}

impl Timeline {
    pub fn bytes(&self) -> Vec<u8> {
        self.frames.iter().flat_map(|(_, b)| b.to_vec()).collect()
    }

    /// Asserts the frames and their arrival times (to within 10 ms).
    #[track_caller]
    pub fn assert_is(&self, expected: &[(u64, &str)]) {
        let actual: Vec<(Duration, String)> = self
            .frames
            .iter()
            .map(|(t, b)| (*t, String::from_utf8_lossy(b).into_owned()))
            .collect();
        let matches = actual.len() == expected.len()
            && actual.iter().zip(expected).all(|((t, b), (secs, e))| {
                let want = Duration::from_secs(*secs);
                b == e && t.abs_diff(want) < Duration::from_millis(10)
            });
        assert!(
            matches,
            "timeline\n  got:      {actual:?}\n  expected: {expected:?}"
        );
    }
}

/// Reads `body` to its end, timing each frame from `start`.
pub async fn record<B>(body: B, start: Instant) -> Timeline
where
    B: Body<Data = Bytes>,
    B::Error: std::fmt::Debug,
{
    let mut body = std::pin::pin!(body);
    let mut timeline = Timeline::default();
    while let Some(frame) = body.frame().await {
        let frame = frame.expect("body error");
        match frame.into_data() {
            Ok(data) => timeline.frames.push((start.elapsed(), data)),
            Err(frame) => timeline.trailers = Some(frame.into_trailers().unwrap()),
        }
    }
    timeline
}

/// What an `EventSource` would dispatch from `bytes`: (type, data, last event id).
pub fn decode(bytes: &[u8]) -> Vec<(String, String, String)> {
    let mut decoder = Decoder::new();
    decoder.feed(bytes);
    let mut events = Vec::new();
    while let Some(decoded) = decoder.decode().unwrap() {
        if let Decoded::Event(event) = decoded {
            events.push((
                event.event_type().into(),
                event.data().into(),
                event.last_event_id().into(),
            ));
        }
    }
    events
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
