//! [`EventSource`]: the reconnecting stream, and its [`Builder`].

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use http::{
    HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri,
    header::{self, ACCEPT, CACHE_CONTROL, LOCATION},
};
use http_body::Body;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use tokio::time::{Instant, Sleep};
use tower_service::Service;
use tower_sse_core::{Decoded, Decoder};

use crate::{BoxError, Error, Event, RetryPolicy, is_event_stream, retry::Jitter};

/// The request body type an [`EventSource`] sends: the configured body, or empty.
pub type RequestBody = Full<Bytes>;

/// The default maximum event size of a client: 16 MiB, room for the large JSON payloads of
/// LLM and feature-flag streams while still bounding memory.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 16 << 20;
/// The default bound on redirects followed per connection attempt.
pub const DEFAULT_MAX_REDIRECTS: u32 = 10;

type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, BoxError>> + Send>>;
type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Where an [`EventSource`] is, as in the browser's `EventSource.readyState`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadyState {
    /// Connecting, or waiting to reconnect.
    Connecting,
    /// A response is open and being read.
    Open,
    /// Ended: closed by the caller, by a `204 No Content`, or after an error not retried.
    Closed,
}

/// Configures an [`EventSource`]; made by [`EventSource::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_sse_client::{EventSource, RetryPolicy};
///
/// let source = EventSource::builder("http://127.0.0.1:3000/v1/chat")
///     .method("POST")
///     .header("content-type", "application/json")
///     .header("authorization", "Bearer sk-...")
///     .body(r#"{"stream":true}"#)
///     .last_event_id("41")
///     .read_timeout(Duration::from_secs(60))
///     .retry(RetryPolicy::default().max_retries(10))
///     .build()?;
/// # Ok::<(), tower_sse_client::Error>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct Builder {
    uri: Result<Uri, String>,
    method: Result<Method, String>,
    headers: Result<HeaderMap, String>,
    body: Bytes,
    last_event_id: String,
    read_timeout: Option<Duration>,
    retry: RetryPolicy,
    max_event_size: usize,
    max_redirects: u32,
    comments: bool,
    #[cfg(feature = "client")]
    http2_only: bool,
    #[cfg(feature = "rustls")]
    tls: Option<rustls::ClientConfig>,
}

impl Builder {
    fn new(uri: Result<Uri, String>) -> Self {
        Self {
            uri,
            method: Ok(Method::GET),
            headers: Ok(HeaderMap::new()),
            body: Bytes::new(),
            last_event_id: String::new(),
            read_timeout: None,
            retry: RetryPolicy::default(),
            max_event_size: DEFAULT_MAX_EVENT_SIZE,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            comments: false,
            #[cfg(feature = "client")]
            http2_only: false,
            #[cfg(feature = "rustls")]
            tls: None,
        }
    }

    /// The request method (default `GET`); `POST` for most LLM APIs.
    pub fn method(mut self, method: impl AsRef<str>) -> Self {
        let method = method.as_ref();
        self.method =
            Method::from_bytes(method.as_bytes()).map_err(|_| format!("invalid method `{method}`"));
        self
    }

