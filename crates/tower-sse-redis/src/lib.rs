//! The `tower-sse` event log on [Redis Streams]: many servers, one history.
//!
//! [`RedisLog`] implements [`EventLog`] (and [`LiveLog`]) on one Redis stream per topic, so
//! that every server behind a load balancer appends to and replays from the same history: a
//! client that read from server A and reconnects to server B with its `Last-Event-ID` resumes
//! with no gap and no duplicate. With `tower_sse::Hub::with_live_log`, an event published on
//! any server reaches the subscribers of every server.
//!
//! # Example
//!
//! ```no_run
//! use tower_sse_core::{Event, EventLog, ReplayOutcome};
//! use tower_sse_redis::RedisLog;
//!
//! # async fn run() -> Result<(), tower_sse_redis::RedisLogError> {
//! let log = RedisLog::connect("redis://127.0.0.1:6379").await?;
//! let first = log.append("chat", &Event::new().data("hello")).await?;
//! log.append("chat", &Event::new().data("world")).await?;
//!
//! // Any server, any time later: resume after `first`.
//! let replay = log.read_after("chat", Some(first.id()), 100).await?;
//! assert_eq!(replay.outcome, ReplayOutcome::Resumed);
//! assert!(replay.events[0].frame().ends_with(b"data: world\n\n"));
//! # Ok(())
//! # }
//! ```
//!
//! Behind several servers, give each one's hub the shared log, so that live events come from
//! Redis rather than from the local publishers:
//!
//! ```no_run
//! use tower_sse::Hub;
//! use tower_sse_redis::RedisLog;
//!
//! # async fn run() -> Result<(), tower_sse_redis::RedisLogError> {
//! let hub = Hub::with_live_log(RedisLog::connect("redis://127.0.0.1:6379").await?);
//! # Ok(())
//! # }
//! ```
//!
//! # Storage
//!
//! Topic `t` is the stream `<prefix>t` (prefix [`DEFAULT_KEY_PREFIX`], `tower-sse:`, by
//! default; [`RedisLogBuilder::key_prefix`]). An append is one Lua script (atomic, one round
//! trip) around `XADD <key> MAXLEN ~ <max_events + 1> <id> event <bytes>`. The event is
//! encoded once, without an `id` line, on the Rust side; the script, which chooses the id,
//! puts `id: <entry id>\n` in front and stores the whole frame. A read then hands the reply's
//! buffer out as the frame, with no copy and no re-encoding, and the append's frame and every
//! replay's are the same bytes. Entries written by an earlier 0.1 (field `frame`, without the
//! id line) are still read, the id put in front.
//!
//! A reply is a new buffer per read, so the log also keeps a bounded cache of recent frames
//! by id ([`RedisLogBuilder::frame_cache_bytes`], 8 MiB by default): every reader of an
//! entry gets the same [`Bytes`](bytes::Bytes), and a reconnect storm of clients replaying
//! the same events holds each frame once, not once per client.
//!
//! The script chooses the id rather than letting `XADD *` do it, because Redis makes ids
//! unique per stream only: two topics could get the same `<ms>-<seq>`, and a cursor of one
//! would then be misread as a position in the other. It takes the server's time in ms, or
//! the log's last id with the next sequence number when time has not moved past it (one
//! more key, `<prefix>\xffids`; the 0xFF byte cannot occur in a topic name), and always goes
//! past the stream's own last id. In Redis Cluster the stream and that key must share a
//! slot: use a prefix with a hash tag, such as `{tower-sse}:`.
//!
//! # Cursors
//!
//! An event's id is its stream entry id, `<ms>-<seq>`, so any server can resume any client.
//! A cursor must be an id exactly as Redis writes it; anything else (`-`, `+`, `$`, `>`, a
//! missing sequence, leading zeros, spaces, NUL, CR, LF) is
//! [`Unknown(Malformed)`](tower_sse_core::UnknownCursor::Malformed) without a round trip.
//! A read also runs as one Lua script, so trimming cannot slip between "where is the cursor"
//! and "fetch what follows", and costs one round trip:
//!
//! - past the stream's last generated id: [`Unknown(Ahead)`](tower_sse_core::UnknownCursor::Ahead);
//! - older than what the stream retains: [`Gap`](tower_sse_core::ReplayOutcome::Gap) with the
//!   oldest retained id, then the retained events (`XRANGE <key> (<floor> + COUNT <limit>`);
//! - an entry of the stream, or the newest dropped one: `Resumed`, then `XRANGE <key>
//!   (<cursor> + COUNT <limit>`;
//! - inside the retained range but not an entry: never issued by this stream (it was deleted
//!   and recreated, or the id comes from another Redis):
//!   [`Unknown(OtherEpoch)`](tower_sse_core::UnknownCursor::OtherEpoch).
//!
//! # Retention
//!
//! [`Retention::max_events`](tower_sse_core::Retention) becomes `MAXLEN ~` (approximate,
//! which Redis applies in whole radix-tree nodes of about 100 entries and is much cheaper;
//! [`RedisLogBuilder::exact_trimming`] for `MAXLEN =`). `max_age` becomes a `MINID ~` trim
//! after each append, measured by the Redis server's clock, which is the clock that made the
//! ids; reads also skip expired entries that trimming left. `max_bytes` cannot be enforced by
//! Redis and is refused.
//!
//! To tell "the reader saw the last dropped event" (no gap) from "the reader missed some",
//! the stream keeps one entry more than `max_events`: once trimming has dropped anything, its
//! oldest stored entry marks where retention cut and is not replayed itself. The gap check
//! uses `XINFO STREAM`'s `entries-added`, so Redis 7.0 or later is required (checked by
//! [`RedisLog::connect`]).
//!
//! # Live tail
//!
//! [`RedisTail`] waits for new entries of every followed topic with one `XREAD COUNT 1 BLOCK
//! <ms> STREAMS <key>... <id>...` on a connection of its own (a blocked `XREAD` holds its
//! connection): a server holds two connections to Redis (the log's multiplexed one and the
//! tail's), whatever its number of topics. When topics come or go, the hub re-arms the tail:
//! `CLIENT UNBLOCK` cuts the blocked read short and the next one names the new set. The hub
//! then reads new entries with the same script as any replay, so a tail that fell behind
//! retention sees the gap.
//!
//! # Faults
//!
//! Reads go over one multiplexed [`ConnectionManager`](redis::aio::ConnectionManager) and
//! appends over a second one (so that a publish never queues behind a reconnect storm's
//! replay reads); a hub's live tail adds its own blocking connection: a fixed few per
//! server, whatever the number of topics (tested: at most 8 with 1,000 topics). Each
//! reconnects on its own. While the server is down a command fails within about a
//! second ([`RedisLogBuilder::connection_config`]) with [`RedisLogError::Command`] naming the
//! URL; tails keep retrying and resume from their position, losing nothing the server kept
//! (run Redis with persistence, such as `appendonly yes`, to keep the streams across a
//! restart). An unreachable server at start-up is [`RedisLogError::Connect`], naming the URL.
//!
//! # Why redis-rs
//!
//! The client is [`redis`] (redis-rs), re-exported here: the most used Redis client for
//! Rust, whose `ConnectionManager` already is what a log needs (one multiplexed connection,
//! pipelined commands, automatic reconnection with a bounded backoff) and whose `Script` runs
//! Lua by `EVALSHA`, loading it again after a restart. Only the `tokio-comp`,
//! `connection-manager` and `script` features are used. fred was the alternative: it pools
//! and reconnects too, but is larger, and its higher-level API adds nothing for the
//! four commands used here.
//!
//! [Redis Streams]: https://redis.io/docs/latest/develop/data-types/streams/
//! [`EventLog`]: tower_sse_core::EventLog
//! [`LiveLog`]: tower_sse_core::LiveLog

mod claim;
mod error;
mod log;
mod scripts;
mod stream_id;
mod tail;

pub use claim::RedisClaimStore;
pub use error::RedisLogError;
pub use log::{
    DEFAULT_BLOCK, DEFAULT_FRAME_CACHE_BYTES, DEFAULT_KEY_PREFIX, RedisLog, RedisLogBuilder,
};
pub use redis;
pub use tail::RedisTail;
