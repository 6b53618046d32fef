//! [`RedisLog`] and its builder: the [`EventLog`] on Redis Streams.

use std::{
    collections::{HashMap, VecDeque},
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use bytes::{Bytes, BytesMut};
use redis::{Client, Value, aio::ConnectionManager, aio::ConnectionManagerConfig};
use tower_sse_core::{
    Event, EventLog, LiveLog, LoggedEvent, Replay, ReplayOutcome, Retention, TopicRules,
    UnknownCursor,
};

use crate::{
    error::{RedisLogError, mask_password},
    scripts,
    stream_id::{self, StreamId},
    tail::RedisTail,
};

/// The default key prefix: topic `chat` is stored in the stream `tower-sse:chat`.
pub const DEFAULT_KEY_PREFIX: &str = "tower-sse:";

/// How long a tail's `XREAD BLOCK` waits before it returns empty, by default.
pub const DEFAULT_BLOCK: Duration = Duration::from_secs(5);

/// The stream field that holds an entry's frame, with its `id` line: what a read returns as is.
const EVENT_FIELD: &str = "event";

/// The field of entries written by tower-sse-redis 0.1 before frames were stored with their id:
/// the frame without its `id` line. Still read (the id is put in front), so that streams
/// written by an earlier version replay after an upgrade.
const LEGACY_FRAME_FIELD: &str = "frame";

/// The default [`RedisLogBuilder::frame_cache_bytes`]: 8 MiB.
pub const DEFAULT_FRAME_CACHE_BYTES: usize = 8 * 1024 * 1024;

/// The most events one append script call carries.
const APPEND_BATCH: usize = 1000;

/// An [`EventLog`] on Redis Streams: one stream per topic, shared by every server that
/// connects to the same Redis. Cheap to clone (an `Arc` inside).
///
/// See the [crate docs](crate) for the storage format, cursors and retention.
#[derive(Clone)]
pub struct RedisLog {
    shared: Arc<Shared>,
}

struct Shared {
    client: Client,
    connection: ConnectionManager,
    /// Appends go over their own connection: on the shared one, a publish would wait behind
    /// every replay read queued before it (one multiplexed connection answers in order), and
    /// a reconnect storm's reads would delay — or time out — the publishes.
    appends: ConnectionManager,
    url: String,
    key_prefix: String,
    retention: Retention,
    exact_trimming: bool,
    block: Duration,
    topic_rules: TopicRules,
    read_script: redis::Script,
    append_script: redis::Script,
    frames: FrameCache,
}

impl fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLog")
            .field("url", &self.shared.url)
            .field("key_prefix", &self.shared.key_prefix)
            .field("retention", &self.shared.retention)
            .field("exact_trimming", &self.shared.exact_trimming)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisLog`]; made by [`RedisLog::builder`].
#[must_use]
pub struct RedisLogBuilder {
    url: String,
    key_prefix: String,
    retention: Retention,
    exact_trimming: bool,
    block: Duration,
    connection: ConnectionManagerConfig,
    frame_cache_bytes: usize,
    topic_rules: TopicRules,
}

impl fmt::Debug for RedisLogBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLogBuilder")
            .field("url", &mask_password(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("retention", &self.retention)
            .field("exact_trimming", &self.exact_trimming)
            .field("block", &self.block)
            .field("topic_rules", &self.topic_rules)
            .finish_non_exhaustive()
    }
}

impl RedisLog {
    /// Connects to the Redis at `url` (`redis://host:port/db`) with the default settings: key
    /// prefix [`DEFAULT_KEY_PREFIX`], [`Retention::default`] (10,000 events per topic,
    /// approximately).
    ///
    /// # Errors
    ///
    /// [`RedisLogError::InvalidUrl`], or [`RedisLogError::Connect`] naming the URL when the
    /// server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, RedisLogError> {
        Self::builder(url).connect().await
    }

    /// A builder for a log on the Redis at `url`.
    pub fn builder(url: impl Into<String>) -> RedisLogBuilder {
        RedisLogBuilder {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            retention: Retention::default(),
            exact_trimming: false,
            block: DEFAULT_BLOCK,
            connection: ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(1)))
                .set_response_timeout(Some(Duration::from_secs(2)))
                .set_number_of_retries(2)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_secs(1)),
            frame_cache_bytes: DEFAULT_FRAME_CACHE_BYTES,
            topic_rules: TopicRules::new(),
        }
    }

    /// The server's URL, password masked.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The prefix of every stream key.
    pub fn key_prefix(&self) -> &str {
        &self.shared.key_prefix
    }

    /// What each topic retains.
    pub fn retention(&self) -> &Retention {
        &self.shared.retention
    }

    /// `Ok` when `topic` follows the log's [`TopicRules`]
    /// ([`RedisLogBuilder::topic_rules`]): checked before a topic name becomes a key in any
    /// command, so an invalid name is an error and never reaches Redis.
    pub(crate) fn check_topic(&self, topic: &str) -> Result<(), RedisLogError> {
        self.shared
            .topic_rules
            .check(topic.as_bytes())
            .map_err(|source| RedisLogError::InvalidTopic { source })
    }

    /// The Redis key of `topic`'s stream: the prefix, then the topic.
    pub fn key(&self, topic: &str) -> String {
        format!("{}{topic}", self.shared.key_prefix)
    }

    /// The multiplexed connection the log uses, reconnecting on its own, for other commands.
    pub fn connection(&self) -> ConnectionManager {
        self.shared.connection.clone()
    }

    pub(crate) fn client(&self) -> &Client {
        &self.shared.client
    }

    pub(crate) fn block(&self) -> Duration {
        self.shared.block
    }

    fn command_error(
        &self,
        operation: &str,
        topic: &str,
        source: redis::RedisError,
    ) -> RedisLogError {
        RedisLogError::Command {
            url: self.shared.url.clone(),
            operation: format!("{operation} {:?}", self.key(topic)),
            source,
        }
    }

    fn unexpected(&self, operation: &str, topic: &str, detail: impl Into<String>) -> RedisLogError {
        RedisLogError::UnexpectedReply {
            url: self.shared.url.clone(),
            operation: format!("{operation} {:?}", self.key(topic)),
            detail: detail.into(),
        }
    }

    /// `MAXLEN` for the count limit: one more than the limit, for the retention marker.
    fn max_len(&self) -> Option<usize> {
        self.shared
            .retention
            .max_events
            .map(|max| max.saturating_add(1))
    }

    fn trim_mode(&self) -> &'static str {
        if self.shared.exact_trimming { "=" } else { "~" }
    }

    fn max_age_ms(&self) -> u64 {
        self.shared.retention.max_age.map_or(0, |age| {
            u64::try_from(age.as_millis()).unwrap_or(u64::MAX).max(1)
        })
    }

    /// Appends `bodies` in order with one script call; returns them with their ids.
    async fn append_frames(
        &self,
        topic: &str,
        bodies: &[Bytes],
    ) -> Result<Vec<LoggedEvent>, RedisLogError> {
        let mut connection = self.shared.appends.clone();
        self.check_topic(topic)?;
        let mut invocation = self.shared.append_script.key(self.key(topic));
        invocation
            .key(self.clock_key())
            .arg(self.trim_mode())
            .arg(self.max_len().map(|n| n.to_string()).unwrap_or_default())
            .arg(self.max_age_ms());
        for body in bodies {
            invocation.arg(&body[..]);
        }
        let ids: Vec<String> = invocation
            .invoke_async(&mut connection)
            .await
            .map_err(|e| self.command_error("append to", topic, e))?;
        if ids.len() != bodies.len() {
            return Err(self.unexpected("append to", topic, "not one id per event"));
        }
        ids.into_iter()
            .zip(bodies)
            .map(|(id, body)| {
                if StreamId::parse(&id).is_none() {
                    return Err(self.unexpected("append to", topic, format!("entry id {id:?}")));
                }
                let id: Arc<str> = id.into();
                let frame = self.shared.frames.share(&id, frame_with_id(&id, body));
                Ok(LoggedEvent::from_parts(id, frame))
            })
            .collect()
    }

    /// The key holding the last id the log assigned: the prefix, then a 0xFF byte, which no
    /// topic (UTF-8) contains, so no topic's stream can have this key.
    fn clock_key(&self) -> Vec<u8> {
        let mut key = self.shared.key_prefix.as_bytes().to_vec();
        key.extend_from_slice(b"\xffids");
        key
    }

    /// Runs the read script: `(last generated id, outcome, oldest, entries)`.
    async fn read_script(
        &self,
        topic: &str,
        cursor: &str,
        count: usize,
    ) -> Result<ScriptReply, RedisLogError> {
        let mut connection = self.connection();
        self.check_topic(topic)?;
        let mut invocation = self.shared.read_script.key(self.key(topic));
        invocation.arg(cursor).arg(count).arg(self.max_age_ms());
        let mut reply = invocation.invoke_async(&mut connection).await;
        // A read is idempotent: one found the connection broken (the server restarted since
        // it was last used) is tried once more on the manager's new connection, rather than
        // becoming a `log-error` gap for the client. Appends are not retried: one may have
        // reached the server before the connection broke.
        if reply
            .as_ref()
            .is_err_and(|e| e.is_io_error() || e.is_connection_dropped())
        {
            reply = invocation.invoke_async(&mut connection).await;
        }
        let reply: Value = reply.map_err(|e| self.command_error("read from", topic, e))?;
        ScriptReply::parse(reply, &self.shared.frames)
            .map_err(|detail| self.unexpected("read from", topic, detail))
    }
}

