//! A resumable token stream, the kind AI chat apps serve.
//!
//! Run with `cargo run -p example-llm-tokens` and open <http://127.0.0.1:3001>.
//!
//! `POST /ask` (the body is the question) starts a generation that runs on its own task,
//! apart from any connection: a fake model that publishes one `token` event per word, with a
//! delay per token, to the [`Hub`] topic of that answer, then a `done` event. It answers
//! `{"id":N}` at once. `GET /answers/N` streams the answer: from its first token on a first
//! connection, and after the `Last-Event-ID` on a reconnection, so a client whose network
//! drops mid-answer continues where it left off, with nothing lost and nothing repeated.
//!
//! ```sh
//! curl -d 'why is the sky blue?' localhost:3001/ask    # {"id":1}
//! curl -N localhost:3001/answers/1
//! ```
//!
//! Flags: `--addr ADDR` (default `127.0.0.1:3001`), `--token-ms N` (default 60).

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{StatusCode, header::CONTENT_TYPE},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use tower_sse_axum::{Event, Hub, HubStream, LastEventId, ShutdownSignal, SseLayer};

/// The application state: the hub, and where each answer starts in its topic.
#[derive(Clone)]
struct AppState {
    hub: Hub,
    next_id: Arc<AtomicU64>,
    /// The id of each answer's `start` event: a first connection resumes after it, so it gets
    /// every token however late it connects.
    starts: Arc<Mutex<HashMap<u64, String>>>,
    token_delay: Duration,
}

fn topic(id: u64) -> String {
    format!("answer-{id}")
}

async fn ask(State(state): State<AppState>, question: Bytes) -> Response {
    let Ok(question) = std::str::from_utf8(&question) else {
        return (StatusCode::BAD_REQUEST, "the question is not valid UTF-8\n").into_response();
    };
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let topic = topic(id);
    let start = Event::new()
        .event("start")
        .expect("no line break")
        .data(question);
    let start = match state.hub.publish(&topic, &start).await {
        Ok(logged) => logged.id().to_owned(),
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    };
    state
        .starts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, start);
    // The generation belongs to the server, not to a connection.
    tokio::spawn(generate(
        state.hub.clone(),
        topic,
        answer_to(question),
        state.token_delay,
    ));
    (
        [(CONTENT_TYPE, "application/json")],
        serde_json::json!({ "id": id }).to_string(),
    )
        .into_response()
}

/// The fake model's answer, in tokens (each word with the space before it).
fn answer_to(question: &str) -> Vec<String> {
    let text = format!(
        "You asked: \"{}\". Here is an answer, one token at a time, as a language model would \
         stream it. Drop the connection halfway and reconnect: the stream resumes from the \
         last token you received, because every token is an event with an id in the log.",
        question.trim()
    );
    let mut tokens = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        tokens.push(if i == 0 {
            word.to_owned()
        } else {
            format!(" {word}")
        });
    }
    tokens
}

async fn generate(hub: Hub, topic: String, tokens: Vec<String>, delay: Duration) {
    for token in tokens {
        tokio::time::sleep(delay).await;
        let event = Event::new()
            .event("token")
            .expect("no line break")
            .data(token);
        if hub.publish(&topic, &event).await.is_err() {
            return;
        }
    }
    let done = Event::new().event("done").expect("no line break").data("");
    let _ = hub.publish(&topic, &done).await;
}