    /// Adds a request header, sent on every connection attempt. `Accept: text/event-stream`
    /// and `Cache-Control: no-cache` are sent unless set here.
    pub fn header(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        let (name, value) = (name.as_ref(), value.as_ref());
        if let Ok(headers) = &mut self.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                (Ok(n), Ok(v)) => {
                    headers.append(n, v);
                }
                (Err(_), _) => self.headers = Err(format!("invalid header name `{name}`")),
                (_, Err(_)) => self.headers = Err(format!("invalid value for header `{name}`")),
            }
        }
        self
    }

    /// The request body, sent again on every reconnection.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The `Last-Event-ID` of the first request, as if an earlier stream had sent that id:
    /// resumes from a stored position. Empty (the default) sends none.
    pub fn last_event_id(mut self, id: impl Into<String>) -> Self {
        self.last_event_id = id.into();
        self
    }

    /// Reconnects when nothing at all (not even a heartbeat comment) arrives for this long,
    /// waiting for the response head included. Off by default, as in browsers; set it a
    /// little above the server's heartbeat interval.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }

    /// The [`RetryPolicy`] (default: retry indefinitely, 3 s initial delay, 30 s cap).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The largest event held in memory (default 16 MiB). A larger event is skipped and
    /// reported as [`Error::EventTooLarge`]; the stream goes on.
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.max_event_size = bytes;
        self
    }

    /// How many redirects one connection attempt follows (default 10).
    pub fn max_redirects(mut self, redirects: u32) -> Self {
        self.max_redirects = redirects;
        self
    }

    /// Yields comment lines as [`Event::Comment`] (default: skipped).
    pub fn comments(mut self, on: bool) -> Self {
        self.comments = on;
        self
    }

    /// The default client speaks HTTP/2 without negotiation (h2c, prior knowledge) to
    /// `http://` URLs. Over TLS, HTTP/2 is negotiated by ALPN without this.
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2_only = true;
        self
    }

    /// The TLS configuration of the default client, in place of the webpki roots: a private
    /// CA, client certificates, another crypto provider. Its ALPN protocols are replaced by
    /// the client's (`h2` and `http/1.1`, or `h2` alone with
    /// [`http2_prior_knowledge`](Self::http2_prior_knowledge)).
    ///
    /// ```no_run
    /// # fn ca() -> rustls::pki_types::CertificateDer<'static> { unimplemented!() }
    /// let mut roots = rustls::RootCertStore::empty();
    /// roots.add(ca())?;
    /// let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    /// let config = rustls::ClientConfig::builder_with_provider(provider)
    ///     .with_safe_default_protocol_versions()?
    ///     .with_root_certificates(roots)
    ///     .with_no_client_auth();
    /// let source = tower_sse_client::EventSource::builder("https://internal.test/events")
    ///     .tls_config(config)
    ///     .build()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "rustls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rustls")))]
    pub fn tls_config(mut self, config: rustls::ClientConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Builds the stream over the default client: hyper-util's, HTTP/1.1 and HTTP/2, with
    /// TLS when the `rustls` feature is on. Nothing is sent until the stream is polled.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] for a bad URL, method or header, or an `https` URL without
    /// the `rustls` feature.
    #[cfg(feature = "client")]
    #[cfg_attr(docsrs, doc(cfg(feature = "client")))]
    pub fn build(self) -> Result<EventSource<crate::DefaultClient>, Error> {
        if let Ok(uri) = &self.uri {
            if uri.scheme() == Some(&http::uri::Scheme::HTTPS) && !cfg!(feature = "rustls") {
                return Err(Error::InvalidRequest(
                    "https URLs need the `rustls` feature of tower-sse-client".into(),
                ));
            }
        }
        #[cfg(feature = "rustls")]
        let client = crate::client::default_client(self.http2_only, self.tls.clone());
        #[cfg(not(feature = "rustls"))]
        let client = crate::client::default_client(self.http2_only);
        self.build_with(client)
    }

    /// Builds the stream over any tower HTTP service: a configured hyper client, a tower
    /// stack with auth or tracing layers, or an axum `Router` called in process.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] for a bad URL, method or header.
    pub fn build_with<S, B>(self, service: S) -> Result<EventSource<S>, Error>
    where
        S: Service<Request<RequestBody>, Response = Response<B>>,
        S::Error: Into<BoxError>,
        S::Future: Send + 'static,
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let uri = self.uri.map_err(Error::InvalidRequest)?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            return Err(Error::InvalidRequest(format!(
                "`{uri}` is not an absolute URL"
            )));
        }
        let mut headers = self.headers.map_err(Error::InvalidRequest)?;
        headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("text/event-stream"));
        headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
        if !self.last_event_id.is_empty() {
            HeaderValue::from_str(&self.last_event_id).map_err(|_| {
                Error::InvalidRequest("the last event id is not a valid header value".into())
            })?;
        }
        let mut decoder = Decoder::new()
            .max_event_size(self.max_event_size)
            .report_comments(self.comments);
        decoder.set_last_event_id(&self.last_event_id);
        Ok(EventSource {
            service,
            call: call::<S, B>,
            request: RequestTemplate {
                uri,
                method: self.method.map_err(Error::InvalidRequest)?,
                headers,
                body: self.body,
            },
            decoder,
            state: State::Idle,
            attempt: Attempt::default(),
            timer: None,
            read_timeout: self.read_timeout,
            last_read: None,
            retry: self.retry,
            max_redirects: self.max_redirects,
            failures: 0,
            jitter: Jitter::new(),
        })
    }
}

#[derive(Debug)]
struct RequestTemplate {
    uri: Uri,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
}

