//! One log read in flight per distinct cursor: concurrent reconnecting clients that resume
//! from the same position of the same topic share one read (a singleflight).
//!
//! After a deploy or a network blip, thousands of clients reconnect with the same
//! `Last-Event-ID`; without this each one issues the same `XRANGE` (or takes the same
//! `MemoryLog` topic lock) at once. Here the first reader of a key (log instance, topic, cursor,
//! limit) starts the read and every reader of that key that arrives while it is in flight waits
//! for the same result, shared behind an `Arc` (the frames are `Bytes`, never copied).
//!
//! - **No lock across I/O**: the map's mutex is held only to look up or insert an entry.
//! - **Cancellation-safe**: the read is a [`Shared`] future that any waiter drives; if the
//!   reader that started it is dropped (the client went away), the others still get the result.
//!   When the last waiter is dropped the entry goes with it, so an abandoned read leaks nothing.
//! - **Bounded**: at most [`MAX_FLIGHTS`] keys in flight per layer; past that a read is simply
//!   not shared. Entries are removed as soon as their read completes: a reader arriving later
//!   starts a fresh read and so sees the log as it is then.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use futures_util::future::{FutureExt, Shared};
use tower_sse_core::Replay;

use crate::replay::{BoxError, DynLog};

/// The most reads in flight that can be shared at once, per layer.
pub(crate) const MAX_FLIGHTS: usize = 4096;

/// Log reads the layer has issued (shared reads count once), process-wide.
static LOG_READS: AtomicU64 = AtomicU64::new(0);

/// How many log reads every [`SseLayer`](crate::SseLayer) replay has issued in this process;
/// concurrent readers of one cursor that shared a read count once. For benchmarks and tests,
/// not a stable API.
#[doc(hidden)]
pub fn layer_log_reads() -> u64 {
    LOG_READS.load(Ordering::Relaxed)
}

/// One page read, shared by everyone waiting for it.
pub(crate) type Page = Result<Arc<Replay>, Arc<BoxError>>;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    /// The log's address: one layer may in principle be cloned around one log, and two logs
    /// must never share reads.
    log: usize,
    topic: Arc<str>,
    cursor: Option<Arc<str>>,
    limit: usize,
}

/// The reads in flight of one layer.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<Key, (u64, Weak<Flight>)>>,
    next_id: AtomicU64,
}

/// A read in flight; dropped with its last waiter, which removes its entry.
struct Flight {
    flights: Arc<Flights>,
    key: Key,
    id: u64,
    read: Shared<BoxFuture<Page>>,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.flights.remove(&self.key, self.id);
    }
}

impl Flights {
    fn remove(&self, key: &Key, id: u64) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(key).is_some_and(|(entry, _)| *entry == id) {
            map.remove(key);
        }
    }

    /// The number of reads in flight (for tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Reads `limit` events of `topic` after `cursor` from `log`, sharing the read with every
    /// concurrent reader of the same key.
    pub(crate) fn read(
        self: &Arc<Self>,
        log: &Arc<dyn DynLog>,
        topic: &Arc<str>,
        cursor: Option<&Arc<str>>,
        limit: usize,
    ) -> PageRead {
        let key = Key {
            log: Arc::as_ptr(log).cast::<()>() as usize,
            topic: Arc::clone(topic),
            cursor: cursor.cloned(),
            limit,
        };
        let start = || {
            LOG_READS.fetch_add(1, Ordering::Relaxed);
            log.read_page(Arc::clone(topic), cursor.cloned(), limit)
                .map(|result| result.map(Arc::new).map_err(Arc::new))
                .boxed()
                .shared()
        };
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = map.get(&key).and_then(|(_, flight)| flight.upgrade()) {
            drop(map);
            let read = flight.read.clone();
            return PageRead {
                read,
                flight: Some(flight),
            };
        }
        if map.len() >= MAX_FLIGHTS {
            drop(map);
            return PageRead {
                read: start(),
                flight: None,
            };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Creating the read future does no I/O: it only starts when first polled, after the
        // lock is released.
        let read = start();
        let flight = Arc::new(Flight {
            flights: Arc::clone(self),
            key: key.clone(),
            id,
            read: read.clone(),
        });
        map.insert(key, (id, Arc::downgrade(&flight)));
        drop(map);
        PageRead {
            read,
            flight: Some(flight),
        }
    }
}

/// A waiter on a (possibly shared) page read.
pub(crate) struct PageRead {
    read: Shared<BoxFuture<Page>>,
    flight: Option<Arc<Flight>>,
}

impl Future for PageRead {
    type Output = Page;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Page> {
        let page = std::task::ready!(Pin::new(&mut self.read).poll(cx));
        // Done: later readers start afresh.
        if let Some(flight) = self.flight.take() {
            flight.flights.remove(&flight.key, flight.id);
        }
        Poll::Ready(page)
    }
}

impl std::fmt::Debug for PageRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageRead").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use tower_sse_core::{Event, MemoryLog};

    use super::*;

    #[tokio::test]
    async fn entries_go_when_done_or_abandoned() {
        let memory = Arc::new(MemoryLog::new());
        let first = memory.append_sync("t", &Event::new().data("1")).unwrap();
        memory.append_sync("t", &Event::new().data("2")).unwrap();
        let log: Arc<dyn DynLog> = Arc::new(memory);
        let flights = Arc::new(Flights::default());
        let topic: Arc<str> = Arc::from("t");
        let cursor: Arc<str> = Arc::from(first.id());

        // Two readers of one key share one entry; both get the page.
        let a = flights.read(&log, &topic, Some(&cursor), 10);
        let b = flights.read(&log, &topic, Some(&cursor), 10);
        assert_eq!(flights.len(), 1);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(Arc::ptr_eq(&a, &b), "one read, shared");
        assert_eq!(a.events.len(), 1);
        assert_eq!(flights.len(), 0, "removed when done");

        // Every waiter dropped before the read ran: the entry goes too.
        let c = flights.read(&log, &topic, Some(&cursor), 10);
        let d = flights.read(&log, &topic, None, 10);
        assert_eq!(flights.len(), 2);
        drop(c);
        drop(d);
        assert_eq!(flights.len(), 0);
    }
}
