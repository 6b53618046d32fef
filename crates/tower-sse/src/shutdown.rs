//! [`ShutdownSignal`]: tells every open event stream to end at its next event boundary.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::sync::{Notify, futures::OwnedNotified};

/// A cheap, cloneable signal that ends every event stream served by the layers holding it.
///
/// Give a clone to [`SseLayer::shutdown`](crate::SseLayer::shutdown) and call
/// [`trigger`](Self::trigger) when the server begins its graceful shutdown. Each open event
/// stream then ends at its next event boundary (at once if it is between events), after the
/// [`final_event`](crate::SseLayer::final_event) if one is configured, so the server's
/// graceful shutdown completes instead of waiting forever on endless responses. Streams that
/// start after the trigger end right after their priming frame.
///
/// A stream whose handler has stopped inside an event does not wait for it forever: once the
/// handler has been silent for a heartbeat interval, the stream ends there, without the final
/// event (clients discard an unterminated event, so nothing half-built is dispatched). With
/// heartbeats off there is no such bound.
///
/// Triggering is permanent. The signal costs one shared allocation; each open stream holds one
/// registration in it, and no task is spawned.
///
/// # Example
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use tower_sse::{ShutdownSignal, SseLayer};
///
/// # async fn handler() -> &'static str { "" }
/// # async fn run() -> std::io::Result<()> {
/// let shutdown = ShutdownSignal::new();
/// let app = Router::new()
///     .route("/events", get(handler))
///     .layer(SseLayer::new().shutdown(shutdown.clone()));
///
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// let server_stops = shutdown.triggered();
/// tokio::spawn(async move {
///     // Your own trigger: ctrl-c, SIGTERM, an admin endpoint ...
///     # std::future::pending::<()>().await;
///     shutdown.trigger();
/// });
/// axum::serve(listener, app).with_graceful_shutdown(server_stops).await
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ShutdownSignal {
    triggered: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl ShutdownSignal {
    /// A signal that has not been triggered.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every stream holding this signal to end at its next event boundary.
    ///
    /// Calling it again does nothing.
    pub fn trigger(&self) {
        // The flag is set before waking, so a stream that registers after the wake-up still
        // sees it (see `register`).
        if !self.triggered.swap(true, Ordering::SeqCst) {
            self.notify.notify_waiters();
        }
    }

    /// Whether [`trigger`](Self::trigger) has been called.
    pub fn is_triggered(&self) -> bool {
        self.triggered.load(Ordering::SeqCst)
    }

    /// A future that completes once the signal is triggered; pass it to
    /// `axum::serve(..).with_graceful_shutdown(..)` so the server and its streams stop together.
    pub fn triggered(&self) -> impl Future<Output = ()> + Send + use<> {
        let this = self.clone();
        async move {
            loop {
                let notified = Arc::clone(&this.notify).notified_owned();
                if this.is_triggered() {
                    return;
                }
                notified.await;
            }
        }
    }

    /// Registers a stream: `None` when the signal was already triggered, otherwise a future
    /// that completes when it is.
    pub(crate) fn register(&self) -> Option<OwnedNotified> {
        // A `Notified` receives `notify_waiters` from its creation on, so creating it first
        // and then reading the flag leaves no window in which the trigger could be missed.
        let notified = Arc::clone(&self.notify).notified_owned();
        (!self.is_triggered()).then_some(notified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn triggered_completes_after_trigger_and_when_already_triggered() {
        let signal = ShutdownSignal::new();
        let waiting = tokio::spawn(signal.triggered());
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        assert!(!signal.is_triggered());
        signal.trigger();
        waiting.await.unwrap();
        assert!(signal.is_triggered());
        // Late waiters and registrations see the trigger too.
        signal.triggered().await;
        assert!(signal.register().is_none());
    }

    #[tokio::test]
    async fn registration_is_woken() {
        let signal = ShutdownSignal::new();
        let notified = signal.register().expect("not triggered yet");
        signal.clone().trigger();
        notified.await;
    }
}
