//! [`ResponseBody`]: the body of every response that went through the layer.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::{layer::Config, replay::Resume, stream::EventStream, telemetry::RequestInfo};

pin_project! {
    /// The response body of [`Sse`](crate::Sse).
    ///
    /// A response that is not an event stream keeps its body as is: polling forwards straight
    /// to it, with the same frames, the same `is_end_stream` and the same `size_hint`. An event
    /// stream gets the priming frame, heartbeats and the managed end described in the
    /// [crate documentation](crate).
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        PassThrough {
            #[pin]
            body: B,
        },
        EventStream {
            #[pin]
            stream: EventStream<B>,
        },
        // An event stream the layer refused (`400`/`403`): its message, once.
        Rejected {
            message: Option<Bytes>,
        },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn pass_through(body: B) -> Self {
        Self {
            kind: Kind::PassThrough { body },
        }
    }

    pub(crate) fn event_stream(
        body: B,
        config: Arc<Config>,
        resume: Option<Box<Resume>>,
        info: RequestInfo,
    ) -> Self {
        Self {
            kind: Kind::EventStream {
                stream: EventStream::new(body, config, resume, info),
            },
        }
    }

    pub(crate) fn rejected(message: Bytes) -> Self {
        Self {
            kind: Kind::Rejected {
                message: Some(message),
            },
        }
    }

    /// Whether the layer treats this body as an event stream.
    pub fn is_event_stream(&self) -> bool {
        matches!(self.kind, Kind::EventStream { .. })
    }
}

impl<B> std::fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::PassThrough { .. } => "PassThrough",
            Kind::EventStream { .. } => "EventStream",
            Kind::Rejected { .. } => "Rejected",
        };
        f.debug_struct("ResponseBody")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::PassThrough { body } => body.poll_frame(cx),
            KindProj::EventStream { stream } => stream.poll_frame(cx),
            KindProj::Rejected { message } => {
                Poll::Ready(message.take().map(|m| Ok(Frame::data(m))))
            }
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::PassThrough { body } => body.is_end_stream(),
            Kind::EventStream { stream } => stream.is_end_stream(),
            Kind::Rejected { message } => message.is_none(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::PassThrough { body } => body.size_hint(),
            // The layer adds frames of its own: the length is never known in advance.
            Kind::EventStream { stream } if stream.is_end_stream() => SizeHint::with_exact(0),
            Kind::EventStream { .. } => SizeHint::default(),
            Kind::Rejected { message } => {
                SizeHint::with_exact(message.as_ref().map_or(0, |m| m.len() as u64))
            }
        }
    }
}
