//! The advisory-lock lease between "processes" (separate pools and lease
//! sessions on one schema): one owner per shard, a clear refusal for the
//! other, and takeover once the owner's connection dies.

mod common;

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::lease::{LeaseError, OwnershipLease};
use nexus_core::testkit::doc::{Add, Counter};
use nexus_core::{ActorSystem, Entities, EntityError, StreamId};
use nexus_store_pg::{PgEventStore, PgLease, PgStoreConfig};
use sqlx::PgPool;

/// A second "process" on the same schema as `config`.
async fn process(config: &PgStoreConfig, name: &str) -> PgStoreConfig {
    PgStoreConfig::new(common::pool(name, 4).await)
        .schema(config.schema_name().as_str())
        .unwrap()
}

/// Kills the sessions of `owner` (its pool's application name) holding the
/// advisory lock of `lease`'s shard of `stream`, as the death of the owning
/// process would.
async fn kill_holder(
    admin: &PgPool,
    owner: &PgStoreConfig,
    lease: &PgLease,
    stream: &StreamId,
) -> usize {
    let shard = i32::try_from(lease.shard_of(stream)).unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.objid = $1::int4::oid AND a.application_name = $2",
    )
    .bind(shard)
    .bind(owner.schema_name().as_str())
    .fetch_all(admin)
    .await
    .unwrap();
    killed.len()
}

/// Tries `lease` until it is granted, for at most two seconds.
async fn acquire_eventually(lease: &PgLease, stream: &StreamId) -> nexus_core::lease::LeaseGuard {
    for _ in 0..200 {
        match lease.acquire(stream).await {
            Ok(guard) => return guard,
            Err(LeaseError::Held { .. } | LeaseError::Backend { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("unexpected lease error: {other:?}"),
        }
    }
    panic!("the lease of {stream} was never granted");
}

#[tokio::test]
async fn one_owner_per_shard_until_released() {
    let config = common::fresh_config().await;
    let a = PgLease::connect(&config, 16).await.unwrap();
    let b = PgLease::connect(&process(&config, "lease-b").await, 16)
        .await
        .unwrap();
    let stream = StreamId::new("wallet-alice");

    let first = a.acquire(&stream).await.expect("a takes the lease");
    let second = a.acquire(&stream).await.expect("a holds the shard already");
    match b.acquire(&stream).await {
        Err(LeaseError::Held { stream: s, holder }) => {
            assert_eq!(s, stream);
            assert!(holder.contains("backend"), "names the holder: {holder}");
        }
        other => panic!("b must be refused, got {other:?}"),
    }
    let other_shard = (0..100)
        .map(|i| StreamId::new(format!("wallet-{i}")))
        .find(|s| a.shard_of(s) != a.shard_of(&stream))
        .unwrap();
    let _b_owns = b.acquire(&other_shard).await.expect("b owns another shard");
    assert!(a.acquire(&other_shard).await.is_err());

    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        b.acquire(&stream).await.is_err(),
        "one guard of a is still alive"
    );
    drop(second);
    let _taken = acquire_eventually(&b, &stream).await;
}

#[tokio::test]
async fn a_dead_owner_is_taken_over_and_learns_it_lost_the_lease() {
    let config = common::fresh_config().await;
    let admin = common::pool("lease-admin", 1).await;
    let a = PgLease::connect(&config, 8).await.unwrap();
    let b = PgLease::connect(&process(&config, "lease-b").await, 8)
        .await
        .unwrap();
    let stream = StreamId::new("seat-42");

    let _held_by_a = a.acquire(&stream).await.unwrap();
    assert!(b.acquire(&stream).await.is_err());
    assert_eq!(kill_holder(&admin, &config, &a, &stream).await, 1);
    let _held_by_b = acquire_eventually(&b, &stream).await;
    assert!(
        matches!(a.acquire(&stream).await, Err(LeaseError::Held { .. })),
        "a reconnects and finds b holding the shard"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_without_its_lease_answers_not_owner_and_writes_nothing() {
    let config = common::fresh_config().await;
    let admin = common::pool("lease-admin", 1).await;
    let other = process(&config, "lease-entity-b").await;
    let entities = |config: PgStoreConfig, lease: PgLease| {
        let system = ActorSystem::new();
        let counters = Entities::<Counter>::builder(&system)
            .event_sourced(Arc::new(PgEventStore::new(&config)), EventCodec::new(Json))
            .lease(Arc::new(lease))
            .build()
            .unwrap();
        (system, counters)
    };
    let lease_a = PgLease::connect(&config, 4).await.unwrap();
    let lease_b = PgLease::connect(&other, 4).await.unwrap();
    let (_system_a, a) = entities(config.clone(), lease_a.clone());
    let (_system_b, b) = entities(other, lease_b);

    assert_eq!(a.of("c1").ask(Add(5)).await.unwrap(), 5);
    match b.of("c1").ask(Add(7)).await {
        Err(EntityError::NotOwner { stream, .. }) => assert_eq!(stream.as_str(), "counter-c1"),
        other => panic!("b must answer NotOwner, got {other:?}"),
    }
    let store = PgEventStore::new(&config);
    let stream = StreamId::for_entity("counter", "c1");
    assert_eq!(
        nexus_core::EventStore::stream_version(&store, &stream)
            .await
            .unwrap(),
        1,
        "the refused command wrote nothing"
    );

    // The owner dies: its lease session is gone, and b takes over.
    assert_eq!(kill_holder(&admin, &config, &lease_a, &stream).await, 1);
    let mut reply = None;
    for _ in 0..200 {
        match b.of("c1").ask(Add(7)).await {
            Ok(value) => {
                reply = Some(value);
                break;
            }
            Err(EntityError::NotOwner { .. }) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!(reply, Some(12), "b recovered a's event and added to it");
}
