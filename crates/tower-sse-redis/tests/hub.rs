//! The Hub over Redis: two hubs (two "servers") on one Redis, one history.

mod common;

use std::time::Duration;

use common::RedisServer;
use futures_util::StreamExt;
use tower_sse::{Hub, Subscription};
use tower_sse_core::{Decoded, Decoder, Event, ReplayOutcome};
use tower_sse_redis::RedisLog;

/// (data, id) of the one event in `frame`.
fn decode(frame: &[u8]) -> (String, String) {
    let mut decoder = Decoder::new();
    decoder.feed(frame);
    let mut events = Vec::new();
    while let Some(item) = decoder.decode().unwrap() {
        if let Decoded::Event(e) = item {
            events.push((e.data().into(), e.last_event_id().into()));
        }
    }
    assert_eq!(events.len(), 1, "one event per frame: {frame:?}");
    events.pop().unwrap()
}

async fn next(sub: &mut Subscription) -> (String, String) {
    let frame = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event within 10 s")
        .expect("the feed does not end")
        .expect("no log error");
    decode(&frame)
}

/// Nothing more arrives within `wait`.
async fn quiet(sub: &mut Subscription, wait: Duration) {
    if let Ok(item) = tokio::time::timeout(wait, sub.next()).await {
        panic!("expected nothing, got {item:?}");
    }
}

async fn hubs(server: &RedisServer) -> (Hub<RedisLog>, Hub<RedisLog>) {
    let prefix = common::unique_prefix();
    let connect = || async {
        RedisLog::builder(server.url())
            .key_prefix(prefix.clone())
            .block(Duration::from_millis(500))
            .connect()
            .await
            .expect("connect")
    };
    (
        Hub::with_live_log(connect().await),
        Hub::with_live_log(connect().await),
    )
}

