//! [`RedisTail`]: waits for new entries of many topics' streams with one `XREAD BLOCK`, on one
//! connection of its own.

use std::{collections::HashMap, fmt, future::Future, pin::pin, time::Duration};

use futures_util::future::{Either, select};
use redis::{AsyncConnectionConfig, Value, aio::MultiplexedConnection};
use tower_sse_core::{LogTail, TailPosition};

use crate::{RedisLog, RedisLogError, stream_id::StreamId};

/// How many times a re-arm asks Redis to unblock the tail's `XREAD` before it lets the read
/// run to its timeout (the read may not have reached the server yet when the first request
/// does; each attempt is one round trip).
const UNBLOCK_ATTEMPTS: usize = 64;

/// Waits for new entries of a set of topics' streams; made by
/// [`LiveLog::tail`](tower_sse_core::LiveLog::tail).
///
/// One `XREAD COUNT 1 BLOCK <ms> STREAMS <key>... <id>...` covers every topic, so a server
/// holds one tail connection whatever its number of topics (a blocked `XREAD` holds its
/// connection, hence one of its own). The connection is opened on the first wait, and again
/// after an error: a tail reconnects on its own when the server comes back. When the set of
/// topics changes, the caller's re-arm cuts the blocked read short with `CLIENT UNBLOCK
/// <id>`, sent on the log's shared connection, so a new topic is followed at once rather than
/// after the block timeout.
pub struct RedisTail {
    log: RedisLog,
    /// The connection and its `CLIENT ID`, for `CLIENT UNBLOCK`.
    connection: Option<(MultiplexedConnection, i64)>,
}

impl fmt::Debug for RedisTail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTail")
            .field("key_prefix", &self.log.key_prefix())
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl RedisTail {
    pub(crate) fn new(log: RedisLog) -> Self {
        Self {
            log,
            connection: None,
        }
    }

    async fn connection(&mut self) -> Result<(MultiplexedConnection, i64), RedisLogError> {
        if let Some(connection) = &self.connection {
            return Ok(connection.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            // Longer than the block, so that a quiet stream is not a timeout.
            .set_response_timeout(Some(self.log.block() + Duration::from_secs(5)));
        let mut connection = self
            .log
            .client()
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| self.error(source))?;
        let id: i64 = redis::cmd("CLIENT")
            .arg("ID")
            .query_async(&mut connection)
            .await
            .map_err(|source| self.error(source))?;
        self.connection = Some((connection.clone(), id));
        Ok((connection, id))
    }

    fn error(&self, source: redis::RedisError) -> RedisLogError {
        RedisLogError::Command {
            url: self.log.url().to_owned(),
            operation: format!("tail of {:?}*", self.log.key_prefix()),
            source,
        }
    }
}

impl LogTail for RedisTail {
    type Error = RedisLogError;

    async fn wait_any(
        &mut self,
        positions: &[TailPosition],
        rearm: impl Future<Output = ()> + Send,
    ) -> Result<Vec<usize>, RedisLogError> {
        if positions.is_empty() {
            rearm.await;
            return Ok(Vec::new());
        }
        let block_ms = u64::try_from(self.log.block().as_millis()).unwrap_or(u64::MAX);
        let mut command = redis::cmd("XREAD");
        command
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS");
        let mut index = HashMap::with_capacity(positions.len());
        for (i, (topic, _)) in positions.iter().enumerate() {
            self.log.check_topic(topic)?;
            let key = self.log.key(topic);
            command.arg(&key);
            index.insert(key.into_bytes(), i);
        }
        for (_, after) in positions {
            // Only canonical ids reach XREAD (`$` or `+` would mean something else there).
            let after = after
                .as_deref()
                .and_then(StreamId::parse)
                .unwrap_or(StreamId::ZERO);
            command.arg(after.to_string());
        }
        let (mut connection, client_id) = self.connection().await?;
        let read = pin!(command.query_async::<Value>(&mut connection));
        let reply = match select(read, pin!(rearm)).await {
            Either::Left((reply, _)) => reply,
            Either::Right(((), mut read)) => {
                // Re-armed: unblock our read from the log's connection, then collect its
                // (empty) reply, so that the connection is free for the next wait.
                let mut control = self.log.connection();
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    if attempts > UNBLOCK_ATTEMPTS {
                        break read.await;
                    }
                    let mut command = redis::cmd("CLIENT");
                    command.arg("UNBLOCK").arg(client_id);
                    let unblock = pin!(command.query_async::<i64>(&mut control));
                    match select(read, unblock).await {
                        Either::Left((reply, _)) => break reply,
                        Either::Right((Ok(1), read)) => break read.await,
                        // Not blocked yet (or the control connection failed): try again.
                        Either::Right((Ok(_), pending)) => read = pending,
                        Either::Right((Err(_), read)) => break read.await,
                    }
                }
            }
        };
        match reply {
            Ok(reply) => Ok(ready_streams(reply, &index)),
            Err(source) => {
                // Start from a new connection next time.
                self.connection = None;
                Err(self.error(source))
            }
        }
    }
}

/// The indices of the streams an `XREAD` reply names (RESP2 array or RESP3 map), in order.
fn ready_streams(reply: Value, index: &HashMap<Vec<u8>, usize>) -> Vec<usize> {
    let keys: Vec<Value> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(mut parts) if !parts.is_empty() => Some(parts.swap_remove(0)),
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams.into_iter().map(|(key, _)| key).collect(),
        _ => Vec::new(),
    };
    let mut ready: Vec<usize> = keys
        .into_iter()
        .filter_map(|key| match key {
            Value::BulkString(key) => index.get(&key).copied(),
            _ => None,
        })
        .collect();
    ready.sort_unstable();
    ready.dedup();
    ready
}
