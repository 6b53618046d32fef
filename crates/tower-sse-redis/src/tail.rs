//! [`RedisTail`]: waits for a topic's new entries with `XREAD BLOCK` on a connection of its own.

use std::{fmt, time::Duration};

use redis::{AsyncConnectionConfig, Value, aio::MultiplexedConnection};
use tower_sse_core::LogTail;

use crate::{RedisLog, RedisLogError, stream_id::StreamId};

/// Waits for new entries of one topic's stream; made by
/// [`LiveLog::tail`](tower_sse_core::LiveLog::tail).
///
/// `XREAD BLOCK` holds its connection until it returns, so each tail has a connection of its
/// own, opened on the first wait and opened again after an error: a tail reconnects on its own
/// when the server comes back.
pub struct RedisTail {
    log: RedisLog,
    topic: Box<str>,
    key: String,
    connection: Option<MultiplexedConnection>,
}

impl fmt::Debug for RedisTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTail")
            .field("key", &self.key)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisTail {
    pub(crate) fn new(log: RedisLog, topic: &str) -> Self {
        Self {
            key: log.key(topic),
            topic: topic.into(),
            log,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, RedisLogError> {
        if self.connection.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                // Longer than the block, so that a quiet stream is not a timeout.
                .set_response_timeout(Some(self.log.block() + Duration::from_secs(5)));
            let connection = self
                .log
                .client()
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map_err(|source| self.error(source))?;
            self.connection = Some(connection);
        }
        Ok(self.connection.as_mut().expect("connected above"))
    }

    fn error(&self, source: redis::RedisError) -> RedisLogError {
        RedisLogError::Command {
            url: self.log.url().to_owned(),
            operation: format!("tail of {:?}", self.key),
            source,
        }
    }
}

impl LogTail for RedisTail {
    type Error = RedisLogError;

    async fn wait_after(&mut self, after: Option<&str>) -> Result<bool, RedisLogError> {
        // Only canonical ids reach XREAD (`$` or `+` would mean something else there).
        let after = after
            .and_then(StreamId::parse)
            .unwrap_or(StreamId::ZERO)
            .to_string();
        let block_ms = u64::try_from(self.log.block().as_millis()).unwrap_or(u64::MAX);
        let key = self.key.clone();
        let connection = self.connection().await?;
        let reply: Result<Value, _> = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&key)
            .arg(&after)
            .query_async(connection)
            .await;
        match reply {
            Ok(Value::Nil) => Ok(false),
            Ok(_) => Ok(true),
            Err(source) => {
                // Start from a new connection next time.
                self.connection = None;
                Err(self.error(source))
            }
        }
    }
}

impl RedisTail {
    /// The topic this tail follows.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}