async fn answer(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    last: LastEventId,
) -> Result<HubStream, StatusCode> {
    let start = state
        .starts
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned()
        .ok_or(StatusCode::NOT_FOUND)?;
    // A reconnecting client resumes after its last token; a new one after the start.
    let cursor = last.log_cursor().unwrap_or(&start);
    let subscription = state.hub.subscribe(&topic(id), Some(cursor)).await;
    subscription
        .map(HubStream)
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

fn app(token_delay: Duration, shutdown: &ShutdownSignal) -> Router {
    let state = AppState {
        hub: Hub::new(),
        next_id: Arc::new(AtomicU64::new(1)),
        starts: Arc::default(),
        token_delay,
    };
    Router::new()
        .route("/", get(index))
        .route("/ask", post(ask))
        .route("/answers/{id}", get(answer))
        .with_state(state)
        .layer(
            SseLayer::new()
                .retry(Duration::from_millis(1000))
                .shutdown(shutdown.clone()),
        )
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut addr = "127.0.0.1:3001".to_owned();
    let mut token_ms = 60;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match flag.as_str() {
            "--addr" => addr = value,
            "--token-ms" => token_ms = value.parse().unwrap_or(token_ms),
            _ => {
                eprintln!("usage: example-llm-tokens [--addr ADDR] [--token-ms N]");
                std::process::exit(2);
            }
        }
    }
    let shutdown = ShutdownSignal::new();
    let app = app(Duration::from_millis(token_ms), &shutdown);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.trigger();
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.triggered())
        .await
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper::{Request, body::Incoming};
    use hyper_util::rt::TokioIo;
    use tower_sse_axum::{Decoded, Decoder, MessageEvent};

    use super::*;

    const NETWORK: Duration = Duration::from_secs(10);

    async fn send(addr: SocketAddr, request: Request<Full<Bytes>>) -> Response<Incoming> {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        tokio::time::timeout(NETWORK, sender.send_request(request))
            .await
            .unwrap()
            .unwrap()
    }

    type Response<B> = hyper::Response<B>;

    async fn next_event(body: &mut Incoming, decoder: &mut Decoder) -> MessageEvent {
        loop {
            if let Some(Decoded::Event(event)) = decoder.decode().unwrap() {
                return event;
            }
            let frame = tokio::time::timeout(NETWORK, body.frame()).await.unwrap();
            if let Ok(data) = frame.unwrap().unwrap().into_data() {
                decoder.feed(&data);
            }
        }
    }

    fn get(path: &str, last_event_id: Option<&str>) -> Request<Full<Bytes>> {
        let mut request = Request::get(path).header("host", "localhost");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.body(Full::default()).unwrap()
    }

    /// A client drops mid-answer and reconnects with its last id: it gets the rest of the
    /// answer, nothing lost and nothing repeated, while the generation never stopped.
    #[tokio::test]
    async fn reconnect_mid_answer_continues_where_it_left_off() {
        let shutdown = ShutdownSignal::new();
        let app = app(Duration::from_millis(15), &shutdown);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let ask = Request::post("/ask")
            .header("host", "localhost")
            .body(Full::new(Bytes::from_static(b"why?")))
            .unwrap();
        let response = send(addr, ask).await;
        let json = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&json[..], br#"{"id":1}"#);
        let expected: String = answer_to("why?").concat();

        let mut received = String::new();
        let mut ids = Vec::new();
        let mut decoder = Decoder::new();
        let mut body = send(addr, get("/answers/1", None)).await.into_body();
        for _ in 0..5 {
            let event = next_event(&mut body, &mut decoder).await;
            assert_eq!(event.event_type, "token");
            received.push_str(&event.data);
            ids.push(event.last_event_id);
        }
        drop(body); // the network drops mid-answer
        tokio::time::sleep(Duration::from_millis(100)).await; // tokens go on meanwhile

        let mut decoder = Decoder::new();
        let resume = get("/answers/1", ids.last().map(|id| id.as_str()));
        let mut body = send(addr, resume).await.into_body();
        loop {
            let event = next_event(&mut body, &mut decoder).await;
            if event.event_type == "done" {
                break;
            }
            assert_eq!(event.event_type, "token");
            received.push_str(&event.data);
            assert!(
                !ids.contains(&event.last_event_id),
                "repeated {}",
                event.last_event_id
            );
            ids.push(event.last_event_id);
        }
        assert_eq!(received, expected);

        // A late first connection still gets the whole answer, from the start.
        let mut decoder = Decoder::new();
        let mut body = send(addr, get("/answers/1", None)).await.into_body();
        let mut replayed = String::new();
        loop {
            let event = next_event(&mut body, &mut decoder).await;
            if event.event_type == "done" {
                break;
            }
            replayed.push_str(&event.data);
        }
        assert_eq!(replayed, expected);

        let missing = send(addr, get("/answers/99", None)).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    }
}
