//! The live tail: with a [`LiveLog`], one task per hub follows every topic with local
//! subscribers and feeds their rings, so events appended by any process reach them.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::sync::Notify;
use tower_sse_core::{EventLog, LiveLog, LogTail, TailPosition};

use super::{Inner, Topic, TopicRef, lock};

type LastIdFuture<'a, E> = Pin<Box<dyn Future<Output = Result<Option<Arc<str>>, E>> + Send + 'a>>;

/// A topic handed to the tail: its name, its entry, and the position to start after.
type Followed = (Arc<str>, Weak<Topic>, Option<Arc<str>>);

/// The topics the tail task follows: entry and position by name.
type Following = HashMap<Arc<str>, (Weak<Topic>, Option<Arc<str>>)>;

/// What the hub needs of a [`LiveLog`], kept as functions so that the rest of the hub only
/// requires an [`EventLog`].
pub(crate) struct TailMode<L: EventLog> {
    last_id: for<'a> fn(&'a L, &'a str) -> LastIdFuture<'a, L::Error>,
    spawn: fn(Weak<Inner<L>>),
    shared: Mutex<Shared>,
    rearm: Notify,
}

/// Topics waiting to be picked up by the tail task, and whether it runs.
#[derive(Default)]
struct Shared {
    added: Vec<Followed>,
    running: bool,
}

impl<L: LiveLog> TailMode<L> {
    pub(crate) fn new() -> Self {
        Self {
            last_id: last_id::<L>,
            spawn: |inner| {
                tokio::spawn(run::<L>(inner));
            },
            shared: Mutex::default(),
            rearm: Notify::new(),
        }
    }
}

fn last_id<'a, L: LiveLog>(log: &'a L, topic: &'a str) -> LastIdFuture<'a, L::Error> {
    Box::pin(log.last_id(topic))
}

impl<L: EventLog> TailMode<L> {
    /// Makes sure the tail follows the topic. The first subscribers of a topic wait together
    /// for its start position (one `last_id` read); if that future is dropped, the next waiter
    /// reads it, and an error leaves the topic unfollowed for the next subscriber to retry.
    pub(crate) async fn follow(
        &self,
        inner: &Arc<Inner<L>>,
        topic: &TopicRef<L>,
    ) -> Result<(), L::Error> {
        topic
            .topic
            .followed
            .get_or_try_init(|| async {
                let position = (self.last_id)(&inner.log, topic.name()).await?;
                topic.topic.state().restart_at(position.clone());
                let start = {
                    let mut shared = lock(&self.shared);
                    shared.added.push((
                        topic.name().into(),
                        Arc::downgrade(&topic.topic),
                        position,
                    ));
                    !std::mem::replace(&mut shared.running, true)
                };
                if start {
                    (self.spawn)(Arc::downgrade(inner));
                } else {
                    self.rearm();
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Cuts the tail's wait short, so that it follows the current set of topics.
    pub(crate) fn rearm(&self) {
        self.rearm.notify_one();
    }
}

/// The tail task: wait until some followed topic has events after its position, read them,
/// and send them to the topic's ring, until no topic is followed.
///
/// The task holds the hub only weakly between rounds; it stops when the hub is gone or no
/// topic is left (the last subscriber's release re-arms it, so it notices at once).
async fn run<L: LiveLog>(hub: Weak<Inner<L>>) {
    let Some(inner) = hub.upgrade() else {
        return;
    };
    let mut tail = inner.log.tail();
    drop(inner);
    let mut followed = Following::new();
    let mut backoff = Backoff::default();
    loop {
        let Some(inner) = hub.upgrade() else {
            return;
        };
        let mode = inner.tail.as_ref().expect("the tail runs in live-log mode");
        let positions: Vec<TailPosition> = {
            let mut shared = lock(&mode.shared);
            for (name, topic, position) in shared.added.drain(..) {
                followed.insert(name, (topic, position));
            }
            followed.retain(|_, (topic, _)| topic.strong_count() > 0);
            if followed.is_empty() {
                shared.running = false;
                return;
            }
            followed
                .iter()
                .map(|(name, (_, position))| (Arc::clone(name), position.clone()))
                .collect()
        };
        // A store error (the server is away) is retried: the store reconnects, and the
        // positions have not moved, so nothing it retained is lost.
        let ready = match tail.wait_any(&positions, mode.rearm.notified()).await {
            Ok(ready) => ready,
            Err(_) => {
                drop(inner);
                backoff.wait().await;
                continue;
            }
        };
        let mut failed = false;
        for index in ready {
            let Some((name, _)) = positions.get(index) else {
                continue;
            };
            if deliver(&inner, name, &mut followed).await.is_err() {
                failed = true;
            }
        }
        drop(inner);
        if failed {
            backoff.wait().await;
        } else {
            backoff = Backoff::default();
        }
    }
}

/// Reads a topic's events after the tail's position and sends them to its ring. The log is
/// read with no lock held; the topic's lock is taken only to send.
async fn deliver<L: LiveLog>(
    inner: &Inner<L>,
    name: &Arc<str>,
    followed: &mut Following,
) -> Result<(), L::Error> {
    let Some((topic, position)) = followed.get(name) else {
        return Ok(());
    };
    let batch = inner.capacity.clamp(1, 1024);
    let page = inner
        .log
        .read_after(name, position.as_deref(), batch)
        .await?;
    let new_position = if page.outcome.is_discontinuous() {
        // Retention dropped events after the position, or the log lost the topic (a restart
        // without persistence). Start again from the log's last id, and close the ring: every
        // subscriber catches up from the log after its own last event, where it meets the gap
        // and gets the gap signal.
        let last = inner.log.last_id(name).await?;
        let Some(topic) = topic.upgrade() else {
            return Ok(());
        };
        let mut state = topic.state();
        state.restart_at(last.clone());
        state.replace_ring(inner.capacity);
        last
    } else {
        let Some(last) = page.events.last().map(|e| Arc::clone(e.shared_id())) else {
            return Ok(());
        };
        let Some(topic) = topic.upgrade() else {
            return Ok(());
        };
        let mut state = topic.state();
        for event in page.events {
            state.send(event);
        }
        Some(last)
    };
    if let Some((_, position)) = followed.get_mut(name) {
        *position = new_position;
    }
    Ok(())
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
