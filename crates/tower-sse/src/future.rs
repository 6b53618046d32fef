//! [`ResponseFuture`]: recognises event streams and prepares their headers.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{
    HeaderMap, HeaderName, HeaderValue, Response,
    header::{CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE},
};
use http_body::Body;
use pin_project_lite::pin_project;

use crate::{
    ClientCursor, ResponseBody,
    access::{self, Access},
    layer::Config,
    replay::{Resume, Target},
    telemetry::RequestInfo,
};

const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");
const NO: HeaderValue = HeaderValue::from_static("no");

pin_project! {
    /// The response future of [`Sse`](crate::Sse).
    ///
    /// `B` is the inner response's body type. With [`SseLayer::replay`](crate::SseLayer::replay)
    /// and a request carrying a last event id, the future also reads the log once the inner
    /// response is known to be an event stream: under
    /// [`GapPolicy::Header`](crate::GapPolicy::Header) its first page before it returns the
    /// response (the headers depend on it), otherwise page by page in the body.
    pub struct ResponseFuture<F, B> {
        #[pin]
        inner: F,
        config: Option<Arc<Config>>,
        // Both boxed: rare (a reconnect with a replay log), and kept out of the future's size
        // so that pass-through responses move as little as possible.
        resume: Option<Box<(Target, ClientCursor)>>,
        replaying: Option<Box<(Response<B>, Box<Resume>)>>,
        info: Option<RequestInfo>,
        // The stream key's validity and the authorization hook's answer, and the event-stream
        // response held while the hook answers.
        access: Option<Access>,
        held: Option<Box<Response<B>>>,
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn new(
        inner: F,
        config: Arc<Config>,
        resume: Option<Box<(Target, ClientCursor)>>,
        info: RequestInfo,
        access: Option<Access>,
    ) -> Self {
        Self {
            inner,
            config: Some(config),
            resume,
            replaying: None,
            info: Some(info),
            access,
            held: None,
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(replaying) = this.replaying.as_mut() {
            ready!(replaying.1.poll_prepare(cx));
            let (mut response, mut resume) = *this.replaying.take().expect("checked above");
            let config = this.config.take().expect("kept for the replay");
            for (name, value) in resume.take_headers() {
                response.headers_mut().insert(name, value);
            }
            let info = this.info.take().unwrap_or_default();
            return Poll::Ready(Ok(
                response.map(|body| ResponseBody::event_stream(body, config, Some(resume), info))
            ));
        }
        let mut response = match this.held.take() {
            Some(response) => *response,
            None => {
                let response = ready!(this.inner.poll(cx))?;
                if !is_event_stream(response.headers()) {
                    this.config.take();
                    return Poll::Ready(Ok(response.map(ResponseBody::pass_through)));
                }
                response
            }
        };
        // The gate: nothing of a refused stream is replayed or sent, its body is dropped.
        match this.access.as_mut() {
            Some(Access::Invalid(error)) => {
                let error = *error;
                this.config.take();
                return Poll::Ready(Ok(access::invalid(error)));
            }
            Some(Access::InvalidSet(error)) => {
                let error = *error;
                this.config.take();
                return Poll::Ready(Ok(access::invalid_set(error)));
            }
            Some(Access::Check(allowed)) => match allowed.as_mut().poll(cx) {
                Poll::Pending => {
                    *this.held = Some(Box::new(response));
                    return Poll::Pending;
                }
                Poll::Ready(false) => {
                    this.config.take();
                    return Poll::Ready(Ok(access::forbidden()));
                }
                Poll::Ready(true) => *this.access = None,
            },
            None => {}
        }
        let config = this
            .config
            .take()
            .expect("ResponseFuture polled after completion");
        prepare_headers(response.headers_mut(), &config);
        if is_encoded(response.headers()) {
            // A compression layer inside this one has already encoded the stream: plain-text
            // frames (priming, heartbeats, replay, the final event) spliced into it would
            // corrupt it, so it goes through as it is. Compression belongs outside the layer.
            return Poll::Ready(Ok(response.map(ResponseBody::pass_through)));
        }
        // The handler's live source is open (or will open when its body is polled): the
        // replay is read now, and joined to the live body without a gap whenever that starts.
        let resume = this
            .resume
            .take()
            .and_then(|resume| config.replay.start(resume.0, &resume.1));
        if let Some(mut resume) = resume {
            if config.replay.is_header_policy() {
                if resume.poll_prepare(cx).is_pending() {
                    *this.config = Some(config);
                    *this.replaying = Some(Box::new((response, resume)));
                    return Poll::Pending;
                }
                for (name, value) in resume.take_headers() {
                    response.headers_mut().insert(name, value);
                }
            }
            let info = this.info.take().unwrap_or_default();
            return Poll::Ready(Ok(
                response.map(|body| ResponseBody::event_stream(body, config, Some(resume), info))
            ));
        }
        let info = this.info.take().unwrap_or_default();
        Poll::Ready(Ok(
            response.map(|body| ResponseBody::event_stream(body, config, None, info))
        ))
    }
}

/// Whether `Content-Type` is `text/event-stream`, with any parameters, in any case.
pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let bytes = value.as_bytes();
    let essence = match bytes.iter().position(|&b| b == b';') {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    essence
        .trim_ascii()
        .eq_ignore_ascii_case(b"text/event-stream")
}

/// Whether the body has a `Content-Encoding` other than `identity` (gzip, br, ...).
fn is_encoded(headers: &HeaderMap) -> bool {
    headers.get_all(CONTENT_ENCODING).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .map(<[u8]>::trim_ascii)
            .any(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case(b"identity"))
    })
}

