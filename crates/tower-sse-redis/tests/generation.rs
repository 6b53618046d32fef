//! Generations on two "servers" (two hubs, two stores) sharing one real `redis-server`: one
//! producer per idempotency key whichever server gets the start, readers on either server,
//! cancellation from the server that does not run the producer.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use common::RedisServer;
use futures_util::StreamExt;
use tower_sse::{
    Hub,
    generation::{GenerationConfig, GenerationStream, Generations, Opened, Resume},
};
use tower_sse_core::{Decoded, Decoder, MessageEvent};
use tower_sse_redis::{RedisClaimStore, RedisLog};

type Gens = Generations<RedisLog, RedisClaimStore>;

async fn server(redis: &RedisServer) -> Gens {
    let log = RedisLog::connect(&redis.url()).await.unwrap();
    let store = RedisClaimStore::new(&log);
    let config = GenerationConfig::default().watch_interval(Duration::from_millis(50));
    Generations::new(Hub::with_live_log(log), store, config)
}

async fn events(stream: GenerationStream) -> Vec<MessageEvent> {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("the stream goes on")
    {
        decoder.feed(&chunk.unwrap());
        while let Some(item) = decoder.decode().unwrap() {
            if let Decoded::Event(e) = item {
                out.push(e);
            }
        }
    }
    out
}

async fn open(gens: &Gens, id: &str, resume: Resume<'_>) -> GenerationStream {
    match gens.open(id, resume).await.unwrap() {
        Opened::Stream(s) => s,
        _ => panic!("finished"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_producer_per_key_across_servers_and_readers_anywhere() {
    let redis = RedisServer::start();
    let (a, b) = (server(&redis).await, server(&redis).await);
    let runs = Arc::new(AtomicUsize::new(0));
    for round in 0..10 {
        let key = format!("retry-{round}");
        let start = |gens: Gens| {
            let runs = Arc::clone(&runs);
            let key = key.clone();
            async move {
                gens.start(Some(&key), move |sink| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    for i in 0..5 {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        sink.token(&format!("{i}"))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
                .await
                .unwrap()
            }
        };
        let (sa, sb) = tokio::join!(start(a.clone()), start(b.clone()));
        assert_eq!(sa.id, sb.id, "round {round}");
        assert!(
            sa.created ^ sb.created,
            "round {round}: exactly one created"
        );
        // Read on both servers: the same events, whoever produced them.
        let (ea, eb) = tokio::join!(
            async { events(open(&a, &sa.id, Resume::Start).await).await },
            async { events(open(&b, &sa.id, Resume::Start).await).await }
        );
        assert_eq!(ea, eb);
        assert_eq!(ea.len(), 6);
        assert_eq!(ea[5].event_type(), "done");
        // Resume on the other server after the second token.
        let rest = events(open(&b, &sa.id, Resume::AfterId(ea[1].last_event_id())).await).await;
        assert_eq!(rest, ea[2..]);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_the_other_server() {
    let redis = RedisServer::start();
    let (a, b) = (server(&redis).await, server(&redis).await);
    let id = a
        .start(None, |sink| async move {
            for i in 0.. {
                tokio::time::sleep(Duration::from_millis(10)).await;
                sink.token(&format!("{i}"))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
        .await
        .unwrap()
        .id;
    let reader = tokio::spawn({
        let b = b.clone();
        let id = id.clone();
        async move { events(open(&b, &id, Resume::Start).await).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.cancel(&id).await.unwrap();
    let events = reader.await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.event_type(), "cancelled");
    // The producer's task ends right after writing the record.
    tokio::time::timeout(Duration::from_secs(5), async {
        while a.running() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the producer on A stopped");
}
