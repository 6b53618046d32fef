//! The server process of one row: serves event streams that never send an event, so that
//! all a connection costs is what the serving stack keeps for it and its heartbeats.

use std::{convert::Infallible, time::Duration};

use axum::{Router, body::Body, response::Response, routing::get, serve::ListenerExt};
use bytes::Bytes;
use futures_util::stream;
use http::header::CONTENT_TYPE;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower::{Layer, service_fn};
use tower_sse::SseLayer;

use crate::sockets::commands;

/// The kinds of server, one per row: (kind, description, sends heartbeats).
pub(crate) const KINDS: &[(&str, &str, bool)] = &[
    (
        "hyper",
        "bare hyper http1, pending body, no heartbeat",
        false,
    ),
    (
        "hyper-heartbeat",
        "bare hyper http1, hand-rolled heartbeat (a tokio interval per stream)",
        true,
    ),
    ("hyper-layer", "hyper http1 + SseLayer", true),
    (
        "hyper-auto-layer",
        "hyper-util auto builder (HTTP/1 or 2) + SseLayer",
        true,
    ),
    (
        "hyper-auto-http1-layer",
        "hyper-util auto builder, `http1_only`, no upgrades + SseLayer",
        true,
    ),
    ("axum-layer", "axum::serve + Router + SseLayer", true),
    (
        "axum-layer-http1",
        "the same Router + SseLayer on hyper http1 (no axum::serve)",
        true,
    ),
];

type Pending = StreamBody<stream::Pending<Result<Frame<Bytes>, Infallible>>>;

fn pending_stream() -> http::Response<Pending> {
    let mut response = http::Response::new(StreamBody::new(stream::pending()));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// What most hand-written servers do for keep-alive: an interval per stream, a comment on
/// each tick.
fn heartbeat_stream(
    interval: Duration,
) -> http::Response<StreamBody<impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>>>>
{
    let start = tokio::time::Instant::now() + interval;
    let ticks = tokio::time::interval_at(start, interval);
    let beats = stream::unfold(ticks, |mut ticks| async move {
        ticks.tick().await;
        Some((Ok(Frame::data(Bytes::from_static(b":\n\n"))), ticks))
    });
    let mut response = http::Response::new(StreamBody::new(beats));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

async fn axum_pending() -> Response {
    let mut response = Response::new(Body::from_stream(stream::pending::<
        Result<Bytes, Infallible>,
    >()));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream"),
    );
    response
}

/// Runs the server process: prints `READY <port>`, then serves until its stdin closes.
pub(crate) fn run(kind: &str, heartbeat: Duration) -> Result<(), String> {
    let runtime = crate::sockets::server_runtime()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        commands(|_| {});
        let layer = SseLayer::new().heartbeat(heartbeat);
        println!("READY {port}");
        match kind {
            "axum-layer" => {
                let app = Router::new()
                    .route("/events", get(axum_pending))
                    .layer(layer);
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, app).await.map_err(|e| e.to_string())
            }
            "axum-layer-http1" => {
                let app = Router::new()
                    .route("/events", get(axum_pending))
                    .layer(layer);
                accept(listener, |io| {
                    let service = TowerToHyperService::new(app.clone());
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(io, service)
                            .await;
                    });
                })
                .await
            }
            "hyper-auto-layer" => {
                let service = layer.layer(service_fn(
                    |_: http::Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(pending_stream())
                    },
                ));
                accept(listener, |io| {
                    let service = TowerToHyperService::new(service.clone());
                    tokio::spawn(async move {
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection_with_upgrades(io, service)
                            .await;
                    });
                })
                .await
            }
            "hyper-auto-http1-layer" => {
                let service = layer.layer(service_fn(
                    |_: http::Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(pending_stream())
                    },
                ));
                let builder =
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
                accept(listener, |io| {
                    let service = TowerToHyperService::new(service.clone());
                    let builder = builder.clone();
                    tokio::spawn(async move {
                        let _ = builder.serve_connection(io, service).await;
                    });
                })
                .await
            }
            "hyper" | "hyper-heartbeat" | "hyper-layer" => {
                let beat = kind == "hyper-heartbeat";
                let with_layer = kind == "hyper-layer";
                accept(listener, |io| {
                    let http = hyper::server::conn::http1::Builder::new();
                    if with_layer {
                        let service = TowerToHyperService::new(layer.clone().layer(service_fn(
                            |_: http::Request<hyper::body::Incoming>| async {
                                Ok::<_, Infallible>(pending_stream())
                            },
                        )));
                        tokio::spawn(async move { http.serve_connection(io, service).await });
                    } else if beat {
                        let service = hyper::service::service_fn(move |_| async move {
                            Ok::<_, Infallible>(heartbeat_stream(heartbeat))
                        });
                        tokio::spawn(async move { http.serve_connection(io, service).await });
                    } else {
                        let service = hyper::service::service_fn(|_| async {
                            Ok::<_, Infallible>(pending_stream())
                        });
                        tokio::spawn(async move { http.serve_connection(io, service).await });
                    }
                })
                .await
            }
            other => Err(format!("unknown server kind {other:?}")),
        }
    })
}

/// Accepts connections (with `TCP_NODELAY`, as every row sets it) and hands them to `serve`.
async fn accept(
    listener: TcpListener,
    mut serve: impl FnMut(TokioIo<tokio::net::TcpStream>),
) -> Result<(), String> {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                serve(TokioIo::new(stream));
            }
            // Out of file descriptors: say so once and keep serving what is open.
            Err(e) => {
                eprintln!("idle server: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}