impl RedisLogBuilder {
    /// The prefix of every stream key (default [`DEFAULT_KEY_PREFIX`]); give each
    /// application (or test) sharing a Redis its own.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// The rules a topic name must follow (default [`TopicRules::new`]: 1 to 128 bytes of
    /// `A-Z a-z 0-9 . _ ~ / -`). A name outside them is refused by every operation with
    /// [`RedisLogError::InvalidTopic`] before it becomes a key. Use the rules of the hub or
    /// layer in front of the log.
    pub fn topic_rules(mut self, rules: TopicRules) -> Self {
        self.topic_rules = rules;
        self
    }

    /// What each topic retains (default [`Retention::default`]). `max_events` becomes
    /// `MAXLEN`, `max_age` a `MINID` trim by the server's clock; `max_bytes` is not
    /// supported by Redis Streams, and [`connect`](Self::connect) refuses it.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Trims exactly (`MAXLEN =`) rather than approximately (`MAXLEN ~`, the default, which
    /// Redis does in whole radix-tree nodes, about 100 entries, and much cheaper).
    pub fn exact_trimming(mut self, exact: bool) -> Self {
        self.exact_trimming = exact;
        self
    }

    /// How long a tail's `XREAD BLOCK` waits before returning empty (default
    /// [`DEFAULT_BLOCK`]); a hub notices that a topic lost its last subscriber at the latest
    /// then.
    pub fn block(mut self, block: Duration) -> Self {
        self.block = block.max(Duration::from_millis(1));
        self
    }

