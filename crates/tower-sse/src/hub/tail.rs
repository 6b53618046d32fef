//! The live tail: with a [`LiveLog`], one task per topic with local subscribers follows the log
//! and feeds the topic's ring, so events appended by any process reach them.

use std::{
    cmp::Ordering,
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
    time::Duration,
};

use tokio::{sync::broadcast, task::AbortHandle};
use tower_sse_core::{EventLog, LiveLog, LogTail};

use super::{Inner, Topic};

/// Spawns a topic's tail task: the hub, the topic's name and entry, the start position.
type SpawnTail<L> = fn(Arc<Inner<L>>, Box<str>, Weak<Topic>, Option<Arc<str>>) -> AbortHandle;

type LastIdFuture<'a, E> = Pin<Box<dyn Future<Output = Result<Option<Arc<str>>, E>> + Send + 'a>>;

/// What the hub needs of a [`LiveLog`], kept as functions so that the rest of the hub only
/// requires an [`EventLog`].
pub(crate) struct TailMode<L: EventLog> {
    last_id: for<'a> fn(&'a L, &'a str) -> LastIdFuture<'a, L::Error>,
    spawn: SpawnTail<L>,
    compare: fn(&L, &str, &str) -> Option<Ordering>,
}

impl<L: LiveLog> TailMode<L> {
    pub(crate) fn new() -> Self {
        Self {
            last_id: last_id::<L>,
            spawn: |inner, name, topic, position| {
                tokio::spawn(run(inner, name, topic, position)).abort_handle()
            },
            compare: L::compare_ids,
        }
    }
}

fn last_id<'a, L: LiveLog>(log: &'a L, topic: &'a str) -> LastIdFuture<'a, L::Error> {
    Box::pin(log.last_id(topic))
}

impl<L: EventLog> TailMode<L> {
    /// Starts `topic`'s tail after the log's last id, unless it runs. Caller holds the topic
    /// lock, whose `tail` is `live_tail`.
    pub(crate) async fn ensure_started(
        &self,
        inner: &Arc<Inner<L>>,
        name: &str,
        topic: &Arc<Topic>,
        live_tail: &mut Option<TailState>,
    ) -> Result<(), L::Error> {
        if live_tail.is_none() {
            let position = (self.last_id)(&inner.log, name).await?;
            let task = (self.spawn)(
                Arc::clone(inner),
                name.into(),
                Arc::downgrade(topic),
                position.clone(),
            );
            *live_tail = Some(TailState { position, task });
        }
        Ok(())
    }

    /// Whether the event `id` is at or before `position`, so that it reaches subscribers by
    /// replay, not by the tail. `None` is before every event.
    pub(crate) fn replayed(&self, log: &L, id: &str, position: Option<&str>) -> bool {
        position.is_some_and(|position| {
            matches!(
                (self.compare)(log, id, position),
                Some(Ordering::Less | Ordering::Equal)
            )
        })
    }
}

/// A running tail and where it is.
#[derive(Debug)]
pub(crate) struct TailState {
    /// The id of the last event the tail delivered (or where it started): events up to here
    /// reach a new subscriber from the log, later ones from the tail. `None`: all from the tail.
    pub(crate) position: Option<Arc<str>>,
    task: AbortHandle,
}

impl TailState {
    pub(crate) fn stop(self) {
        self.task.abort();
    }
}

/// The tail task: wait for events after `position`, read them, and send them to the ring
/// under the topic lock (where the position moves too), until nobody subscribes.
async fn run<L: LiveLog>(
    inner: Arc<Inner<L>>,
    name: Box<str>,
    topic: Weak<Topic>,
    mut position: Option<Arc<str>>,
) {
    let mut tail = inner.log.tail(&name);
    let batch = inner.capacity.clamp(1, 1024);
    let mut backoff = Backoff::default();
    loop {
        if topic.strong_count() == 0 {
            return;
        }
        // A store error (the server is away) is retried: the store reconnects, and the
        // position has not moved, so nothing it retained is lost.
        if tail.wait_after(position.as_deref()).await.is_err() {
            backoff.wait().await;
            continue;
        }
        let page = match inner
            .log
            .read_after(&name, position.as_deref(), batch)
            .await
        {
            Ok(page) => page,
            Err(_) => {
                backoff.wait().await;
                continue;
            }
        };
        let Some(topic) = topic.upgrade() else {
            return;
        };
        let mut live = topic.live.lock().await;
        // The map's reference and this one: no subscription holds the topic any more.
        if Arc::strong_count(&topic) <= 2 {
            live.tail = None;
            drop(live);
            inner.release(&name, &topic);
            return;
        }
        if page.outcome.is_discontinuous() {
            // Retention dropped events after the position, or the log lost the topic (a
            // restart without persistence). Start again from the log's last id, and close
            // the ring: every subscriber catches up from the log after its own last event,
            // where it meets the gap and gets the gap signal.
            match inner.log.last_id(&name).await {
                Ok(last) => position = last,
                Err(_) => {
                    drop(live);
                    backoff.wait().await;
                    continue;
                }
            }
            live.sender = Some(broadcast::channel(inner.capacity).0);
        } else {
            if let Some(sender) = &live.sender {
                for event in &page.events {
                    // An error only means no receiver is left right now.
                    let _ = sender.send(event.clone());
                }
            }
            if let Some(last) = page.events.last() {
                position = Some(Arc::clone(last.shared_id()));
            }
        }
        if let Some(state) = live.tail.as_mut() {
            state.position = position.clone();
        }
        backoff = Backoff::default();
    }
}

/// Waits between retries while the store is away: 50 ms, doubling up to 2 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(50))
    }
}

impl Backoff {
    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
    }
}
