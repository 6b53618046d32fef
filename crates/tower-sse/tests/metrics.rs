//! The metrics, scraped in Prometheus text over a real socket: every name from startup, the
//! open-streams gauge back to 0 whichever way each stream ended, the close reasons, the
//! replay outcomes, the hub's gauges and counters, and store failures counted once per
//! incident.
//!
//! One test function: the recorder is global to the process, and the assertions are exact.

#![cfg(feature = "metrics")]

use std::{
    convert::Infallible,
    fmt, io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{Router, body::Body, http::header::CONTENT_TYPE, response::Response, routing::get};
use futures_util::{StreamExt, stream};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::timeout,
};
use tower_sse::{Hub, ShutdownSignal, SseLayer, metrics};
use tower_sse_core::{Event, EventLog, LoggedEvent, MemoryLog, Replay, Retention};

const WAIT: Duration = Duration::from_secs(10);

fn install() -> PrometheusHandle {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(metrics::STREAM_DURATION.into()),
            metrics::STREAM_DURATION_BUCKETS,
        )
        .unwrap()
        .set_buckets_for_metric(
            Matcher::Full(metrics::LOG_READ_DURATION.into()),
            metrics::LOG_READ_BUCKETS,
        )
        .unwrap()
        .install_recorder()
        .unwrap();
    metrics::describe();
    handle
}

/// The value of one series (`name` or `name{label="value"}`) in the exposition text.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(series)?;
            rest.strip_prefix(' ')?.trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no series {series} in:\n{text}"))
}

fn endless(first: &'static str) -> Response {
    let body = stream::once(async move { Ok::<_, Infallible>(first) }).chain(stream::pending());
    event_stream(Body::from_stream(body))
}

fn event_stream(body: Body) -> Response {
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .body(body)
        .unwrap()
}

/// A log whose every operation fails, as a store that went away.
#[derive(Debug)]
struct DownLog {
    reads: AtomicUsize,
}

#[derive(Debug)]
struct Down;

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("store is down")
    }
}

impl std::error::Error for Down {}

impl EventLog for DownLog {
    type Error = Down;

    async fn append(&self, _: &str, _: &Event<'_>) -> Result<LoggedEvent, Down> {
        Err(Down)
    }

    async fn read_after(&self, _: &str, _: Option<&str>, _: usize) -> Result<Replay, Down> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Err(Down)
    }

    fn compare_ids(&self, _: &str, _: &str) -> Option<std::cmp::Ordering> {
        None
    }
}

/// Sends a GET and returns the connection once the response head and `until` were read, with
/// what was read.
async fn open_seen(
    addr: &str,
    path: &str,
    last_event_id: Option<&str>,
    until: &str,
) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let header = last_event_id
        .map(|id| format!("last-event-id: {id}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\n{header}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let seen = read_until(&mut stream, until).await;
    assert!(seen.contains("text/event-stream"), "{seen}");
    (stream, seen)
}

async fn open(addr: &str, path: &str, last_event_id: Option<&str>, until: &str) -> TcpStream {
    open_seen(addr, path, last_event_id, until).await.0
}

/// Reads until `needle` has been seen.
async fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    timeout(WAIT, async {
        while !String::from_utf8_lossy(&seen).contains(needle) {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "closed before {needle:?}: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {needle:?} in {}", String::from_utf8_lossy(&seen)));
    String::from_utf8(seen).unwrap()
}

/// Reads until the server closes the connection (or resets it).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server closes the stream");
    String::from_utf8_lossy(&seen).into_owned()
}