    /// How many bytes of recently appended or read frames the log keeps, so that every reader
    /// of an entry shares one [`Bytes`] (default [`DEFAULT_FRAME_CACHE_BYTES`]; `0`: none).
    ///
    /// A reply from Redis is a new buffer per read: without the cache, ten thousand clients
    /// replaying the same thousand events would each hold their own copy of every frame while
    /// they drain. With it, a frame read again is compared with the cached one (so a stream
    /// recreated with other content under the same id is never misread) and the cached
    /// `Bytes` is handed out instead; the oldest entries leave first once the budget is used.
    pub fn frame_cache_bytes(mut self, bytes: usize) -> Self {
        self.frame_cache_bytes = bytes;
        self
    }

    /// The reconnection and timeout settings of the log's connection. The default fails a
    /// command within about a second while the server is down (2 reconnection attempts,
    /// 1 s connection and 2 s response timeouts), so that publishers get an error rather
    /// than wait.
    pub fn connection_config(mut self, config: ConnectionManagerConfig) -> Self {
        self.connection = config;
        self
    }

    /// Connects and checks that the server is Redis 7.0 or later.
    ///
    /// # Errors
    ///
    /// [`RedisLogError::InvalidUrl`]; [`RedisLogError::Connect`] naming the URL when the server
    /// cannot be reached; [`RedisLogError::UnexpectedReply`] for a server older than 7.0;
    /// [`RedisLogError::UnsupportedRetention`] for a byte limit.
    pub async fn connect(self) -> Result<RedisLog, RedisLogError> {
        if self.retention.max_bytes.is_some() {
            return Err(RedisLogError::UnsupportedRetention { limit: "max_bytes" });
        }
        let url = mask_password(&self.url);
        let client =
            Client::open(self.url.as_str()).map_err(|source| RedisLogError::InvalidUrl {
                url: url.clone(),
                source,
            })?;
        // One attempt first, so that an unreachable server fails at once rather than after
        // the manager's retries.
        let mut probe = client
            .get_multiplexed_async_connection_with_config(
                &redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(self.connection.connection_timeout())
                    .set_response_timeout(self.connection.response_timeout()),
            )
            .await
            .map_err(|source| RedisLogError::Connect {
                url: url.clone(),
                source,
            })?;
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut probe)
            .await
            .map_err(|source| RedisLogError::Connect {
                url: url.clone(),
                source,
            })?;
        check_version(&info).map_err(|detail| RedisLogError::UnexpectedReply {
            url: url.clone(),
            operation: "INFO server".to_owned(),
            detail,
        })?;
        let manager = || async {
            ConnectionManager::new_with_config(client.clone(), self.connection.clone())
                .await
                .map_err(|source| RedisLogError::Connect {
                    url: url.clone(),
                    source,
                })
        };
        let connection = manager().await?;
        let appends = manager().await?;
        Ok(RedisLog {
            shared: Arc::new(Shared {
                client,
                connection,
                appends,
                url,
                key_prefix: self.key_prefix,
                retention: self.retention,
                exact_trimming: self.exact_trimming,
                block: self.block,
                topic_rules: self.topic_rules,
                read_script: scripts::script(scripts::READ_AFTER),
                append_script: scripts::script(scripts::APPEND),
                frames: FrameCache::new(self.frame_cache_bytes),
            }),
        })
    }
}