fn data(i: usize) -> Event<'static> {
    Event::new().data(format!("e{i}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_on_a_reaches_subscribers_on_a_and_b_once() {
    let server = RedisServer::start();
    let (a, b) = hubs(&server).await;
    let mut on_a = a.subscribe("room", None).await.unwrap();
    let mut on_b = b.subscribe("room", None).await.unwrap();

    let mut published = Vec::new();
    for i in 0..20 {
        let hub = if i % 2 == 0 { &a } else { &b };
        published.push(hub.publish("room", &data(i)).await.unwrap());
    }
    for sub in [&mut on_a, &mut on_b] {
        for (i, logged) in published.iter().enumerate() {
            assert_eq!(next(sub).await, (format!("e{i}"), logged.id().to_owned()));
        }
        quiet(sub, Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_from_a_on_b_with_no_gap_and_no_duplicate() {
    let server = RedisServer::start();
    let (a, b) = hubs(&server).await;
    let mut on_a = a.subscribe("room", None).await.unwrap();
    for i in 0..10 {
        a.publish("room", &data(i)).await.unwrap();
    }
    let mut last = String::new();
    for i in 0..5 {
        let (got, id) = next(&mut on_a).await;
        assert_eq!(got, format!("e{i}"));
        last = id;
    }
    drop(on_a);

    // The client reconnects to B with `Last-Event-ID: <e4's id>` while A goes on publishing.
    let mut on_b = b.subscribe("room", Some(&last)).await.unwrap();
    assert_eq!(on_b.outcome(), Some(&ReplayOutcome::Resumed));
    for i in 10..15 {
        a.publish("room", &data(i)).await.unwrap();
    }
    for i in 5..15 {
        assert_eq!(next(&mut on_b).await.0, format!("e{i}"));
    }
    quiet(&mut on_b, Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_ahead_of_this_servers_tail_is_not_replayed_twice() {
    let server = RedisServer::start();
    let (a, b) = hubs(&server).await;
    // B's tail runs before A publishes, so B delivers these events live, later than A may.
    let mut watcher_b = b.subscribe("room", None).await.unwrap();
    let mut on_a = a.subscribe("room", None).await.unwrap();
    for round in 0..20 {
        let logged = a.publish("room", &data(round)).await.unwrap();
        assert_eq!(next(&mut on_a).await.1, logged.id());
        // Straight to B with the id just read from A: B's tail may not have delivered it yet.
        let mut resumed = b.subscribe("room", Some(logged.id())).await.unwrap();
        let following = a.publish("room", &data(1000 + round)).await.unwrap();
        assert_eq!(
            next(&mut resumed).await,
            (format!("e{}", 1000 + round), following.id().to_owned())
        );
        quiet(&mut resumed, Duration::from_millis(20)).await;
        assert_eq!(next(&mut on_a).await.1, following.id());
        assert_eq!(next(&mut watcher_b).await.1, logged.id());
        assert_eq!(next(&mut watcher_b).await.1, following.id());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishers_and_subscribers_see_one_order() {
    let server = RedisServer::start();
    let (a, b) = hubs(&server).await;
    let mut first = a.subscribe("room", None).await.unwrap();
    let publishers: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .enumerate()
        .map(|(p, hub)| {
            tokio::spawn(async move {
                for i in 0..100 {
                    hub.publish("room", &Event::new().data(format!("p{p}-{i}")))
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    // Subscribers join on both servers mid-stream, resuming from what `first` saw.
    let mut seen = Vec::new();
    let mut late = Vec::new();
    for n in 0..200 {
        seen.push(next(&mut first).await);
        if n == 50 || n == 120 {
            let hub = if n == 50 { &b } else { &a };
            late.push((n, hub.subscribe("room", Some(&seen[n].1)).await.unwrap()));
        }
    }
    for publisher in publishers {
        publisher.await.unwrap();
    }
    for (n, mut sub) in late {
        for expected in &seen[n + 1..] {
            assert_eq!(&next(&mut sub).await, expected, "resumed after event {n}");
        }
        quiet(&mut sub, Duration::from_millis(200)).await;
    }
    // Each publisher's events in its own order.
    for p in 0..2 {
        let mine: Vec<&str> = seen
            .iter()
            .map(|(d, _)| d.as_str())
            .filter(|d| d.starts_with(&format!("p{p}-")))
            .collect();
        let expected: Vec<String> = (0..100).map(|i| format!("p{p}-{i}")).collect();
        assert_eq!(mine, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_stops_with_the_last_subscriber() {
    let server = RedisServer::start();
    let (a, _b) = hubs(&server).await;
    let sub = a.subscribe("room", None).await.unwrap();
    assert_eq!(a.topic_count(), 1);
    drop(sub);
    assert_eq!(a.topic_count(), 0, "the topic and its tail are gone");
    // A new subscriber starts a new tail and gets what follows.
    let mut sub = a.subscribe("room", None).await.unwrap();
    a.publish("room", &data(1)).await.unwrap();
    assert_eq!(next(&mut sub).await.0, "e1");
}

/// 1,000 topics with subscribers: the server's connections to Redis stay a fixed few (the
/// log's and the one tail's), and events still reach subscribers of several topics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_topics_use_a_fixed_few_connections() {
    let server = RedisServer::start();
    let log = RedisLog::builder(server.url())
        .key_prefix(common::unique_prefix())
        .block(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect");
    let hub = Hub::with_live_log(log.clone());
    let mut subscriptions = Vec::new();
    for topic in 0..1_000 {
        subscriptions.push(
            hub.subscribe(&format!("topic-{topic}"), None)
                .await
                .unwrap(),
        );
    }
    assert_eq!(hub.topic_count(), 1_000);
    // An observer on its own connection counts every client of the Redis server: only this
    // hub's connections and the observer's exist.
    let observer = server.log().await;
    let mut connection = observer.connection();
    let list: String = tower_sse_redis::redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut connection)
        .await
        .unwrap();
    let total = list.lines().filter(|line| !line.is_empty()).count();
    eprintln!("redis connections with 1,000 topics: {total} (the hub's and the observer's)");
    assert!(
        total <= 8 + 1,
        "at most 8 connections for the hub (plus the observer's), got {total}:\n{list}"
    );

    for topic in [0, 499, 999] {
        let name = format!("topic-{topic}");
        let logged = hub.publish(&name, &data(topic)).await.unwrap();
        assert_eq!(
            next(&mut subscriptions[topic]).await,
            (format!("e{topic}"), logged.id().to_owned())
        );
    }
    // Topics come and go: the tail is re-armed, and a new topic is followed at once.
    subscriptions.truncate(10);
    let mut late = hub.subscribe("late-topic", None).await.unwrap();
    let logged = hub.publish("late-topic", &data(7)).await.unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        next(&mut late).await,
        ("e7".to_owned(), logged.id().to_owned())
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a new topic did not wait for the tail's timeout"
    );
    assert_eq!(hub.topic_count(), 11);
}

/// Calls of the read and append scripts (`EVALSHA`) the server has served so far.
async fn script_calls(server: &RedisServer) -> u64 {
    let observer = server.log().await;
    let mut connection = observer.connection();
    let stats: String = tower_sse_redis::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap())
}

/// A storm of clients resuming from recent cursors is served from the topic's history: every
/// one gets exactly the events after its cursor, and Redis serves no read for them. A cursor
/// older than the history is still read from Redis, with nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_cursors_are_replayed_from_memory_without_reading_redis() {
    let server = RedisServer::start();
    let log = RedisLog::builder(server.url())
        .key_prefix(common::unique_prefix())
        .block(Duration::from_millis(500))
        .connect()
        .await
        .expect("connect");
    let hub = Hub::with_live_log(log).history(64, 1 << 20);
    let mut observer = hub.subscribe("room", None).await.unwrap();
    let mut published = Vec::new();
    for i in 0..100 {
        published.push(hub.publish("room", &data(i)).await.unwrap());
    }
    // Once the observer has the last event, the tail has sent all of them to the ring.
    for (i, logged) in published.iter().enumerate() {
        assert_eq!(
            next(&mut observer).await,
            (format!("e{i}"), logged.id().to_owned())
        );
    }

    let before = script_calls(&server).await;
    let mut clients = Vec::new();
    for client in 0..200 {
        // Cursors 40 to 98: inside the last 64 events.
        let from = 40 + client % 59;
        let sub = hub
            .subscribe("room", Some(published[from].id()))
            .await
            .unwrap();
        assert_eq!(sub.outcome(), Some(&ReplayOutcome::Resumed));
        clients.push((from, sub));
    }
    for (from, sub) in &mut clients {
        for (i, logged) in published.iter().enumerate().skip(*from + 1) {
            assert_eq!(next(sub).await, (format!("e{i}"), logged.id().to_owned()));
        }
        quiet(sub, Duration::from_millis(5)).await;
    }
    // The observer's own `script_calls` connection issues no script.
    assert_eq!(
        script_calls(&server).await,
        before,
        "200 replays from recent cursors read nothing from Redis"
    );

    // Older than the history: read from Redis, contiguous into the kept run.
    let mut old = hub
        .subscribe("room", Some(published[3].id()))
        .await
        .unwrap();
    for (i, logged) in published.iter().enumerate().skip(4) {
        assert_eq!(
            next(&mut old).await,
            (format!("e{i}"), logged.id().to_owned())
        );
    }
    assert!(
        script_calls(&server).await > before,
        "the old cursor was read from Redis"
    );
    // Live events still follow, once, for both kinds of subscriber.
    let live = hub.publish("room", &data(100)).await.unwrap();
    for sub in [&mut old, &mut clients[0].1] {
        assert_eq!(next(sub).await, ("e100".to_owned(), live.id().to_owned()));
        quiet(sub, Duration::from_millis(200)).await;
    }
}
