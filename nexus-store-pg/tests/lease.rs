//! The fenced lease table between "processes" (separate pools and
//! `PgLease`s on one schema): one owner per shard with a clear refusal,
//! growing epochs, renewal, reconnection, a deadline that ends the tenure
//! when the database is unreachable, the shard count as part of the
//! namespace, and many concurrent activations.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::outage::Outage;
use common::{acquire_eventually, expire, fast_timing, other_process};
use nexus_core::codec::{EventCodec, Json};
use nexus_core::lease::{LeaseError, LeaseGuard, OwnershipLease};
use nexus_core::testkit::doc::{Add, Counter};
use nexus_core::{
    ActorSystem, Entities, EntityError, EventStore, ExpectedVersion, NewEvent, StoreError, StreamId,
};
use nexus_store_pg::{LeaseTiming, PgEventStore, PgLease, PgSetupError, PgStoreConfig};
use sqlx::postgres::PgPoolOptions;
use tokio::time::Instant;

async fn fast_lease(config: &PgStoreConfig, shards: u32) -> PgLease {
    PgLease::connect_with(config, shards, fast_timing())
        .await
        .expect("start a lease")
}

/// A stream of another shard than `stream`'s.
fn other_shard(lease: &PgLease, stream: &StreamId) -> StreamId {
    (0..1000)
        .map(|i| StreamId::new(format!("wallet-{i}")))
        .find(|s| lease.shard_of(s) != lease.shard_of(stream))
        .expect("some stream hashes elsewhere")
}

fn event() -> NewEvent {
    NewEvent::new("counter.added", 1, br#"{"n":1}"#.to_vec())
}

#[tokio::test]
async fn one_owner_per_shard_with_a_clear_refusal() {
    let config = common::fresh_config().await;
    let a = fast_lease(&config, 16).await;
    let b = fast_lease(&other_process(&config, "lease-b").await, 16).await;
    let stream = StreamId::new("wallet-alice");

    let first = a.acquire(&stream).await.expect("a takes the lease");
    let second = a.acquire(&stream).await.expect("a holds the shard already");
    assert_eq!(first.fence().epoch(), second.fence().epoch(), "one tenure");
    match b.acquire(&stream).await {
        Err(LeaseError::Held { stream: s, holder }) => {
            assert_eq!(s, stream);
            assert!(holder.contains(a.owner()), "names the holder: {holder}");
            assert!(holder.contains("until"), "names the expiry: {holder}");
        }
        other => panic!("b must be refused, got {other:?}"),
    }
    let elsewhere = other_shard(&a, &stream);
    let _b_owns = b.acquire(&elsewhere).await.expect("b owns another shard");
    assert!(matches!(
        a.acquire(&elsewhere).await,
        Err(LeaseError::Held { .. })
    ));

    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        matches!(b.acquire(&stream).await, Err(LeaseError::Held { .. })),
        "one guard of a is still alive"
    );
    let epoch_a = second.fence().epoch();
    drop(second);
    // Released at once, not after the ttl.
    let taken = acquire_eventually(&b, &stream, Duration::from_millis(500)).await;
    assert!(taken.fence().epoch() > epoch_a);
}

#[tokio::test]
async fn every_acquisition_gets_a_higher_epoch() {
    let config = common::fresh_config().await;
    let a = fast_lease(&config, 8).await;
    let b = fast_lease(&other_process(&config, "lease-b").await, 8).await;
    let stream = StreamId::new("seat-7");
    let mut epochs = Vec::new();
    for lease in [&a, &a, &b, &a, &b, &b] {
        let guard = acquire_eventually(lease, &stream, Duration::from_secs(1)).await;
        epochs.push(guard.fence().epoch());
        drop(guard);
    }
    assert!(
        epochs.windows(2).all(|w| w[0] < w[1]),
        "epochs only grow, a re-acquisition by the same owner too: {epochs:?}"
    );
}

#[tokio::test]
async fn renewal_keeps_a_lease_alive_past_several_ttls() {
    let config = common::fresh_config().await;
    let a = fast_lease(&config, 4).await;
    let b = fast_lease(&other_process(&config, "lease-b").await, 4).await;
    let stream = StreamId::new("wallet-bob");
    let guard = a.acquire(&stream).await.unwrap();
    let first_deadline = guard.fence().tenure().deadline().unwrap();
    let until = Instant::now() + fast_timing().ttl() * 4;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert!(guard.is_current(), "renewed in time");
        assert!(matches!(
            b.acquire(&stream).await,
            Err(LeaseError::Held { .. })
        ));
    }
    assert!(guard.fence().tenure().deadline().unwrap() > first_deadline + fast_timing().ttl());
    let store = PgEventStore::new(&config);
    store
        .append_fenced(
            &stream,
            ExpectedVersion::NoStream,
            &[event()],
            guard.fence(),
        )
        .await
        .expect("a renewed lease still writes");
}