/// Inserts the buffering-off headers where absent and drops `Content-Length`.
///
/// Nothing connection-specific is added, for either HTTP version: `Connection` and
/// `Keep-Alive` are forbidden in HTTP/2 (RFC 9113, section 8.2.2), and on HTTP/1.1 keep-alive
/// is already the default and is the server's (hyper's) to manage: `Connection` is hop-by-hop,
/// so a handler-level header could only contradict what the connection really does.
fn prepare_headers(headers: &mut HeaderMap, config: &Config) {
    if config.cache_control {
        headers.entry(CACHE_CONTROL).or_insert(NO_CACHE);
    }
    if config.accel_buffering {
        headers.entry(X_ACCEL_BUFFERING).or_insert(NO);
    }
    // The layer adds frames, so any length the handler declared is wrong; without one, HTTP/1.1
    // uses chunked encoding and HTTP/2 plain DATA frames.
    headers.remove(CONTENT_LENGTH);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_type(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn recognises_event_streams() {
        for value in [
            "text/event-stream",
            "Text/Event-Stream",
            "TEXT/EVENT-STREAM",
            "text/event-stream; charset=utf-8",
            "text/event-stream;charset=utf-8",
            " text/event-stream ",
            "text/event-stream ; x=y",
        ] {
            assert!(is_event_stream(&with_type(value)), "{value:?}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for value in [
            "text/plain",
            "text/event-streams",
            "text/event",
            "application/json",
            "text/html; a=text/event-stream",
            "",
        ] {
            assert!(!is_event_stream(&with_type(value)), "{value:?}");
        }
        assert!(!is_event_stream(&HeaderMap::new()));
    }

    #[test]
    fn encoded_bodies() {
        let with_encoding = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(value));
            is_encoded(&headers)
        };
        for value in ["gzip", "br", "identity, gzip", " Zstd "] {
            assert!(with_encoding(value), "{value:?}");
        }
        for value in ["identity", "IDENTITY", "", " , "] {
            assert!(!with_encoding(value), "{value:?}");
        }
        assert!(!is_encoded(&HeaderMap::new()));
    }

    #[test]
    fn headers_only_where_absent() {
        let mut headers = with_type("text/event-stream");
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("12"));
        prepare_headers(&mut headers, &Config::default());
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert_eq!(headers[X_ACCEL_BUFFERING], "no");
        assert!(!headers.contains_key(CONTENT_LENGTH));
        assert!(!headers.contains_key(http::header::CONNECTION));

        let mut headers = with_type("text/event-stream");
        let config = Config {
            cache_control: false,
            accel_buffering: false,
            ..Config::default()
        };
        prepare_headers(&mut headers, &config);
        assert_eq!(headers.len(), 1);
    }
}
