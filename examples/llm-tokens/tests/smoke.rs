//! Smoke tests of the binary over real sockets: the contract of `POST /ask`,
//! `GET /answers/{id}` and `DELETE /answers/{id}` with the memory log, then two instances on
//! one real `redis-server` (ask on one, stream from the other, cut mid-answer, resume on the
//! first).

use std::{process::Stdio, time::Duration};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming};
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
    time::timeout,
};
use tower_sse_conformance::{RedisServer, send};
use tower_sse_core::{Decoded, Decoder, MessageEvent};

const NETWORK: Duration = Duration::from_secs(10);

async fn start(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_example-llm-tokens"))
        .args(["--addr", "127.0.0.1:0"])
        .args(extra)
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
    assert!(!addr.ends_with(":0"), "{addr}");
    (child, addr)
}

fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Full::new(Bytes::copy_from_slice(body)))
        .unwrap()
}

async fn text(response: Response<Incoming>) -> String {
    let body = timeout(NETWORK, response.into_body().collect())
        .await
        .unwrap();
    String::from_utf8(body.unwrap().to_bytes().to_vec()).unwrap()
}

/// `POST /ask` → the id, a string.
async fn ask(addr: &str, question: &str, key: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let response = send(addr, request("POST", "/ask", &headers, question.as_bytes())).await;
    assert_eq!(response.status(), 200);
    let json: Value = serde_json::from_str(&text(response).await).unwrap();
    json["id"].as_str().expect("the id is a string").to_owned()
}

/// An open event stream and its decoder.
struct Reader {
    body: Incoming,
    decoder: Decoder,
}

impl Reader {
    async fn open(addr: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        let response = send(addr, request("GET", path, headers, b"")).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            body: response.into_body(),
            decoder: Decoder::new(),
        }
    }

    /// The next event, or `None` when the response ended.
    async fn next(&mut self) -> Option<MessageEvent> {
        loop {
            if let Some(Decoded::Event(event)) = self.decoder.decode().unwrap() {
                return Some(event);
            }
            let frame = timeout(NETWORK, self.body.frame())
                .await
                .expect("an event in time")?;
            if let Ok(data) = frame.unwrap().into_data() {
                self.decoder.feed(&data);
            }
        }
    }

    /// Every event until the response ends; the last must be terminal.
    async fn rest(&mut self) -> Vec<MessageEvent> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            events.push(event);
        }
        events
    }
}

fn data(event: &MessageEvent) -> Value {
    serde_json::from_str(event.data()).unwrap_or_else(|_| panic!("json data {:?}", event.data()))
}

fn seq(event: &MessageEvent) -> u64 {
    data(event)["sequence_number"].as_u64().unwrap()
}

/// Tokens then one terminal event of `kind`, numbered from `first` on without a hole.
fn check_answer(events: &[MessageEvent], first: u64, kind: &str) -> String {
    let (last, tokens) = events.split_last().expect("events");
    assert_eq!(last.event_type(), kind);
    assert_eq!(data(last)["status"], kind);
    let mut text = String::new();
    for (i, event) in events.iter().enumerate() {
        assert_eq!(seq(event), first + i as u64, "{:?}", event.data());
    }
    for token in tokens {
        assert_eq!(token.event_type(), "token");
        text.push_str(data(token)["text"].as_str().unwrap());
    }
    text
}