/// Kills every backend whose `application_name` is `name`.
async fn kill_sessions(admin: &sqlx::PgPool, name: &str) -> usize {
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(name)
    .fetch_all(admin)
    .await
    .unwrap();
    killed.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_lease_connection_reconnects_without_a_second_owner() {
    let config = common::fresh_config().await;
    let admin = common::pool("lease-admin", 1).await;
    // A little more room than the fast timing: every kill costs a
    // reconnection, which a loaded test machine may not finish within
    // 300 ms (safety holds either way: see the panic message).
    let timing = LeaseTiming::new(
        Duration::from_secs(3),
        Duration::from_millis(500),
        Duration::from_millis(300),
    )
    .unwrap();
    let a = PgLease::connect_with(&config, 4, timing).await.unwrap();
    let b = fast_lease(&other_process(&config, "lease-b").await, 4).await;
    let stream = StreamId::new("wallet-carol");
    let guard = a.acquire(&stream).await.unwrap();
    let mut killed = 0;
    for _ in 0..4 {
        killed += kill_sessions(&admin, a.owner()).await;
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match b.acquire(&stream).await {
                Err(LeaseError::Held { .. }) => {}
                other => panic!(
                    "a second owner? {other:?} (a's tenure current: {})",
                    guard.is_current()
                ),
            }
        }
    }
    assert!(
        killed >= 4,
        "the lease's connections were killed ({killed})"
    );
    // Past the ttl of the first acquisition (4 s > 3 s): only renewals on
    // new connections keep it.
    assert!(guard.is_current(), "renewals reconnected");
    let store = PgEventStore::new(&config);
    store
        .append_fenced(
            &stream,
            ExpectedVersion::NoStream,
            &[event()],
            guard.fence(),
        )
        .await
        .expect("still the owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_ends_the_tenure_by_its_deadline_then_another_takes_over() {
    let config = common::fresh_config().await;
    let target = config.pool().connect_options();
    let outage = Outage::forward_to(&format!("{}:{}", target.get_host(), target.get_port()))
        .await
        .unwrap();
    let through = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            common::connect_options("lease-through-outage")
                .host("127.0.0.1")
                .port(outage.addr().port()),
        )
        .await
        .unwrap();
    let config_a = PgStoreConfig::new(through)
        .schema(config.schema_name().as_str())
        .unwrap();
    let a = fast_lease(&config_a, 4).await;
    let b = fast_lease(&other_process(&config, "lease-b").await, 4).await;
    let stream = StreamId::new("wallet-dave");
    let guard = a.acquire(&stream).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(guard.is_current());

    outage.cut();
    let cut_at = Instant::now();
    tokio::time::timeout(fast_timing().ttl(), guard.lost())
        .await
        .expect("the tenure ends by its deadline within one ttl");
    assert!(!guard.is_current());
    let lost_after = cut_at.elapsed();
    assert!(
        matches!(b.acquire(&stream).await, Err(LeaseError::Held { .. })),
        "the holder stops before the database lets the lease go"
    );

    let taken = acquire_eventually(&b, &stream, fast_timing().ttl() * 2).await;
    assert!(taken.fence().epoch() > guard.fence().epoch());
    let store = PgEventStore::new(&config);
    let refused = store
        .append_fenced(&stream, ExpectedVersion::Any, &[event()], guard.fence())
        .await;
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "{refused:?}"
    );
    store
        .append_fenced(
            &stream,
            ExpectedVersion::NoStream,
            &[event()],
            taken.fence(),
        )
        .await
        .expect("the new owner writes");
    assert_eq!(store.stream_version(&stream).await.unwrap(), 1);
    eprintln!(
        "tenure lost {lost_after:?} after the cut, taken over {:?} after it",
        cut_at.elapsed()
    );
}

