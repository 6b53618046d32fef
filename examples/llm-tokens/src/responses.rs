//! The same answers shaped like OpenAI's Responses API, so that OpenAI's own client libraries
//! read them: `POST /v1/responses` (`{"input":"…","stream":true}`; the client's
//! `Idempotency-Key` makes a retried POST return the same response) streams
//! `response.created`, `response.output_text.delta`…, `response.output_text.done`,
//! `response.completed`, each with its `sequence_number`, then `done`;
//! `GET /v1/responses/{id}?stream=true&starting_after=N` resumes it, on any server.

use std::{collections::HashMap, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use tower_sse::generation::{Opened, Resume, TokenSink};
use tower_sse_axum::LastEventId;
use tower_sse_core::{ClaimStore, EventLog};

use crate::{
    app::{AppState, error, generation_error},
    model,
};

/// The response id of generation `id`.
fn response_id(id: &str) -> String {
    format!("resp_{id}")
}

/// The fake model's answer as Responses API events.
async fn generate<L: EventLog>(
    sink: TokenSink<L>,
    tokens: Vec<String>,
    delay: Duration,
) -> Result<(), String> {
    let id = response_id(sink.generation_id());
    let send = |kind: &'static str, body: Value| {
        let sink = &sink;
        async move {
            let mut object = json!({ "type": kind });
            object
                .as_object_mut()
                .expect("an object")
                .extend(body.as_object().cloned().unwrap_or_default());
            sink.event(kind, &object.to_string())
                .await
                .map_err(|e| e.to_string())
        }
    };
    let response = |status: &str| json!({ "id": id, "object": "response", "status": status });
    send(
        "response.created",
        json!({ "response": response("in_progress") }),
    )
    .await?;
    let item = format!("msg_{}", sink.generation_id());
    let mut text = String::new();
    for token in tokens {
        tokio::time::sleep(delay).await;
        text.push_str(&token);
        let delta =
            json!({ "item_id": item, "output_index": 0, "content_index": 0, "delta": token });
        send("response.output_text.delta", delta).await?;
    }
    let done = json!({ "item_id": item, "output_index": 0, "content_index": 0, "text": text });
    send("response.output_text.done", done).await?;
    send(
        "response.completed",
        json!({ "response": response("completed") }),
    )
    .await?;
    Ok(())
}

/// `POST /v1/responses`: starts (or, for a repeated `Idempotency-Key`, finds) the response
/// and streams it from its start.
pub(crate) async fn create<L: EventLog, S: ClaimStore>(
    State(state): State<AppState<L, S>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let Some(input) = request["input"].as_str() else {
        return error(StatusCode::BAD_REQUEST, "input must be a string");
    };
    if request["stream"] != Value::Bool(true) {
        return error(StatusCode::BAD_REQUEST, "only stream: true is served here");
    }
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok());
    let tokens = model::answer_to(input);
    let delay = state.token_delay;
    let started = state
        .generations
        .start(key, move |sink| generate(sink, tokens, delay))
        .await;
    let id = match started {
        Ok(started) => started.id,
        Err(e) => return generation_error(&e),
    };
    match state.generations.open(&id, Resume::Start).await {
        Ok(Opened::Stream(stream)) => stream.into_response().map(Body::new),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => generation_error(&e),
    }
}

/// `GET /v1/responses/{id}?stream=true&starting_after=N`: resumes the stream.
pub(crate) async fn retrieve<L: EventLog, S: ClaimStore>(
    State(state): State<AppState<L, S>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    last: LastEventId,
) -> Response {
    let Some(id) = id.strip_prefix("resp_") else {
        return error(StatusCode::NOT_FOUND, "no such response");
    };
    if query.get("stream").map(String::as_str) != Some("true") {
        return error(StatusCode::BAD_REQUEST, "only stream=true is served here");
    }
    let resume = match Resume::from_request(
        last.log_cursor(),
        query.get("starting_after").map(String::as_str),
    ) {
        Ok(resume) => resume,
        Err(e) => return generation_error(&e),
    };
    match state.generations.open(id, resume).await {
        Ok(Opened::Stream(stream)) => stream.into_response().map(Body::new),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => generation_error(&e),
    }
}
