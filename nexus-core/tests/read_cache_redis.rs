//! The Redis read cache against a real Redis (`REDIS_URL`, default
//! 127.0.0.1:6379; `scripts/test` starts a throwaway one), a key prefix per
//! test: version-guarded writes, write-through after the save, reads that
//! never go back in time across clients, and the store answering when Redis
//! is down.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::cache::{CachedReads, ReadCache, ReadFrom, RedisCache, WriteThrough};
use nexus_core::store::memory::InMemoryStateStore;
use nexus_core::store::{StateStore, StoredState};
use nexus_core::{ExpectedVersion, StreamId};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

fn prefix() -> String {
    format!("nexus-test:{}:", uuid::Uuid::new_v4().simple())
}

async fn cache(prefix: &str) -> Arc<RedisCache> {
    Arc::new(
        RedisCache::connect(&redis_url(), prefix)
            .await
            .expect("a Redis at REDIS_URL (scripts/test starts one)"),
    )
}

fn state(version: u64) -> StoredState {
    StoredState {
        version,
        payload: version.to_string().into_bytes(),
    }
}

#[tokio::test]
async fn an_older_version_never_replaces_a_newer_one() {
    let cache = cache(&prefix()).await;
    let id = StreamId::new("ledger-alice");
    assert!(cache.put_if_newer(&id, &state(2)).await.unwrap());
    assert!(!cache.put_if_newer(&id, &state(1)).await.unwrap());
    assert!(!cache.put_if_newer(&id, &state(2)).await.unwrap());
    assert_eq!(cache.get(&id).await.unwrap(), Some(state(2)));
    assert!(cache.put_if_newer(&id, &state(3)).await.unwrap());
    assert_eq!(cache.get(&id).await.unwrap(), Some(state(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_through_two_clients_never_go_back_in_time() {
    let prefix = prefix();
    let store = WriteThrough::new(InMemoryStateStore::new(), cache(&prefix).await);
    // A second process: its own connection, the same keys.
    let other = cache(&prefix).await;
    let id = StreamId::new("ledger-bob");
    let reader = {
        let other = Arc::clone(&other);
        let id = id.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            for _ in 0..400 {
                if let Some(s) = other.get(&id).await.unwrap() {
                    assert!(s.version >= seen, "went back from {seen} to {}", s.version);
                    seen = s.version;
                }
            }
            seen
        })
    };
    // Racing late write-throughs of old versions, as a slow process would send.
    let racer = {
        let other = Arc::clone(&other);
        let id = id.clone();
        tokio::spawn(async move {
            for v in 1..=50 {
                let _ = other.put_if_newer(&id, &state(v)).await.unwrap();
            }
        })
    };
    let mut expected = ExpectedVersion::NoStream;
    for v in 1..=100_u64 {
        let saved = store.save(&id, expected, state(v).payload).await.unwrap();
        assert_eq!(saved, v);
        expected = ExpectedVersion::Exact(v);
    }
    racer.await.unwrap();
    reader.await.unwrap();
    let (read, from) = store.reads().load(&id).await.unwrap();
    assert_eq!((read, from), (Some(state(100)), ReadFrom::Cache));
}

#[tokio::test]
async fn with_redis_down_reads_fall_back_and_writes_succeed() {
    // Nothing listens there: every cache call fails fast.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("redis://{}", listener.local_addr().unwrap());
    drop(listener);
    let down = RedisCache::connect_with(&dead, &prefix(), Duration::from_millis(200)).await;
    // The manager may refuse to start without a server; then a cache that
    // loses its server later is the case to check, below.
    let prefix = prefix();
    let up = cache(&prefix).await;
    let store = WriteThrough::new(InMemoryStateStore::new(), Arc::clone(&up));
    let id = StreamId::new("ledger-carol");
    store
        .save(&id, ExpectedVersion::NoStream, b"1".to_vec())
        .await
        .unwrap();
    assert_eq!(store.reads().load(&id).await.unwrap().1, ReadFrom::Cache);
    if let Ok(down) = down {
        let store = WriteThrough::new(InMemoryStateStore::new(), Arc::new(down));
        let saved = store
            .save(&id, ExpectedVersion::NoStream, b"1".to_vec())
            .await;
        assert_eq!(saved.unwrap(), 1, "a cache outage never fails a write");
        let reads: CachedReads<InMemoryStateStore> = store.reads();
        let (read, from) = reads.load(&id).await.unwrap();
        assert_eq!((read.unwrap().version, from), (1, ReadFrom::Store));
        assert!(reads.outages() >= 2, "outages are counted");
    } else {
        panic!("connect_with must hand back a cache even when Redis is down");
    }
    let _ = store.version(&id).await.unwrap();
}
