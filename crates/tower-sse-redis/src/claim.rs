//! [`RedisClaimStore`]: the [`ClaimStore`] of generations on plain Redis strings.
//!
//! `claim` is one `SET key value NX GET PX ttl` (Redis 7.0 or later, as the log needs): the
//! server sets the key only if it is absent and answers the value it held otherwise, in one
//! atomic step, so two servers claiming one idempotency key at once see one winner.

use std::{fmt, time::Duration};

use redis::{AsyncCommands, aio::ConnectionManager};
use tower_sse_core::ClaimStore;

use crate::{RedisLog, RedisLogError};

/// A [`ClaimStore`] on Redis strings, sharing a [`RedisLog`]'s connection and key prefix.
/// Cheap to clone.
#[derive(Clone)]
pub struct RedisClaimStore {
    log: RedisLog,
    prefix: String,
}

impl fmt::Debug for RedisClaimStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClaimStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisClaimStore {
    /// A store on `log`'s server and connection; its keys are the log's key prefix, then
    /// `claim:`, then the key.
    #[must_use]
    pub fn new(log: &RedisLog) -> Self {
        Self {
            prefix: format!("{}claim:", log.key_prefix()),
            log: log.clone(),
        }
    }

    /// The Redis key of `key`.
    pub fn redis_key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn connection(&self) -> ConnectionManager {
        self.log.connection()
    }

    fn error(&self, operation: &str, key: &str, source: redis::RedisError) -> RedisLogError {
        RedisLogError::Command {
            url: self.log.url().to_owned(),
            operation: format!("{operation} {:?}", self.redis_key(key)),
            source,
        }
    }
}

/// Milliseconds for `PX`: at least 1 (0 is refused by Redis).
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl ClaimStore for RedisClaimStore {
    type Error = RedisLogError;

    async fn claim(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
    ) -> Result<Option<String>, RedisLogError> {
        let mut connection = self.connection();
        redis::cmd("SET")
            .arg(self.redis_key(key))
            .arg(value)
            .arg("NX")
            .arg("GET")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut connection)
            .await
            .map_err(|e| self.error("claim", key, e))
    }

    async fn get(&self, key: &str) -> Result<Option<String>, RedisLogError> {
        let mut connection = self.connection();
        connection
            .get(self.redis_key(key))
            .await
            .map_err(|e| self.error("get", key, e))
    }

    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), RedisLogError> {
        let mut connection = self.connection();
        connection
            .pset_ex(self.redis_key(key), value, millis(ttl))
            .await
            .map_err(|e| self.error("put", key, e))
    }

    async fn remove(&self, key: &str) -> Result<(), RedisLogError> {
        let mut connection = self.connection();
        connection
            .del(self.redis_key(key))
            .await
            .map_err(|e| self.error("remove", key, e))
    }
}
