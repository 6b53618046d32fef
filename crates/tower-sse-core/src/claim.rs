//! [`ClaimStore`]: the small key-value contract behind resumable generations.
//!
//! A generation (an LLM answer streamed token by token) is started once per idempotency key,
//! whichever server the request lands on, and its state (running, finished, cancelled) must be
//! readable by every server that shares the log. That needs four operations on expiring
//! string keys, one of them atomic:
//!
//! - [`ClaimStore::claim`]: set a key only if it is absent, and otherwise return what it holds
//!   (Redis: `SET key value NX GET PX ttl`, one atomic command). Two servers that claim the
//!   same idempotency key at once see one winner; the loser gets the winner's value.
//! - [`ClaimStore::get`], [`ClaimStore::put`] and [`ClaimStore::remove`].
//!
//! [`MemoryClaimStore`] is the in-process implementation, bounded by a number of keys;
//! `tower-sse-redis` has `RedisClaimStore`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use tower_sse_core::{ClaimStore, MemoryClaimStore};
//!
//! async fn start_once<S: ClaimStore>(store: &S) -> Result<String, S::Error> {
//!     let ttl = Duration::from_secs(60);
//!     // The first claim wins; a repeated one gets the first value back.
//!     assert_eq!(store.claim("idem/abc", "gen-1", ttl).await?, None);
//!     Ok(store.claim("idem/abc", "gen-2", ttl).await?.expect("already claimed"))
//! }
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     let mut f = std::pin::pin!(f);
//! #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! #     match f.as_mut().poll(&mut cx) { std::task::Poll::Ready(out) => out, _ => unreachable!() }
//! # }
//! assert_eq!(block_on(start_once(&MemoryClaimStore::new()))?, "gen-1");
//! # Ok::<(), tower_sse_core::ClaimStoreFull>(())
//! ```

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::{Clock, StdClock};

/// Expiring string keys with an atomic "set if absent": what generations need of a store.
///
/// # Contract
///
/// - A key set with a `ttl` reads as absent once `ttl` has passed.
/// - [`claim`](Self::claim) is atomic: of any number of concurrent claims of an absent key,
///   across every process sharing the store, exactly one returns `None`, and the others return
///   its value.
/// - Keys and values are any UTF-8 strings; the store may bound their number and size and
///   return its error past them.
pub trait ClaimStore: Send + Sync + 'static {
    /// The store's error: I/O, a full store.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sets `key` to `value` for `ttl` if it is absent and returns `None`; otherwise leaves it
    /// and returns the value it holds.
    ///
    /// # Errors
    ///
    /// The store's error; nothing was set then.
    fn claim(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// The value of `key`, `None` when absent or expired.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send;

    /// Sets `key` to `value` for `ttl`, replacing any value.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Removes `key`; removing an absent key is not an error.
    ///
    /// # Errors
    ///
    /// The store's error.
    fn remove(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send;
}

/// A shared store is a store.
impl<S: ClaimStore> ClaimStore for Arc<S> {
    type Error = S::Error;

    fn claim(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        (**self).claim(key, value, ttl)
    }

    fn get(&self, key: &str) -> impl Future<Output = Result<Option<String>, Self::Error>> + Send {
        (**self).get(key)
    }

    fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).put(key, value, ttl)
    }

    fn remove(&self, key: &str) -> impl Future<Output = Result<(), Self::Error>> + Send {
        (**self).remove(key)
    }
}

/// Keys, with their value and expiry.
type Entries = HashMap<Box<str>, (Box<str>, Instant)>;

/// The default [`MemoryClaimStore::with_max_keys`]: 100,000 keys.
pub const DEFAULT_MAX_CLAIM_KEYS: usize = 100_000;

/// The error of a full [`MemoryClaimStore`]: every key is live and a new one was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimStoreFull {
    /// The configured limit.
    pub limit: usize,
}

impl fmt::Display for ClaimStoreFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "claim store full: all {} keys are live", self.limit)
    }
}

impl std::error::Error for ClaimStoreFull {}

/// An in-process [`ClaimStore`], bounded by a number of keys; cheap to clone (shared).
///
/// Expired keys are dropped when the store is full and a key is added, so a full store is
/// only reported when every key is still live. Time is read through its [`Clock`].
pub struct MemoryClaimStore<C = StdClock> {
    inner: Arc<Mutex<Entries>>,
    max_keys: usize,
    clock: C,
}

impl MemoryClaimStore {
    /// A store of at most [`DEFAULT_MAX_CLAIM_KEYS`] keys, on the standard clock.
    #[must_use]
    pub fn new() -> Self {
        Self::with_clock(StdClock, DEFAULT_MAX_CLAIM_KEYS)
    }

    /// A store of at most `max_keys` keys, on the standard clock.
    #[must_use]
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self::with_clock(StdClock, max_keys)
    }
}

impl Default for MemoryClaimStore {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> MemoryClaimStore<C> {
    /// A store of at most `max_keys` keys reading time from `clock`.
    #[must_use]
    pub fn with_clock(clock: C, max_keys: usize) -> Self {
        Self {
            inner: Arc::default(),
            max_keys,
            clock,
        }
    }

