//! The demo's topic contract, on every framework, through the real binary over real sockets:
//! `GET /events?topic=A&topic=B…` (ids `<topic> <cursor>`, data exactly as published, resumed
//! with no loss after a cut), `POST /publish?topic=A`, 400 for invalid names or more than 32
//! topics, and `--auth-token` for `private/` topics (403 without it, no event ever sent).

use std::{process::Stdio, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpStream,
    process::{Child, Command},
    time::timeout,
};
use tower_sse_core::{Decoded, Decoder};

const NETWORK: Duration = Duration::from_secs(10);
const TOKEN: &str = "t0ken";

async fn start(framework: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-demo"))
        .args(["--addr", "127.0.0.1:0", "--framework", framework])
        .args(["--tick-ms", "0", "--auth-token", TOKEN])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    timeout(NETWORK, stdout.read_line(&mut line))
        .await
        .expect("the address in time")
        .unwrap();
    let addr = line
        .trim_end()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .to_owned();
    (child, addr)
}

async fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response<Incoming> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    timeout(NETWORK, sender.send_request(request))
        .await
        .unwrap()
        .unwrap()
}

async fn text(response: Response<Incoming>) -> String {
    let body = timeout(NETWORK, response.into_body().collect())
        .await
        .unwrap();
    String::from_utf8(body.unwrap().to_bytes().to_vec()).unwrap()
}

async fn publish(addr: &str, topic: &str, data: &str, headers: &[(&str, &str)]) -> u16 {
    let path = format!("/publish?topic={topic}&event=note");
    let response = send(addr, "POST", &path, headers, data).await;
    let status = response.status().as_u16();
    let body = text(response).await;
    if status == 200 {
        assert!(body.starts_with(r#"{"id":""#), "{body}");
    } else {
        assert!(!body.trim().is_empty(), "a message with {status}");
    }
    status
}

/// An open stream, decoded: (event type, data, id) as they arrive.
struct Stream {
    body: Incoming,
    decoder: Decoder,
}

impl Stream {
    async fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        let response = send(addr, "GET", path, headers, "").await;
        assert_eq!(response.status(), 200, "{path}");
        Self {
            body: response.into_body(),
            decoder: Decoder::new(),
        }
    }

    async fn next(&mut self) -> (String, String, String) {
        loop {
            if let Some(Decoded::Event(e)) = self.decoder.decode().unwrap() {
                return (
                    e.event_type().into(),
                    e.data().into(),
                    e.last_event_id().into(),
                );
            }
            let frame = timeout(NETWORK, self.body.frame())
                .await
                .expect("an event in time")
                .expect("the stream goes on")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.decoder.feed(&data);
            }
        }
    }
}

async fn check(framework: &str) {
    let (_child, addr) = start(framework).await;
    let addr = addr.as_str();

    // Refusals, each with a message.
    let many: String = (0..33).map(|i| format!("topic=t{i}&")).collect();
    for (path, status) in [
        ("/events?topic=".to_owned(), 400),
        ("/events?topic=a%20b".to_owned(), 400),
        ("/events?topic=a&topic=x%0D%0Ay".to_owned(), 400),
        (format!("/events?{many}"), 400),
        ("/events?topic=a&topic=private/ops".to_owned(), 403),
        (
            "/events?topic=private/ops&access_token=nope".to_owned(),
            403,
        ),
    ] {
        let response = send(addr, "GET", &path, &[], "").await;
        assert_eq!(response.status(), status, "{framework} {path}");
        assert!(!text(response).await.trim().is_empty());
    }
    assert_eq!(publish(addr, "a%20b", "x", &[]).await, 400);
    assert_eq!(publish(addr, "private/ops", "x", &[]).await, 403);
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        publish(
            addr,
            "private/ops",
            "secret-0",
            &[("authorization", &bearer)]
        )
        .await,
        200
    );

    // Three topics on one stream; `private/ops` with the token in the query.
    let path = format!("/events?topic=chat&topic=alerts&topic=private/ops&access_token={TOKEN}");
    let mut stream = Stream::open(addr, &path, &[]).await;
    let topics = ["chat", "alerts", "private/ops"];
    let mut seen = Vec::new();
    for i in 0..2 {
        for topic in topics {
            let data = format!("{topic} {i}\nline two");
            assert_eq!(
                publish(addr, topic, &data, &[("authorization", &bearer)]).await,
                200
            );
        }
    }
    for _ in 0..4 {
        seen.push(stream.next().await);
    }
    // The cut, while all three are published to.
    drop(stream);
    for i in 2..4 {
        for topic in topics {
            let data = format!("{topic} {i}\nline two");
            assert_eq!(
                publish(addr, topic, &data, &[("authorization", &bearer)]).await,
                200
            );
        }
    }
    let last = seen.last().unwrap().2.clone();
    let mut stream = Stream::open(addr, &path, &[("last-event-id", &last)]).await;
    while seen.len() < 12 {
        seen.push(stream.next().await);
    }
    for topic in topics {
        let got: Vec<&str> = seen
            .iter()
            .filter(|(_, _, id)| id.split_once(' ').map(|(t, _)| t) == Some(topic))
            .map(|(_, data, _)| data.as_str())
            .collect();
        let expected: Vec<String> = (0..4).map(|i| format!("{topic} {i}\nline two")).collect();
        assert_eq!(got, expected, "{framework} {topic}");
    }
    assert!(seen.iter().all(|(t, _, _)| t == "note"));

    // A single topic keeps plain ids; the default topic is `demo`.
    let mut single = Stream::open(addr, "/events", &[]).await;
    assert_eq!(publish(addr, "demo", "d", &[]).await, 200);
    let (_, data, id) = single.next().await;
    assert_eq!(data, "d");
    assert!(!id.contains(' '), "{id}");
}

#[tokio::test]
async fn topics_on_axum() {
    check("axum").await;
}

#[tokio::test]
async fn topics_on_warp() {
    check("warp").await;
}

#[tokio::test]
async fn topics_on_poem() {
    check("poem").await;
}