#[tokio::test]
async fn a_different_shard_count_refuses_to_start() {
    let config = common::fresh_config().await;
    let _a = fast_lease(&config, 16).await;
    let other = other_process(&config, "lease-b").await;
    match PgLease::connect_with(&other, 32, fast_timing()).await {
        Err(error @ PgSetupError::ShardCountMismatch { .. }) => {
            let message = error.to_string();
            for part in [
                "16 shards",
                "configured with 32",
                config.schema_name().as_str(),
            ] {
                assert!(message.contains(part), "{message}");
            }
        }
        other => panic!("a second count must be refused, got {other:?}"),
    }
    let _same = fast_lease(&other, 16).await;
    assert!(matches!(
        PgLease::connect(&other, 0).await,
        Err(PgSetupError::InvalidShards { shards: 0 })
    ));
}

#[test]
fn the_timing_inequality_is_checked_at_construction() {
    let ms = Duration::from_millis;
    let error = LeaseTiming::new(ms(1000), ms(400), ms(200)).unwrap_err();
    let message = error.to_string();
    for part in [
        "1s",
        "400ms",
        "200ms",
        "2 × renew_every + max_clock_drift < ttl",
    ] {
        assert!(message.contains(part), "{message}");
    }
    assert!(LeaseTiming::new(ms(1001), ms(400), ms(200)).is_ok());
}

/// Activates the streams `wallet-0` … `wallet-1999` at once through
/// `lease`, returning each guard with its shard and the time taken.
async fn activate_2000(lease: &Arc<PgLease>) -> (Vec<(u32, LeaseGuard)>, Duration) {
    let started = Instant::now();
    let activations: Vec<_> = (0..2000)
        .map(|i| {
            let lease = Arc::clone(lease);
            tokio::spawn(async move {
                let stream = StreamId::new(format!("wallet-{i}"));
                let guard = lease.acquire(&stream).await;
                (lease.shard_of(&stream), guard)
            })
        })
        .collect();
    let mut guards = Vec::with_capacity(2000);
    for activation in activations {
        let (shard, guard) = activation.await.unwrap();
        guards.push((shard, guard.expect("every activation is granted")));
    }
    (guards, started.elapsed())
}

/// Also the measurement of the activation path: run with `--nocapture`
/// to see the times (asserted: correctness only).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_concurrent_activations_succeed() {
    let config = common::fresh_config().await;
    let lease = Arc::new(fast_lease(&config, 64).await);
    let (cold, cold_took) = activate_2000(&lease).await;
    let (warm, warm_took) = activate_2000(&lease).await;
    let mut epochs: HashMap<u32, u64> = HashMap::new();
    for (shard, guard) in cold.iter().chain(&warm) {
        assert!(guard.is_current());
        let epoch = *epochs.entry(*shard).or_insert(guard.fence().epoch());
        assert_eq!(epoch, guard.fence().epoch(), "one acquisition per shard");
    }
    assert_eq!(epochs.len(), 64);
    eprintln!(
        "2000 concurrent activations over 64 shards: cold (64 shards acquired) {cold_took:?}, \
         warm (every shard held) {warm_took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_without_its_lease_answers_not_owner_and_writes_nothing() {
    let config = common::fresh_config().await;
    let other = other_process(&config, "lease-entity-b").await;
    let entities = |config: PgStoreConfig, lease: PgLease| {
        let system = ActorSystem::new();
        let counters = Entities::<Counter>::builder(&system)
            .event_sourced(Arc::new(PgEventStore::new(&config)), EventCodec::new(Json))
            .lease(Arc::new(lease))
            .build()
            .unwrap();
        (system, counters)
    };
    let lease_a = fast_lease(&config, 4).await;
    let lease_b = fast_lease(&other, 4).await;
    let shard = lease_a.shard_of(&StreamId::for_entity("counter", "c1"));
    let (_system_a, a) = entities(config.clone(), lease_a);
    let (_system_b, b) = entities(other, lease_b);

    assert_eq!(a.of("c1").ask(Add(5)).await.unwrap(), 5);
    match b.of("c1").ask(Add(7)).await {
        Err(EntityError::NotOwner { stream, .. }) => assert_eq!(stream.as_str(), "counter-c1"),
        other => panic!("b must answer NotOwner, got {other:?}"),
    }
    let store = PgEventStore::new(&config);
    let stream = StreamId::for_entity("counter", "c1");
    assert_eq!(
        store.stream_version(&stream).await.unwrap(),
        1,
        "the refused command wrote nothing"
    );

    // The owner stops renewing (as if paused): the lease expires, b takes over.
    expire(&config, shard).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let reply = loop {
        match b.of("c1").ask(Add(7)).await {
            Ok(value) => break value,
            Err(EntityError::NotOwner { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    };
    assert_eq!(reply, 12, "b recovered a's event and added to it");
}