    /// The number of keys held, expired ones included until they are dropped.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Every update leaves the map consistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims synchronously; see [`ClaimStore::claim`].
    ///
    /// # Errors
    ///
    /// [`ClaimStoreFull`] when the key is new and every one of `max_keys` keys is live.
    pub fn claim_sync(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<String>, ClaimStoreFull> {
        let now = self.clock.now();
        let mut map = self.lock();
        if let Some((held, expires)) = map.get(key) {
            if *expires > now {
                return Ok(Some(held.to_string()));
            }
        }
        self.insert(&mut map, now, key, value, ttl)?;
        Ok(None)
    }

    /// Reads synchronously; see [`ClaimStore::get`].
    pub fn get_sync(&self, key: &str) -> Option<String> {
        let now = self.clock.now();
        self.lock()
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.to_string())
    }

    /// Sets synchronously; see [`ClaimStore::put`].
    ///
    /// # Errors
    ///
    /// [`ClaimStoreFull`] when the key is new and every one of `max_keys` keys is live.
    pub fn put_sync(&self, key: &str, value: &str, ttl: Duration) -> Result<(), ClaimStoreFull> {
        let now = self.clock.now();
        let mut map = self.lock();
        self.insert(&mut map, now, key, value, ttl)
    }

    /// Removes synchronously; see [`ClaimStore::remove`].
    pub fn remove_sync(&self, key: &str) {
        self.lock().remove(key);
    }

    fn insert(
        &self,
        map: &mut Entries,
        now: Instant,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<(), ClaimStoreFull> {
        if !map.contains_key(key) && map.len() >= self.max_keys {
            map.retain(|_, (_, expires)| *expires > now);
            if map.len() >= self.max_keys {
                return Err(ClaimStoreFull {
                    limit: self.max_keys,
                });
            }
        }
        // A TTL too large for `Instant` means "for as long as the process lives".
        let expires = now
            .checked_add(ttl)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600));
        map.insert(key.into(), (value.into(), expires));
        Ok(())
    }
}

impl<C: Clock + Clone> Clone for MemoryClaimStore<C> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            max_keys: self.max_keys,
            clock: self.clock.clone(),
        }
    }
}

impl<C> fmt::Debug for MemoryClaimStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryClaimStore")
            .field("max_keys", &self.max_keys)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> ClaimStore for MemoryClaimStore<C> {
    type Error = ClaimStoreFull;

    fn claim(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<Option<String>, ClaimStoreFull>> + Send {
        std::future::ready(self.claim_sync(key, value, ttl))
    }

    fn get(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, ClaimStoreFull>> + Send {
        std::future::ready(Ok(self.get_sync(key)))
    }

    fn put(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), ClaimStoreFull>> + Send {
        std::future::ready(self.put_sync(key, value, ttl))
    }

    fn remove(&self, key: &str) -> impl Future<Output = Result<(), ClaimStoreFull>> + Send {
        self.remove_sync(key);
        std::future::ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ManualClock;

    const TTL: Duration = Duration::from_secs(10);

    #[test]
    fn the_first_claim_wins_until_it_expires() {
        let clock = ManualClock::new();
        let store = MemoryClaimStore::with_clock(clock.clone(), 10);
        assert_eq!(store.claim_sync("k", "a", TTL), Ok(None));
        assert_eq!(store.claim_sync("k", "b", TTL), Ok(Some("a".into())));
        assert_eq!(store.get_sync("k").as_deref(), Some("a"));
        clock.advance(TTL);
        assert_eq!(store.get_sync("k"), None);
        assert_eq!(store.claim_sync("k", "b", TTL), Ok(None));
        assert_eq!(store.get_sync("k").as_deref(), Some("b"));
    }

    #[test]
    fn put_replaces_and_remove_forgets() {
        let store = MemoryClaimStore::with_max_keys(10);
        store.put_sync("k", "a", TTL).unwrap();
        store.put_sync("k", "b", TTL).unwrap();
        assert_eq!(store.get_sync("k").as_deref(), Some("b"));
        store.remove_sync("k");
        assert_eq!(store.get_sync("k"), None);
        assert!(store.is_empty());
    }

    #[test]
    fn a_full_store_refuses_new_keys_until_some_expire() {
        let clock = ManualClock::new();
        let store = MemoryClaimStore::with_clock(clock.clone(), 2);
        store.put_sync("a", "1", TTL).unwrap();
        store
            .put_sync("b", "1", TTL + Duration::from_secs(1))
            .unwrap();
        assert_eq!(
            store.claim_sync("c", "1", TTL),
            Err(ClaimStoreFull { limit: 2 })
        );
        // An existing key can still be updated.
        store.put_sync("a", "2", TTL).unwrap();
        clock.advance(TTL + Duration::from_millis(500));
        // "a" expired: room for one.
        assert_eq!(store.claim_sync("c", "1", TTL), Ok(None));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn a_huge_ttl_does_not_panic() {
        let store = MemoryClaimStore::new();
        store.put_sync("k", "v", Duration::MAX).unwrap();
        assert_eq!(store.get_sync("k").as_deref(), Some("v"));
    }
}
