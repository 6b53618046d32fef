//! [`serve`]: a warp filter behind [`SseLayer`] on hyper, with graceful shutdown.

use std::{future::Future, io, time::Duration};

use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::net::TcpListener;
use tower_layer::Layer;
use tower_sse::SseLayer;
use warp::{Filter, Rejection, Reply};

use crate::{EventStreamService, incident};

/// Serves `filter` behind `layer` on `listener` (HTTP/1.1 and HTTP/2) until `shutdown`
/// completes, then waits for open connections to finish.
///
/// The stack is `layer` around [`EventStreamService`] around [`warp::service`]`(filter)`.
/// Give the layer a [`ShutdownSignal`](tower_sse::ShutdownSignal) and pass its
/// [`triggered`](tower_sse::ShutdownSignal::triggered) future as `shutdown`, so that open
/// event streams end at an event boundary and the server exits.
///
/// Routes whose filter cannot reject (`Error = Infallible`) can be joined with one that can
/// (for example `warp::path(..)`), or given `.recover(..)` first.
///
/// # Errors
///
/// None today: an error accepting a connection is retried after a pause, and an error on a
/// connection ends that connection only; the `io::Result` leaves room for listener errors.
/// Both are counted in `sse_server_connection_errors_total` (feature `metrics`) and logged
/// (feature `tracing`) once per incident: from the first failure to the next success.
pub async fn serve<F, R>(
    filter: F,
    layer: SseLayer,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()>
where
    F: Filter<Extract = (R,), Error = Rejection> + Clone + Send + Sync + 'static,
    R: Reply,
{
    let service = layer.layer(EventStreamService::new(warp::service(filter)));
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    incident::ACCEPT.record(&Ok::<(), io::Error>(()));
                    stream
                }
                Err(e) => {
                    incident::ACCEPT.record(&Err::<(), _>(&e));
                    // Out of file descriptors and the like: pause rather than spin.
                    if !is_connection_error(&e) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(service.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A connection error ends that connection only; it is counted and logged once
            // per incident (`sse_server_connection_errors_total{kind="connection"}`).
            incident::CONNECTION.record(&connection.await);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