/// Requires `redis_version` 7 or later (`XINFO STREAM` reports `entries-added` since 7.0).
fn check_version(info: &str) -> Result<(), String> {
    let version = info
        .lines()
        .find_map(|line| line.strip_prefix("redis_version:"))
        .map(str::trim)
        .ok_or("no redis_version in INFO server")?;
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|major| major.parse().ok())
        .ok_or_else(|| format!("unreadable redis_version {version:?}"))?;
    if major >= 7 {
        Ok(())
    } else {
        Err(format!(
            "redis {version}: tower-sse-redis needs 7.0 or later"
        ))
    }
}

/// The event's frame without an `id` line: what the stream stores. Encoding happens here,
/// once; a read only puts the assigned id in front ([`frame_with_id`]).
fn frame_without_id(event: &Event<'_>) -> Bytes {
    let mut rebuilt = Event::new();
    if let Some(event_type) = event.event_ref() {
        rebuilt = rebuilt
            .event(event_type)
            .expect("validated when it was set on `event`");
    }
    if let Some(data) = event.data_ref() {
        rebuilt = rebuilt.data(data);
    }
    if let Some(retry) = event.retry_ref() {
        rebuilt = rebuilt.retry(retry);
    }
    if let Some(comment) = event.comment_ref() {
        rebuilt = rebuilt.comment(comment);
    }
    rebuilt.to_bytes()
}

/// `id: <id>\n` and the stored frame: the event with its assigned id. Field order does not
/// matter in an event block, so the id line may come first.
fn frame_with_id(id: &str, body: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(5 + id.len() + body.len());
    frame.extend_from_slice(b"id: ");
    frame.extend_from_slice(id.as_bytes());
    frame.extend_from_slice(b"\n");
    frame.extend_from_slice(body);
    frame.freeze()
}

