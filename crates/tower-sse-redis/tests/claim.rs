//! `RedisClaimStore` against a real `redis-server`: one winner among concurrent claims from
//! separate connections (separate "servers"), expiry, put/get/remove.

mod common;

use std::time::Duration;

use common::RedisServer;
use tower_sse_core::ClaimStore;
use tower_sse_redis::{RedisClaimStore, RedisLog};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_from_two_servers_have_one_winner() {
    let server = RedisServer::start();
    let a = RedisClaimStore::new(&RedisLog::connect(&server.url()).await.unwrap());
    let b = RedisClaimStore::new(&RedisLog::connect(&server.url()).await.unwrap());
    let ttl = Duration::from_secs(30);
    for round in 0..50 {
        let key = format!("idem/{round}");
        let (ra, rb) = tokio::join!(a.claim(&key, "a", ttl), b.claim(&key, "b", ttl));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        match (ra.as_deref(), rb.as_deref()) {
            (None, Some("a")) | (Some("b"), None) => {}
            other => panic!("round {round}: not exactly one winner: {other:?}"),
        }
        let winner = if ra.is_none() { "a" } else { "b" };
        assert_eq!(b.get(&key).await.unwrap().as_deref(), Some(winner));
    }
}

#[tokio::test]
async fn keys_expire_and_can_be_replaced_and_removed() {
    let server = RedisServer::start();
    let store = RedisClaimStore::new(&RedisLog::connect(&server.url()).await.unwrap());
    assert_eq!(
        store
            .claim("k", "1", Duration::from_millis(200))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.claim("k", "2", Duration::from_secs(5)).await.unwrap(),
        Some("1".to_owned())
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get("k").await.unwrap(), None);
    assert_eq!(
        store.claim("k", "2", Duration::from_secs(5)).await.unwrap(),
        None
    );
    store.put("k", "3", Duration::from_secs(5)).await.unwrap();
    assert_eq!(store.get("k").await.unwrap().as_deref(), Some("3"));
    store.remove("k").await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), None);
    store.remove("k").await.unwrap();
}
