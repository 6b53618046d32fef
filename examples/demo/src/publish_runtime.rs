//! `--publish-addr`: `POST /publish` on a listener of its own, served by a runtime of its own.
//!
//! During a reconnect storm the main runtime's workers are saturated by thousands of
//! replaying and live streams, and a publish request waits for a worker behind them (the
//! handler itself takes microseconds). A publisher that must stay fast then gets its own
//! listener, on a one-thread tokio runtime on its own OS thread: the kernel schedules that
//! thread as soon as a request arrives, whatever the main runtime's queue holds. The same
//! `Hub` is shared (it is `Send + Sync`): a publish wakes the subscribers'
//! tasks on the main runtime from this thread.
//!
//! Over Redis the publish runtime connects a log of its own: a Redis connection is driven by
//! tasks of the runtime that opened it, and the main runtime's would put the append back in
//! its queue. Publishing over a live log is an append; the main runtime's tail delivers it,
//! as it does events appended by another server.

use std::{net::SocketAddr, thread};

use axum::{Router, routing::post};
use tower_sse::{Hub, ShutdownSignal};
use tower_sse_core::Retention;
use tower_sse_redis::RedisLog;

use crate::{app::DemoHub, topics};

/// Over Redis: the log's URL, its retention and `--auth-token`, for the publish runtime's own
/// hub.
pub(crate) type RedisPublisher = (String, Retention, Option<String>);

/// The bound listener of `--publish-addr`, before its runtime starts.
pub(crate) struct PublishListener {
    listener: std::net::TcpListener,
}

impl PublishListener {
    /// Binds `addr` (port 0 picks one); errors name the address.
    pub(crate) fn bind(addr: SocketAddr) -> Result<Self, String> {
        let listener = std::net::TcpListener::bind(addr)
            .map_err(|e| format!("cannot listen on {addr} (--publish-addr): {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("--publish-addr {addr}: {e}"))?;
        Ok(Self { listener })
    }

    /// The bound address.
    pub(crate) fn local_addr(&self) -> Result<SocketAddr, String> {
        self.listener.local_addr().map_err(|e| e.to_string())
    }

    /// Serves `POST /publish` on a thread of its own until `shutdown`. `redis` is given when
    /// the hub is over Redis (a log is connected on the new runtime).
    pub(crate) fn spawn(
        self,
        hub: DemoHub,
        redis: Option<RedisPublisher>,
        shutdown: ShutdownSignal,
    ) -> Result<(), String> {
        thread::Builder::new()
            .name("demo-publish".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        eprintln!("example-demo: publish runtime: {e}");
                        return;
                    }
                };
                if let Err(e) = runtime.block_on(serve(self.listener, hub, redis, shutdown)) {
                    eprintln!("example-demo: publish listener: {e}");
                }
            })
            .map(drop)
            .map_err(|e| format!("cannot start the publish thread: {e}"))
    }
}

async fn serve(
    listener: std::net::TcpListener,
    hub: DemoHub,
    redis: Option<RedisPublisher>,
    shutdown: ShutdownSignal,
) -> Result<(), String> {
    let hub = match (redis, hub) {
        (Some((url, retention, token)), DemoHub::Redis(main)) => {
            let log = RedisLog::builder(url.as_str())
                .retention(retention)
                .connect()
                .await
                .map_err(|e| e.to_string())?;
            // The same authorization as the main hub, over this runtime's connection.
            drop(main);
            DemoHub::Redis(Hub::with_live_log(log).authorize(topics::authorizer(token)))
        }
        (_, hub) => hub,
    };
    let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| e.to_string())?;
    let app = Router::new()
        .route("/publish", post(crate::axum_server::publish))
        .with_state(hub);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.triggered())
        .await
        .map_err(|e| e.to_string())
}
