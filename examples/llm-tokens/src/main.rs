//! Resumable LLM answers, the showcase of `tower_sse::generation`.
//!
//! Run with `cargo run -p example-llm-tokens` and open <http://127.0.0.1:3001>.
//!
//! ```text
//! --addr ADDR                      listen address (default 127.0.0.1:3001); the first line on
//!                                  stdout is `listening on http://ADDR`
//! --token-ms N                     delay of the fake model per token (default 60)
//! --log memory|redis://HOST:PORT   where answers are kept (default memory); several servers
//!                                  on one Redis serve every answer alike
//! --retention-secs N               how long a finished answer stays readable (default 3600)
//! ```
//!
//! Routes:
//!
//! - `POST /ask` (body: the question, at most 16 KiB; optional `Idempotency-Key` header, at
//!   most 256 bytes) starts the answer on a task of its own and returns `{"id":"…"}` at once;
//!   a repeated key returns the same id and starts nothing.
//! - `GET /answers/{id}` streams `token` events (data `{"sequence_number":N,"text":"…"}`)
//!   and ends with `done` (`error` or `cancelled`, all with data), then the response ends.
//!   `?starting_after=N` or `Last-Event-ID` resumes after that event; a position at or after
//!   the terminal event is answered `204 No Content` (EventSource stops); an unknown id `404`.
//! - `DELETE /answers/{id}` cancels: `200` once the answer ended with `cancelled` (or had
//!   already ended), `202` when the producer runs on another server and will stop shortly.
//!
//! - `POST /v1/responses` and `GET /v1/responses/{id}?stream=true&starting_after=N`: the same
//!   answers shaped like OpenAI's Responses API, read by OpenAI's client libraries.
//!
//! ```sh
//! curl -d 'why is the sky blue?' -H 'Idempotency-Key: q1' localhost:3001/ask  # {"id":"…"}
//! curl -N localhost:3001/answers/ID
//! curl -N 'localhost:3001/answers/ID?starting_after=10'
//! ```

mod app;
mod model;
mod responses;

use std::{io::Write, process::ExitCode, time::Duration};

use tower_sse::{
    Hub,
    generation::{GenerationConfig, Generations},
};
use tower_sse_axum::ShutdownSignal;
use tower_sse_core::{MemoryClaimStore, MemoryLog, Retention};
use tower_sse_redis::{RedisClaimStore, RedisLog};

const USAGE: &str = "usage: example-llm-tokens [--addr ADDR] [--token-ms N] \
                     [--log memory|redis://HOST:PORT] [--retention-secs N]";

struct Options {
    addr: String,
    token_delay: Duration,
    log: Option<String>,
    retention: Duration,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        addr: "127.0.0.1:3001".to_owned(),
        token_delay: Duration::from_millis(60),
        log: None,
        retention: Duration::from_secs(3600),
    };
    let mut args = args;
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag} takes a number, not {value:?}"))
        };
        match flag.as_str() {
            "--addr" => options.addr = value.clone(),
            "--token-ms" => options.token_delay = Duration::from_millis(number()?),
            "--retention-secs" => options.retention = Duration::from_secs(number()?.max(1)),
            "--log" if value == "memory" => options.log = None,
            "--log" if value.starts_with("redis://") => options.log = Some(value.clone()),
            "--log" => {
                return Err(format!(
                    "--log is memory or redis://HOST:PORT, not {value:?}"
                ));
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("example-llm-tokens: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("example-llm-tokens: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let config = GenerationConfig::default().retention(options.retention);
    // The log keeps a whole answer for as long as it stays readable.
    let retention = Retention::default()
        .max_events(usize::try_from(config.max_events).unwrap_or(usize::MAX) + 1)
        .max_age(options.retention + Duration::from_secs(60));
    let shutdown = ShutdownSignal::new();
    let router = match &options.log {
        None => {
            let log = MemoryLog::builder().retention(retention).build();
            let generations = Generations::new(Hub::with_log(log), MemoryClaimStore::new(), config);
            app::router(generations, options.token_delay, &shutdown)
        }
        Some(url) => {
            let log = RedisLog::builder(url.as_str())
                .retention(retention)
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            let store = RedisClaimStore::new(&log);
            // `with_live_log`: tokens appended by a producer on any server reach readers here.
            let generations = Generations::new(Hub::with_live_log(log), store, config);
            app::router(generations, options.token_delay, &shutdown)
        }
    };
    let listener = tokio::net::TcpListener::bind(&options.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{addr}");
    let _ = std::io::stdout().flush();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.trigger();
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown.triggered())
        .await
        .map_err(|e| e.to_string())
}
