//! The routes: `POST /ask`, `GET /answers/{id}`, `DELETE /answers/{id}`, and the page.

use std::{collections::HashMap, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, Path, Query, State},
    http::{HeaderMap, StatusCode, header::CONTENT_TYPE},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use tower_sse::generation::{CancelOutcome, GenerationError, Generations, Opened, Resume};
use tower_sse_axum::{LastEventId, ShutdownSignal, SseLayer};
use tower_sse_core::{ClaimStore, EventLog};

use crate::{model, responses};

/// The longest question accepted, in bytes.
pub(crate) const MAX_QUESTION: usize = 16 * 1024;

pub(crate) struct AppState<L: EventLog, S: ClaimStore> {
    pub(crate) generations: Generations<L, S>,
    pub(crate) token_delay: Duration,
}

impl<L: EventLog, S: ClaimStore> Clone for AppState<L, S> {
    fn clone(&self) -> Self {
        Self {
            generations: self.generations.clone(),
            token_delay: self.token_delay,
        }
    }
}

pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, format!("{message}\n")).into_response()
}

pub(crate) fn generation_error(e: &GenerationError) -> Response {
    let status = match e {
        GenerationError::NotFound => StatusCode::NOT_FOUND,
        GenerationError::KeyTooLong { .. } | GenerationError::InvalidCursor => {
            StatusCode::BAD_REQUEST
        }
        GenerationError::TooManyRunning { .. } => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut message = e.to_string();
    if let Some(source) = std::error::Error::source(e) {
        message = format!("{message}: {source}");
    }
    error(status, message)
}

async fn ask<L: EventLog, S: ClaimStore>(
    State(state): State<AppState<L, S>>,
    headers: HeaderMap,
    question: Bytes,
) -> Response {
    let Ok(question) = std::str::from_utf8(&question) else {
        return error(StatusCode::BAD_REQUEST, "the question is not valid UTF-8");
    };
    let key = match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(key)) if !key.is_empty() => Some(key),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "Idempotency-Key must be non-empty visible ASCII",
            );
        }
    };
    let tokens = model::answer_to(question);
    let delay = state.token_delay;
    let started = state
        .generations
        .start(key, move |sink| model::generate(sink, tokens, delay))
        .await;
    match started {
        Ok(started) => (
            [(CONTENT_TYPE, "application/json")],
            serde_json::json!({ "id": started.id }).to_string(),
        )
            .into_response(),
        Err(e) => generation_error(&e),
    }
}

async fn answer<L: EventLog, S: ClaimStore>(
    State(state): State<AppState<L, S>>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    last: LastEventId,
) -> Response {
    let resume = match Resume::from_request(
        last.log_cursor(),
        query.get("starting_after").map(String::as_str),
    ) {
        Ok(resume) => resume,
        Err(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "starting_after must be a sequence number (0, 1, 2, …)",
            );
        }
    };
    match state.generations.open(&id, resume).await {
        Ok(Opened::Stream(stream)) => stream.into_response().map(Body::new),
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => generation_error(&e),
    }
}

async fn cancel<L: EventLog, S: ClaimStore>(
    State(state): State<AppState<L, S>>,
    Path(id): Path<String>,
) -> Response {
    match state.generations.cancel(&id).await {
        Ok(CancelOutcome::Requested) => {
            (StatusCode::ACCEPTED, "{\"status\":\"cancelling\"}").into_response()
        }
        Ok(CancelOutcome::Cancelled) => (
            [(CONTENT_TYPE, "application/json")],
            "{\"status\":\"cancelled\"}",
        )
            .into_response(),
        Ok(_) => (
            [(CONTENT_TYPE, "application/json")],
            "{\"status\":\"finished\"}",
        )
            .into_response(),
        Err(e) => generation_error(&e),
    }
}

async fn index() -> Html<&'static str> {
    Html(include_str!("index.html"))
}

/// The application over `generations`.
pub(crate) fn router<L: EventLog, S: ClaimStore>(
    generations: Generations<L, S>,
    token_delay: Duration,
    shutdown: &ShutdownSignal,
) -> Router {
    let state = AppState {
        generations,
        token_delay,
    };
    Router::new()
        .route("/", get(index))
        .route("/ask", post(ask::<L, S>))
        .route("/answers/{id}", get(answer::<L, S>).delete(cancel::<L, S>))
        .route("/v1/responses", post(responses::create::<L, S>))
        .route("/v1/responses/{id}", get(responses::retrieve::<L, S>))
        .layer(DefaultBodyLimit::max(MAX_QUESTION))
        .with_state(state)
        .layer(
            SseLayer::new()
                .retry(Duration::from_millis(1000))
                .shutdown(shutdown.clone()),
        )
}