/// Recently seen frames by id, bounded in bytes, oldest out first: what makes the readers of
/// one entry share its frame.
struct FrameCache {
    max_bytes: usize,
    inner: Mutex<FrameCacheInner>,
}

#[derive(Default)]
struct FrameCacheInner {
    frames: HashMap<Arc<str>, Bytes>,
    order: VecDeque<Arc<str>>,
    bytes: usize,
}

impl FrameCache {
    fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            inner: Mutex::default(),
        }
    }

    /// The cached frame of `id` when it holds the same bytes as `frame`, else `frame`, cached.
    /// The lock is held for a lookup and a comparison, never across I/O.
    fn share(&self, id: &Arc<str>, frame: Bytes) -> Bytes {
        if frame.len() > self.max_bytes {
            return frame;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(cached) = inner.frames.get(id) {
            if *cached == frame {
                return cached.clone();
            }
            // Another frame under the same id (the stream was recreated): replace it.
            let old = inner.frames.insert(Arc::clone(id), frame.clone());
            inner.bytes = inner.bytes - old.map_or(0, |old| old.len()) + frame.len();
        } else {
            inner.frames.insert(Arc::clone(id), frame.clone());
            inner.order.push_back(Arc::clone(id));
            inner.bytes += frame.len();
        }
        while inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.frames.remove(&oldest) {
                inner.bytes -= old.len();
            }
        }
        frame
    }
}

/// What the read script returned.
struct ScriptReply {
    last_generated: Arc<str>,
    outcome: String,
    oldest: String,
    entries: Vec<LoggedEvent>,
}

impl ScriptReply {
    fn parse(reply: Value, frames: &FrameCache) -> Result<Self, String> {
        let Value::Array(mut parts) = reply else {
            return Err(format!("expected an array, got {reply:?}"));
        };
        if parts.len() != 4 {
            return Err(format!("expected 4 parts, got {}", parts.len()));
        }
        let entries = parts.pop().unwrap_or_default();
        let oldest = string(parts.pop())?;
        let outcome = string(parts.pop())?;
        let last_generated = string(parts.pop())?;
        let Value::Array(entries) = entries else {
            return Err(format!("expected entries, got {entries:?}"));
        };
        let entries = entries
            .into_iter()
            .map(|value| entry(value, frames))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            last_generated: last_generated.into(),
            outcome,
            oldest,
            entries,
        })
    }
}

fn string(value: Option<Value>) -> Result<String, String> {
    match value {
        Some(Value::BulkString(bytes)) => {
            String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
        }
        Some(Value::SimpleString(s)) => Ok(s),
        other => Err(format!("expected a string, got {other:?}")),
    }
}

/// One `XRANGE` entry, `[id, [field, value, ...]]`, as a logged event whose frame is shared
/// with every other reader of the same entry while it is cached.
fn entry(value: Value, frames: &FrameCache) -> Result<LoggedEvent, String> {
    let Value::Array(parts) = value else {
        return Err(format!("expected an entry, got {value:?}"));
    };
    let mut parts = parts.into_iter();
    let id = string(parts.next())?;
    if StreamId::parse(&id).is_none() {
        return Err(format!("entry id {id:?}"));
    }
    let Some(Value::Array(fields)) = parts.next() else {
        return Err(format!("entry {id} has no fields"));
    };
    let id: Arc<str> = id.into();
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        let Value::BulkString(name) = name else {
            continue;
        };
        let legacy = name == LEGACY_FRAME_FIELD.as_bytes();
        if name == EVENT_FIELD.as_bytes() || legacy {
            let Value::BulkString(body) = value else {
                return Err(format!("entry {id}: frame is not a string"));
            };
            let frame = if legacy {
                frame_with_id(&id, &body)
            } else {
                // The reply's buffer becomes the frame: no copy.
                Bytes::from(body)
            };
            let frame = frames.share(&id, frame);
            return Ok(LoggedEvent::from_parts(id, frame));
        }
    }
    Err(format!("entry {id} has no {EVENT_FIELD:?} field"))
}

impl EventLog for RedisLog {
    type Error = RedisLogError;

