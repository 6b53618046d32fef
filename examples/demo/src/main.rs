//! The tower-sse demo server: the event stream of one topic, fed by a ticker and by
//! `POST /publish`, with heartbeats, a retry hint, resumption and graceful shutdown, on axum,
//! warp or poem alike.
//!
//! Run with `cargo run -p example-demo` and open <http://127.0.0.1:3000>.
//!
//! ```text
//! --addr ADDR            where to listen (default 127.0.0.1:3000; port 0 picks one)
//! --framework NAME       axum | warp | poem (default axum)
//! --heartbeat-ms N       heartbeat interval (default 15000; 0 turns heartbeats off)
//! --retry-ms N           the retry hint sent first on every stream (default none)
//! --tick-ms N            a `tick` event every N ms (default 1000; 0 turns the ticker off)
//! --log memory|redis://HOST:PORT   where events are kept (default memory)
//! --log-capacity N       events kept per topic (default 10000)
//! --ring-capacity N      live events each topic buffers for a subscriber that falls behind,
//!                        before it catches up from the log (default 1024, at most 2^20; the
//!                        ring is allocated whole, 72 bytes an event, per topic with
//!                        subscribers): size it to the event rate times the longest pause
//!                        of a reader, e.g. 65536 for a reconnect storm at 1,000 events/s
//! --tls-cert PEM         serve HTTPS only, HTTP/2 and HTTP/1.1 by ALPN, with this
//! --tls-key PEM          certificate chain and key (PKCS#8, PKCS#1 or SEC1; RSA or ECDSA)
//! --auth-token TOKEN     topics named `private/...` need this token (without the flag they
//!                        are refused): `Authorization: Bearer TOKEN` or `?access_token=TOKEN`
//! --publish-addr ADDR    also serve `POST /publish` on ADDR, from a runtime of its own on its
//!                        own thread, so publishing stays fast while the main runtime is
//!                        saturated (axum over plain HTTP; see the README's production notes)
//! ```
//!
//! The first line on stdout is `listening on http://ADDR` (`https://` with `--tls-cert`)
//! with the bound address; with `--publish-addr` the second is `publishing on http://ADDR`.
//!
//! Routes: `GET /` a page that shows the stream; `GET /events?topic=A&topic=B` the stream of
//! those topics (default `demo`; at most 32; resumes from `Last-Event-ID` or `?lastEventId=`;
//! on a stream of several topics every id is `<topic> <cursor>`); `POST
//! /publish?topic=A&event=TYPE` publishes its body as the data to topic A (default `demo`;
//! 200 `{"id":"..."}`, 400 for an invalid topic, a type with CR, LF or NUL or a body that is
//! not UTF-8, 403 for a `private/` topic without the token); `GET /plain` a `text/plain`
//! response behind the same layer;
//! `GET /metrics` tower-sse's metrics in Prometheus text format (the page's dashboard reads
//! them, with `GET /dashboard.js`). Logs go to stderr, at the level in `RUST_LOG` (`info`).
//!
//! ```sh
//! curl -N localhost:3000/events
//! curl -d 'hello' 'localhost:3000/publish?event=greeting'
//! ```

mod app;
mod axum_server;
mod options;
mod poem_server;
mod publish_runtime;
mod telemetry;
mod tls;
mod topics;
mod warp_server;

use std::{io::Write, process::ExitCode, time::Duration};

use options::{Framework, LogChoice, Options};
use tokio::net::TcpListener;
use tower_sse::{Hub, ShutdownSignal, SseLayer};
use tower_sse_core::{Event, MemoryLog, Retention};
use tower_sse_redis::RedisLog;

/// jemalloc with background purging: after a spike of connections (the end-to-end load run
/// opens 10,000 at once), freed memory goes back to the operating system within seconds,
/// where glibc's malloc keeps it in per-thread arenas. A server choice, not a tower-sse
/// requirement: the crates work with any allocator.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("example-demo: {message}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("example-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    telemetry::install()?;
    let retention = Retention::default().max_events(options.log_capacity);
    let hub = match &options.log {
        LogChoice::Memory => app::DemoHub::Memory(
            Hub::with_log(MemoryLog::builder().retention(retention).build())
                .capacity(options.ring_capacity)
                .authorize(topics::authorizer(options.auth_token.clone())),
        ),
        // Several demo servers on one Redis share one history: `with_live_log` tails the
        // shared log, so events published on any server reach clients on all of them.
        LogChoice::Redis(url) => {
            let log = RedisLog::builder(url.as_str())
                .retention(retention)
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            app::DemoHub::Redis(
                Hub::with_live_log(log)
                    .capacity(options.ring_capacity)
                    .authorize(topics::authorizer(options.auth_token.clone())),
            )
        }
    };
    let shutdown = ShutdownSignal::new();
    let mut layer = SseLayer::new()
        .heartbeat(options.heartbeat)
        .accel_buffering(options.accel_buffering)
        .shutdown(shutdown.clone())
        .final_event(
            Event::new()
                .event("shutdown")
                .expect("no line break")
                .data("the server is shutting down; reconnect shortly"),
        );
    if let Some(retry) = options.retry {
        layer = layer.retry(retry);
    }

    // Certificate and key are read before binding: a bad file fails the start, with the
    // file named, and nothing listens.
    let tls = match &options.tls {
        Some(files) => Some(tls::acceptor(&files.cert, &files.key)?),
        None => None,
    };
    let listener = TcpListener::bind(options.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{addr}");
    let publisher = match options.publish_addr {
        Some(addr) => {
            let publisher = publish_runtime::PublishListener::bind(addr)?;
            println!("publishing on http://{}", publisher.local_addr()?);
            Some(publisher)
        }
        None => None,
    };
    let _ = std::io::stdout().flush();
    eprintln!(
        "framework {}, heartbeat {:?}, retry {:?}, tick {:?}",
        options.framework.name(),
        options.heartbeat,
        options.retry,
        options.tick
    );

    if let Some(every) = options.tick {
        app::spawn_ticker(hub.clone(), every, shutdown.clone());
    }
    tokio::spawn(stop_on_signal(shutdown.clone()));
    if let Some(publisher) = publisher {
        let redis = match &options.log {
            LogChoice::Redis(url) => Some((url.clone(), retention, options.auth_token.clone())),
            LogChoice::Memory => None,
        };
        publisher.spawn(hub.clone(), redis, shutdown.clone())?;
    }

    let served = match options.framework {
        Framework::Axum => axum_server::serve(listener, hub, layer, shutdown, tls).await,
        Framework::Warp => warp_server::serve(listener, hub, layer, shutdown, tls).await,
        Framework::Poem => poem_server::serve(listener, hub, layer, shutdown, tls).await,
    };
    served.map_err(|e| format!("server error: {e}"))?;
    eprintln!("stopped");
    Ok(())
}

/// Triggers `shutdown` on Ctrl-C or SIGTERM.
async fn stop_on_signal(shutdown: ShutdownSignal) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    eprintln!("shutting down: ending streams at the next event boundary");
    shutdown.trigger();
    // A second signal while draining stops at once.
    let _ = tokio::signal::ctrl_c().await;
    std::process::exit(130);
}

/// Fails when a duration is zero, for options where zero means off.
fn nonzero(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}