async fn scrape(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let text = read_to_close(&mut stream).await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// Scrapes until `series` has `want` (streams close asynchronously after the socket does).
async fn settle(addr: &str, series: &str, want: f64) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(addr).await;
        if value(&text, series) == want || Instant::now() > deadline {
            assert_eq!(value(&text, series), want, "{series} in:\n{text}");
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_every_stream_over_a_real_socket() {
    let handle = install();

    // Every metric is there from the start, at 0, with each label value.
    let text = handle.render();
    for name in metrics::ALL {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{text}"
        );
    }
    assert_eq!(value(&text, metrics::ACTIVE_STREAMS), 0.0);
    assert_eq!(value(&text, metrics::STREAMS), 0.0);
    for reason in metrics::CLOSE_REASONS {
        let series = format!("{}_count{{reason=\"{reason}\"}}", metrics::STREAM_DURATION);
        assert_eq!(value(&text, &series), 0.0);
        let bucket = format!(
            "{}_bucket{{reason=\"{reason}\",le=\"1\"}}",
            metrics::STREAM_DURATION
        );
        assert_eq!(
            value(&text, &bucket),
            0.0,
            "explicit buckets, not a summary"
        );
    }
    for outcome in metrics::REPLAY_OUTCOMES {
        assert_eq!(
            value(
                &text,
                &format!("{}{{outcome=\"{outcome}\"}}", metrics::REPLAYS)
            ),
            0.0
        );
    }
    for op in metrics::LOG_OPS {
        assert_eq!(
            value(&text, &format!("{}{{op=\"{op}\"}}", metrics::LOG_ERRORS)),
            0.0
        );
        assert_eq!(
            value(&text, &format!("{}{{op=\"{op}\"}}", metrics::LOG_FAILING)),
            0.0
        );
    }
    assert_eq!(
        value(&text, &format!("{}_count", metrics::LOG_READ_DURATION)),
        0.0
    );
    for name in [
        metrics::EVENTS,
        metrics::EVENT_BYTES,
        metrics::HEARTBEATS,
        metrics::REPLAYED_EVENTS,
        metrics::HUB_SUBSCRIBERS,
        metrics::HUB_PUBLISHED,
        metrics::HUB_LAGGED,
    ] {
        assert_eq!(value(&text, name), 0.0, "{name}");
    }

    // The log the layer replays from: five events, the first two dropped by retention.
    let log = Arc::new(
        MemoryLog::builder()
            .retention(Retention::default().max_events(3))
            .build(),
    );
    let ids: Vec<String> = (1..=5)
        .map(|n| {
            let event = Event::new().data(format!("logged {n}"));
            log.append_sync("t", &event).unwrap().id().to_owned()
        })
        .collect();
    let shutdown = ShutdownSignal::new();
    let main = Router::new()
        .route("/events", get(|| async { endless("data: hello\n\n") }))
        .route(
            "/finite",
            get(|| async { event_stream(Body::from("data: a\n\ndata: b\n\n")) }),
        )
        .route(
            "/fail",
            get(|| async {
                // The error comes after the event went out.
                let body =
                    stream::once(async { Ok(&b"data: x\n\n"[..]) }).chain(stream::once(async {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Err(io::Error::other("handler failed"))
                    }));
                event_stream(Body::from_stream(body))
            }),
        )
        .route("/plain", get(|| async { "not an event stream" }))
        .layer(
            SseLayer::new()
                .heartbeat(Duration::from_millis(50))
                .shutdown(shutdown.clone())
                .replay(Arc::clone(&log))
                .stream_key(|_| "t".to_owned()),
        );
    let short = Router::new()
        .route("/short", get(|| async { endless("data: short\n\n") }))
        .layer(SseLayer::new().max_lifetime(Duration::from_millis(200), Duration::ZERO));
    let down = Arc::new(DownLog {
        reads: AtomicUsize::new(0),
    });
    let flaky = Router::new()
        .route("/down", get(|| async { endless("data: live\n\n") }))
        .layer(SseLayer::new().replay(Arc::clone(&down)));
    let scrape_route = Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move { handle.render() }
        }),
    );
    let app = main.merge(short).merge(flaky).merge(scrape_route);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // A plain route is not an event stream.
    let mut plain = TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"GET /plain HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    read_to_close(&mut plain).await;

    // 1. The client goes away mid-stream, after a heartbeat.
    let mut gone = open(&addr, "/events", None, "data: hello").await;
    read_until(&mut gone, "\r\n:\n\n").await;
    let text = scrape(&addr).await;
    assert_eq!(value(&text, metrics::ACTIVE_STREAMS), 1.0);
    drop(gone);
    let text = settle(&addr, metrics::ACTIVE_STREAMS, 0.0).await;
    assert_eq!(
        value(
            &text,
            &format!(
                "{}_count{{reason=\"client_gone\"}}",
                metrics::STREAM_DURATION
            )
        ),
        1.0
    );
    assert!(value(&text, metrics::HEARTBEATS) >= 1.0);
    assert_eq!(
        value(&text, metrics::EVENTS),
        1.0,
        "hello; not the priming or heartbeats"
    );
    assert_eq!(
        value(&text, metrics::EVENT_BYTES),
        b"data: hello\n\n".len() as f64
    );

    // 2. The handler ends: two events.
    let (mut finite, seen) = open_seen(&addr, "/finite", None, "data: b").await;
    if !seen.ends_with("\r\n0\r\n\r\n") {
        read_to_close_or_end(&mut finite).await;
    }
    // 3. The handler fails after an event: the connection is dropped.
    let mut fail = open(&addr, "/fail", None, "data: x").await;
    read_to_close(&mut fail).await;
    // 4. The lifetime ends a stream.
    let (mut short, seen) = open_seen(&addr, "/short", None, "data: short").await;
    if !seen.ends_with("\r\n0\r\n\r\n") {
        read_to_close_or_end(&mut short).await;
    }

    // 5. Reconnects: resumed, a gap, an unknown id, and a malformed one (too long).
    let mut resumed = open(&addr, "/events", Some(&ids[3]), "logged 5").await;
    let mut gap = open(&addr, "/events", Some(&ids[0]), "event: sse-gap").await;
    let mut unknown = open(&addr, "/events", Some("no-such-id"), "event: sse-gap").await;
    let long = "x".repeat(1000);
    let mut malformed = open(&addr, "/events", Some(&long), "event: sse-gap").await;
    let text = scrape(&addr).await;
    assert_eq!(value(&text, metrics::ACTIVE_STREAMS), 4.0);
    assert_eq!(
        value(
            &text,
            &format!("{}{{outcome=\"resumed\"}}", metrics::REPLAYS)
        ),
        1.0
    );
    assert_eq!(
        value(&text, &format!("{}{{outcome=\"gap\"}}", metrics::REPLAYS)),
        1.0
    );
    assert_eq!(
        value(
            &text,
            &format!("{}{{outcome=\"unknown\"}}", metrics::REPLAYS)
        ),
        2.0
    );
    assert_eq!(value(&text, metrics::REPLAYED_EVENTS), 1.0, "logged 5 only");
    assert!(value(&text, &format!("{}_count", metrics::LOG_READ_DURATION)) >= 4.0);

    // 6. The store is down: two reconnects, one incident; a good read closes it.
    let first = open(&addr, "/down", Some("1"), "log-error").await;
    let second = open(&addr, "/down", Some("2"), "log-error").await;
    assert_eq!(down.reads.load(Ordering::SeqCst), 2);
    let text = scrape(&addr).await;
    assert_eq!(
        value(
            &text,
            &format!("{}{{outcome=\"log_error\"}}", metrics::REPLAYS)
        ),
        2.0
    );
    assert_eq!(
        value(&text, &format!("{}{{op=\"read\"}}", metrics::LOG_ERRORS)),
        1.0
    );
    assert_eq!(
        value(&text, &format!("{}{{op=\"read\"}}", metrics::LOG_FAILING)),
        1.0
    );
    drop((first, second));
    let again = open(&addr, "/events", Some(&ids[4]), "data: hello").await;
    let text = scrape(&addr).await;
    assert_eq!(
        value(&text, &format!("{}{{op=\"read\"}}", metrics::LOG_FAILING)),
        0.0
    );
    assert_eq!(
        value(&text, &format!("{}{{op=\"read\"}}", metrics::LOG_ERRORS)),
        1.0
    );
    drop(again);
    settle(&addr, metrics::ACTIVE_STREAMS, 4.0).await;

    // 7. Shutdown ends the four reconnected streams.
    shutdown.trigger();
    for stream in [&mut resumed, &mut gap, &mut unknown, &mut malformed] {
        read_to_close_or_end(stream).await;
    }
    let text = settle(&addr, metrics::ACTIVE_STREAMS, 0.0).await;
    let count = |reason: &str| {
        value(
            &text,
            &format!("{}_count{{reason=\"{reason}\"}}", metrics::STREAM_DURATION),
        )
    };
    assert_eq!(
        count("client_gone"),
        4.0,
        "1 + the two on /down + the good read"
    );
    assert_eq!(count("handler_ended"), 1.0);
    assert_eq!(count("error"), 1.0);
    assert_eq!(count("lifetime"), 1.0);
    assert_eq!(count("shutdown"), 4.0);
    assert_eq!(
        value(&text, metrics::STREAMS),
        11.0,
        "the plain route is not counted"
    );

    // The hub: subscribers, publishes, and a subscriber that lags.
    let hub = Hub::new().capacity(1);
    let mut subscription = hub.subscribe("h", None).await.unwrap();
    let text = scrape(&addr).await;
    assert_eq!(value(&text, metrics::HUB_SUBSCRIBERS), 1.0);
    hub.publish("h", &Event::new().data("0")).await.unwrap();
    let zero = timeout(WAIT, subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(zero.ends_with(b"data: 0\n\n"));
    for n in 1..=3 {
        hub.publish("h", &Event::new().data(n.to_string()))
            .await
            .unwrap();
    }
    let first = timeout(WAIT, subscription.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        first.ends_with(b"data: 1\n\n"),
        "caught up from the log: {first:?}"
    );
    drop(subscription);
    let text = scrape(&addr).await;
    assert_eq!(value(&text, metrics::HUB_SUBSCRIBERS), 0.0);
    assert_eq!(value(&text, metrics::HUB_PUBLISHED), 4.0);
    assert_eq!(value(&text, metrics::HUB_LAGGED), 1.0);
}

/// Reads until the chunked body's terminator or the connection's end.
async fn read_to_close_or_end(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 4096];
    timeout(WAIT, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if seen.ends_with(b"0\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await
    .expect("the stream ends");
    String::from_utf8_lossy(&seen).into_owned()
}