    async fn append(&self, topic: &str, event: &Event<'_>) -> Result<LoggedEvent, RedisLogError> {
        let body = frame_without_id(event);
        let mut logged = self.append_frames(topic, &[body]).await?;
        logged
            .pop()
            .ok_or_else(|| self.unexpected("append to", topic, "no id"))
    }

    async fn read_after(
        &self,
        topic: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Replay, RedisLogError> {
        self.check_topic(topic)?;
        let cursor = cursor.unwrap_or("");
        if !cursor.is_empty() && StreamId::parse(cursor).is_none() {
            return Ok(Replay::new(
                ReplayOutcome::Unknown(UnknownCursor::Malformed),
                Vec::new(),
                false,
            ));
        }
        // One more than asked, to learn whether more follow; Redis counts are `i64`.
        let count = limit.min(i64::MAX as usize - 1) + 1;
        let reply = self.read_script(topic, cursor, count).await?;
        let outcome = match reply.outcome.as_str() {
            "fresh" => ReplayOutcome::Fresh,
            "resumed" => ReplayOutcome::Resumed,
            "gap" => ReplayOutcome::gap((!reply.oldest.is_empty()).then(|| reply.oldest.into())),
            "ahead" => ReplayOutcome::Unknown(UnknownCursor::Ahead),
            "unissued" => ReplayOutcome::Unknown(UnknownCursor::OtherEpoch),
            other => {
                return Err(self.unexpected("read from", topic, format!("outcome {other:?}")));
            }
        };
        let mut events = reply.entries;
        let has_more = events.len() > limit;
        events.truncate(limit);
        Ok(Replay::new(outcome, events, has_more))
    }

    fn compare_ids(&self, a: &str, b: &str) -> Option<std::cmp::Ordering> {
        stream_id::compare(a, b)
    }

    /// The stream's last generated id, as [`LiveLog::last_id`]: one round trip.
    async fn head(&self, topic: &str) -> Result<Option<Arc<str>>, RedisLogError> {
        self.last_id(topic).await
    }
}

impl LiveLog for RedisLog {
    type Tail = RedisTail;

    fn tail(&self) -> RedisTail {
        RedisTail::new(self.clone())
    }

    /// The stream's last generated id (`0-0` for a topic never written), which is a cursor
    /// [`read_after`](EventLog::read_after) resumes from.
    async fn last_id(&self, topic: &str) -> Result<Option<Arc<str>>, RedisLogError> {
        let reply = self.read_script(topic, "", 0).await?;
        Ok(Some(reply.last_generated))
    }
}

impl RedisLog {
    /// Appends several events to `topic` in order, as by [`EventLog::append`], a thousand per
    /// script call (one round trip, atomic).
    ///
    /// # Errors
    ///
    /// The first error; the calls before it have appended their events.
    pub async fn append_batch(
        &self,
        topic: &str,
        events: &[Event<'_>],
    ) -> Result<Vec<LoggedEvent>, RedisLogError> {
        let bodies: Vec<Bytes> = events.iter().map(frame_without_id).collect();
        let mut logged = Vec::with_capacity(bodies.len());
        // Bounded script runs: Redis serves nobody else while one runs.
        for chunk in bodies.chunks(APPEND_BATCH) {
            logged.extend(self.append_frames(topic, chunk).await?);
        }
        Ok(logged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_encoded_once_and_the_id_put_in_front() {
        let event = Event::new()
            .id("ignored")
            .and_then(|e| e.event("tick"))
            .unwrap()
            .data("a\nb")
            .comment("c");
        let body = frame_without_id(&event);
        assert_eq!(&body[..], b":c\nevent: tick\ndata: a\ndata: b\n\n");
        assert_eq!(
            &frame_with_id("1-0", &body)[..],
            b"id: 1-0\n:c\nevent: tick\ndata: a\ndata: b\n\n"
        );
    }

    #[test]
    fn needs_redis_7() {
        assert!(check_version("# Server\r\nredis_version:7.0.15\r\n").is_ok());
        assert!(check_version("redis_version:8.2.1\r\n").is_ok());
        assert!(check_version("redis_version:6.2.14\r\n").is_err());
        assert!(check_version("nothing").is_err());
    }
}