/// The state of one connection attempt, redirects included.
#[derive(Debug, Default)]
struct Attempt {
    /// Where a redirect pointed, if one did.
    uri: Option<Uri>,
    /// A redirect turned the request into a body-less GET (303, or 301/302 after POST).
    as_get: bool,
    /// A redirect left the original origin: credentials are not sent on.
    cross_origin: bool,
    redirects: u32,
}

enum State {
    /// Ready to send a request once the service is ready.
    Idle,
    Connecting(ResponseFuture),
    Open(Pin<Box<ResponseBody>>),
    /// Waiting on `timer` to reconnect.
    Waiting,
    Closed,
}

/// A reconnecting stream of Server-Sent Events, like the browser's `EventSource`.
///
/// Items are [`Event`]s (`Open` when a response begins, then `Message`s) or [`Error`]s; after
/// an error the stream reconnects if its [`RetryPolicy`] allows it (see
/// [`ready_state`](Self::ready_state)) and otherwise ends. A `204 No Content` ends the
/// stream without error. Each reconnection sends the `Last-Event-ID` of the last event that
/// had one, the same method, headers and body, and waits the server's `retry` time (plus
/// jitter, doubling on consecutive failures).
///
/// The stream is driven by whoever polls it: no task is spawned for it (the default hyper
/// client drives each connection in a task of its own, as hyper does). Dropping it, or
/// [`close`](Self::close), closes the connection.
///
/// # Example
///
/// ```no_run
/// use futures_util::StreamExt;
/// use tower_sse_client::{Event, EventSource};
///
/// # async fn run() -> Result<(), tower_sse_client::Error> {
/// let mut source = EventSource::get("http://127.0.0.1:3000/events")?;
/// while let Some(item) = source.next().await {
///     match item {
///         Ok(Event::Message(event)) => println!("{}: {}", event.event_type(), event.data()),
///         Ok(_) => {}
///         Err(error) => eprintln!("{error}; state: {:?}", source.ready_state()),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct EventSource<S> {
    service: S,
    call: fn(&mut S, Request<RequestBody>) -> ResponseFuture,
    request: RequestTemplate,
    decoder: Decoder,
    state: State,
    attempt: Attempt,
    /// Both the reconnection wait and the read timeout (never needed at once); made on
    /// first use, inside the runtime, so that a stream can be built outside one.
    timer: Option<Pin<Box<Sleep>>>,
    read_timeout: Option<Duration>,
    /// When bytes last arrived; the read timer is moved forward lazily, only when it fires.
    last_read: Option<Instant>,
    retry: RetryPolicy,
    max_redirects: u32,
    failures: u32,
    jitter: Jitter,
}

fn call<S, B>(service: &mut S, request: Request<RequestBody>) -> ResponseFuture
where
    S: Service<Request<RequestBody>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let future = service.call(request);
    Box::pin(async move {
        let response = future.await.map_err(Into::into)?;
        Ok(response.map(|body| {
            body.map_frame(|frame| frame.map_data(|mut data| data.copy_to_bytes(data.remaining())))
                .map_err(Into::into)
                .boxed_unsync()
        }))
    })
}

impl<S> fmt::Debug for EventSource<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventSource")
            .field("uri", &self.request.uri)
            .field("method", &self.request.method)
            .field("ready_state", &self.ready_state())
            .field("last_event_id", &self.decoder.last_event_id())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
impl EventSource<crate::DefaultClient> {
    /// A `GET` stream of `url` with the default client and settings.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] for a bad URL.
    pub fn get(url: impl AsRef<str>) -> Result<Self, Error> {
        EventSource::builder(url).build()
    }
}

impl EventSource<()> {
    /// Starts configuring a stream of `url`.
    pub fn builder(url: impl AsRef<str>) -> Builder {
        let url = url.as_ref();
        Builder::new(url.parse().map_err(|e| format!("invalid URL `{url}`: {e}")))
    }
}

impl<S> EventSource<S> {
    /// Where the stream is: connecting (or waiting to reconnect), open, or closed.
    pub fn ready_state(&self) -> ReadyState {
        match self.state {
            State::Idle | State::Connecting(_) | State::Waiting => ReadyState::Connecting,
            State::Open(_) => ReadyState::Open,
            State::Closed => ReadyState::Closed,
        }
    }

    /// The id the next reconnection sends as `Last-Event-ID`.
    pub fn last_event_id(&self) -> &str {
        self.decoder.last_event_id()
    }

    /// The current reconnection time: the server's last `retry`, or the initial delay.
    pub fn reconnection_time(&self) -> Duration {
        self.decoder.retry().unwrap_or(self.retry.initial_delay)
    }