#[tokio::test]
async fn the_contract_with_the_memory_log() {
    let (_server, addr) = start(&["--token-ms", "5"]).await;
    let id = ask(&addr, "why?", Some("key-1")).await;
    assert_eq!(
        ask(&addr, "why?", Some("key-1")).await,
        id,
        "same key, same id"
    );
    assert_ne!(ask(&addr, "why?", None).await, id);

    let path = format!("/answers/{id}");
    let events = Reader::open(&addr, &path, &[]).await.rest().await;
    let whole = check_answer(&events, 0, "done");
    assert!(whole.starts_with("You asked: \"why?\"."), "{whole}");
    let done = events.last().unwrap();

    // Resume after a sequence number, or after an id.
    let rest = Reader::open(&addr, &format!("{path}?starting_after=3"), &[])
        .await
        .rest()
        .await;
    assert_eq!(rest.len(), events.len() - 4);
    check_answer(&rest, 4, "done");
    let rest = Reader::open(
        &addr,
        &path,
        &[("last-event-id", events[5].last_event_id())],
    )
    .await
    .rest()
    .await;
    check_answer(&rest, 6, "done");

    // At or after the terminal event: 204. A fresh request: the whole answer again.
    let last_seq = seq(done).to_string();
    for (query, headers) in [
        (format!("?starting_after={last_seq}"), vec![]),
        ("?starting_after=100000".to_owned(), vec![]),
        (String::new(), vec![("last-event-id", done.last_event_id())]),
    ] {
        let response = send(
            &addr,
            request("GET", &format!("{path}{query}"), &headers, b""),
        )
        .await;
        assert_eq!(response.status(), 204, "{query} {headers:?}");
        assert_eq!(text(response).await, "");
    }
    let again = Reader::open(&addr, &path, &[]).await.rest().await;
    assert_eq!(check_answer(&again, 0, "done"), whole);

    // Unknown ids, numeric or not: 404. Bad cursors: 400.
    for unknown in ["1", "0", "abc", "00000000000000000000000000000000"] {
        let response = send(
            &addr,
            request("GET", &format!("/answers/{unknown}"), &[], b""),
        )
        .await;
        assert_eq!(response.status(), 404, "{unknown}");
        let response = send(
            &addr,
            request("DELETE", &format!("/answers/{unknown}"), &[], b""),
        )
        .await;
        assert_eq!(response.status(), 404, "{unknown}");
    }
    let response = send(
        &addr,
        request("GET", &format!("{path}?starting_after=x"), &[], b""),
    )
    .await;
    assert_eq!(response.status(), 400);
    let response = send(
        &addr,
        request("GET", &path, &[("last-event-id", "nope")], b""),
    )
    .await;
    assert_eq!(response.status(), 400);

    // Bounds on what a client sends.
    let response = send(&addr, request("POST", "/ask", &[], &vec![b'a'; 17 * 1024])).await;
    assert_eq!(response.status(), 413);
    let long_key = "k".repeat(300);
    let response = send(
        &addr,
        request("POST", "/ask", &[("idempotency-key", &long_key)], b"q"),
    )
    .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn delete_cancels_and_the_stream_ends_with_cancelled() {
    let (_server, addr) = start(&["--token-ms", "50"]).await;
    let id = ask(&addr, "a long one", None).await;
    let path = format!("/answers/{id}");
    let mut reader = Reader::open(&addr, &path, &[]).await;
    for _ in 0..3 {
        assert_eq!(reader.next().await.unwrap().event_type(), "token");
    }
    let response = send(&addr, request("DELETE", &path, &[], b"")).await;
    assert!(response.status().is_success(), "{}", response.status());
    let mut events = reader.rest().await;
    let last = events.pop().unwrap();
    assert_eq!(last.event_type(), "cancelled");
    assert_eq!(data(&last)["reason"], "request");
    assert!(events.len() < 10);
    // Replayed whole, it still ends with `cancelled`; after it, 204.
    let again = Reader::open(&addr, &path, &[]).await.rest().await;
    check_answer(&again, 0, "cancelled");
    let after = format!("{path}?starting_after={}", seq(again.last().unwrap()));
    assert_eq!(
        send(&addr, request("GET", &after, &[], b"")).await.status(),
        204
    );
}

#[tokio::test]
async fn two_instances_on_one_redis() {
    let redis = RedisServer::start();
    let redis_url = redis.url();
    let log = ["--log", redis_url.as_str(), "--token-ms", "30"];
    let (_a, a) = start(&log).await;
    let (_b, b) = start(&log).await;

    // Ask on A; the same key on B is the same answer, not a second one.
    let id = ask(&a, "shared?", Some("k-42")).await;
    assert_eq!(ask(&b, "shared?", Some("k-42")).await, id);
    let path = format!("/answers/{id}");

    // Stream from B, cut mid-answer, resume on A with the last id.
    let mut on_b = Reader::open(&b, &path, &[]).await;
    let mut events = Vec::new();
    for _ in 0..5 {
        events.push(on_b.next().await.unwrap());
    }
    drop(on_b);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let last = events.last().unwrap().last_event_id().to_owned();
    events.extend(
        Reader::open(&a, &path, &[("last-event-id", &last)])
            .await
            .rest()
            .await,
    );
    let whole = check_answer(&events, 0, "done");
    assert!(whole.starts_with("You asked: \"shared?\"."), "{whole}");

    // Both answer alike after the end.
    for addr in [&a, &b] {
        let again = Reader::open(addr, &path, &[]).await.rest().await;
        assert_eq!(check_answer(&again, 0, "done"), whole);
        let after = format!("{path}?starting_after={}", seq(events.last().unwrap()));
        assert_eq!(
            send(addr, request("GET", &after, &[], b"")).await.status(),
            204
        );
    }

    // Cancel on B an answer produced on A.
    let id = ask(&a, "cancel me", None).await;
    let path = format!("/answers/{id}");
    let mut on_a = Reader::open(&a, &path, &[]).await;
    on_a.next().await.unwrap();
    let response = send(&b, request("DELETE", &path, &[], b"")).await;
    assert!(response.status().is_success(), "{}", response.status());
    let rest = on_a.rest().await;
    assert_eq!(rest.last().unwrap().event_type(), "cancelled");
    assert_eq!(
        send(&b, request("GET", "/answers/1", &[], b""))
            .await
            .status(),
        404
    );
}