    /// When waiting to reconnect, how long is left.
    pub fn reconnect_in(&self) -> Option<Duration> {
        let timer = self
            .timer
            .as_ref()
            .filter(|_| matches!(self.state, State::Waiting))?;
        Some(timer.deadline().saturating_duration_since(Instant::now()))
    }

    /// The URL the stream connects to.
    pub fn url(&self) -> &Uri {
        &self.request.uri
    }

    /// Closes the stream: the connection is dropped now and the stream ends (`None`).
    pub fn close(&mut self) {
        self.state = State::Closed;
        self.decoder.finish();
    }

    /// Drops the current connection (or the wait before the next) and reconnects at once,
    /// with the `Last-Event-ID` so far. Does nothing on a closed stream.
    pub fn restart(&mut self) {
        if !matches!(self.state, State::Closed) {
            self.state = State::Idle;
            self.decoder.finish();
        }
    }

    fn build_request(&mut self) -> Result<Request<RequestBody>, Error> {
        let template = &self.request;
        let uri = self
            .attempt
            .uri
            .clone()
            .unwrap_or_else(|| template.uri.clone());
        let (method, body) = if self.attempt.as_get {
            (Method::GET, Bytes::new())
        } else {
            (template.method.clone(), template.body.clone())
        };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        headers.clone_from(&template.headers);
        if self.attempt.cross_origin {
            for name in [
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ] {
                headers.remove(name);
            }
        }
        if self.attempt.as_get {
            headers.remove(header::CONTENT_TYPE);
        }
        let id = self.decoder.last_event_id();
        if !id.is_empty() {
            let id = HeaderValue::from_str(id)
                .map_err(|_| Error::InvalidRequest("last event id not a header value".into()))?;
            headers.insert("last-event-id", id);
        }
        Ok(request)
    }

    /// Ends the connection with `error`: schedules a reconnection or closes the stream.
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Event, Error>>> {
        self.decoder.finish();
        self.attempt = Attempt::default();
        self.failures = self.failures.saturating_add(1);
        if self.retry.retries(&error, self.failures) {
            let base = self.reconnection_time();
            let delay = self.retry.delay(base, self.failures, &mut self.jitter);
            self.set_timer(Instant::now() + delay);
            self.state = State::Waiting;
        } else {
            self.state = State::Closed;
        }
        Poll::Ready(Some(Err(error)))
    }

    fn start_read_timer(&mut self) {
        if let Some(timeout) = self.read_timeout {
            let now = Instant::now();
            self.last_read = Some(now);
            self.set_timer(now + timeout);
        }
    }

    fn set_timer(&mut self, deadline: Instant) {
        match &mut self.timer {
            Some(timer) => timer.as_mut().reset(deadline),
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
    }

    /// Whether the read timeout has passed; registers the timer otherwise.
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(timeout), Some(last), Some(timer)) =
            (self.read_timeout, self.last_read, &mut self.timer)
        else {
            return false;
        };
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = last + timeout;
            if Instant::now() >= deadline {
                return true;
            }
            timer.as_mut().reset(deadline);
        }
    }

    /// Handles a response head: opens the stream, follows a redirect, or fails.
    fn on_response(
        &mut self,
        response: Response<ResponseBody>,
    ) -> Option<Poll<Option<Result<Event, Error>>>> {
        let status = response.status();
        if status == StatusCode::NO_CONTENT {
            self.state = State::Closed;
            return Some(Poll::Ready(None));
        }
        if status.is_success() {
            let content_type = response.headers().get(header::CONTENT_TYPE);
            if !content_type.is_some_and(is_event_stream) {
                return Some(self.fail(Error::ContentType(content_type.cloned())));
            }
            self.state = State::Open(Box::pin(response.into_body()));
            return Some(Poll::Ready(Some(Ok(Event::Open))));
        }
        if matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
            return match self.redirect(status, response.headers()) {
                Ok(()) => {
                    self.state = State::Idle;
                    None
                }
                Err(e) => Some(self.fail(e)),
            };
        }
        Some(self.fail(Error::Status(status)))
    }

    fn redirect(&mut self, status: StatusCode, headers: &HeaderMap) -> Result<(), Error> {
        if self.attempt.redirects >= self.max_redirects {
            return Err(Error::Redirect(format!(
                "more than {} redirects",
                self.max_redirects
            )));
        }
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| Error::Redirect(format!("{status} without a Location")))?;
        let current = self.attempt.uri.as_ref().unwrap_or(&self.request.uri);
        let next = resolve(current, location.trim())
            .ok_or_else(|| Error::Redirect(format!("unusable Location `{location}`")))?;
        if next.scheme() != self.request.uri.scheme()
            || next.authority() != self.request.uri.authority()
        {
            self.attempt.cross_origin = true;
        }
        let method = &self.request.method;
        if (status == StatusCode::SEE_OTHER && method != Method::HEAD)
            || (matches!(status.as_u16(), 301 | 302) && method == Method::POST)
        {
            self.attempt.as_get = true;
        }
        self.attempt.redirects += 1;
        self.attempt.uri = Some(next);
        Ok(())
    }
}

/// Resolves a `Location` against the URL it came from (RFC 3986, section 5.2, without
/// dot-segment removal: servers send absolute paths in practice).
fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    if let Ok(uri) = location.parse::<Uri>() {
        if uri.scheme().is_some() {
            return uri.authority().is_some().then_some(uri);
        }
    }
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let target = if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else if location.starts_with('?') {
        format!("{scheme}://{authority}{}{location}", base.path())
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{scheme}://{authority}{dir}{location}")
    };
    target.parse().ok()
}

impl<S> Stream for EventSource<S>
where
    S: Service<Request<RequestBody>> + Unpin,
    S::Error: Into<BoxError>,
{
    type Item = Result<Event, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Closed => return Poll::Ready(None),
                State::Waiting => {
                    if let Some(timer) = &mut this.timer {
                        ready!(timer.as_mut().poll(cx));
                    }
                    this.state = State::Idle;
                }
                State::Idle => {
                    if let Err(e) = ready!(this.service.poll_ready(cx)) {
                        return this.fail(Error::Transport(e.into()));
                    }
                    let request = match this.build_request() {
                        Ok(request) => request,
                        Err(e) => return this.fail(e),
                    };
                    let future = (this.call)(&mut this.service, request);
                    this.state = State::Connecting(future);
                    this.start_read_timer();
                }
                State::Connecting(future) => match future.as_mut().poll(cx) {
                    Poll::Ready(Ok(response)) => {
                        if let Some(poll) = this.on_response(response) {
                            return poll;
                        }
                    }
                    Poll::Ready(Err(e)) => return this.fail(Error::Transport(e)),
                    Poll::Pending => {
                        if this.timed_out(cx) {
                            let timeout = this.read_timeout.unwrap_or_default();
                            return this.fail(Error::ReadTimeout(timeout));
                        }
                        return Poll::Pending;
                    }
                },
                State::Open(body) => {
                    match this.decoder.decode() {
                        Ok(Some(Decoded::Event(event))) => {
                            // A connection that delivers an event is a working one.
                            this.failures = 0;
                            return Poll::Ready(Some(Ok(Event::Message(event))));
                        }
                        Ok(Some(Decoded::Comment(comment))) => {
                            return Poll::Ready(Some(Ok(Event::Comment(comment))));
                        }
                        Ok(Some(_)) => continue, // `retry`: the decoder keeps it
                        Ok(None) => {}
                        Err(tower_sse_core::DecodeError::EventTooLarge { limit }) => {
                            return Poll::Ready(Some(Err(Error::EventTooLarge { limit })));
                        }
                        Err(_) => continue,
                    }
                    match body.as_mut().poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            if let Ok(data) = frame.into_data() {
                                if this.read_timeout.is_some() {
                                    this.last_read = Some(Instant::now());
                                }
                                this.decoder.feed(&data);
                            }
                        }
                        Poll::Ready(Some(Err(e))) => return this.fail(Error::Body(e)),
                        Poll::Ready(None) => return this.fail(Error::StreamEnded),
                        Poll::Pending => {
                            if this.timed_out(cx) {
                                let timeout = this.read_timeout.unwrap_or_default();
                                return this.fail(Error::ReadTimeout(timeout));
                            }
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve() {
        let base: Uri = "http://a.test:8080/x/y?q=1".parse().unwrap();
        let cases = [
            ("https://b.test/z", "https://b.test/z"),
            ("/p?r=2", "http://a.test:8080/p?r=2"),
            ("//c.test/d", "http://c.test/d"),
            ("w", "http://a.test:8080/x/w"),
            ("?s=3", "http://a.test:8080/x/y?s=3"),
        ];
        for (location, expected) in cases {
            assert_eq!(resolve(&base, location).unwrap().to_string(), expected);
        }
    }
}
