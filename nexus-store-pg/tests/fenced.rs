//! Fenced writes against the lease table: a writer whose lease was taken
//! over stores nothing, for events, snapshots and states, even when its
//! own view of the tenure is still current; a current fence writes as the
//! plain methods do (conflicts and idempotent retries included).

mod common;

use std::num::NonZeroUsize;
use std::time::{Duration, SystemTime};

use common::{acquire_eventually, expire, fast_timing, other_process};
use nexus_core::lease::{Fence, LeaseGuard, OwnershipLease, Tenure};
use nexus_core::store::{Snapshot, SnapshotStore, StateStore};
use nexus_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
use nexus_store_pg::{PgEventStore, PgLease, PgSnapshotStore, PgStateStore, PgStoreConfig};

/// Two "processes" on one schema; `stream` is leased by `a`, then `a`'s
/// lease expires at the database (as if `a` were paused) and `b` takes the
/// shard over. Returns the configs, both guards and an unrevoked fence of
/// `a`'s epoch (a paused process that has not yet noticed).
struct Takeover {
    config: PgStoreConfig,
    stale: LeaseGuard,
    unrevoked: Fence,
    current: LeaseGuard,
    _leases: (PgLease, PgLease),
}

async fn takeover(stream: &StreamId) -> Takeover {
    let config = common::fresh_config().await;
    let a = PgLease::connect_with(&config, 8, fast_timing())
        .await
        .unwrap();
    let b = PgLease::connect_with(&other_process(&config, "fenced-b").await, 8, fast_timing())
        .await
        .unwrap();
    let stale = a.acquire(stream).await.unwrap();
    let unrevoked = Fence::new(Tenure::unbounded(
        stale.fence().shard(),
        stale.fence().epoch(),
    ));
    expire(&config, a.shard_of(stream)).await;
    let current = acquire_eventually(&b, stream, Duration::from_secs(1)).await;
    assert!(current.fence().epoch() > stale.fence().epoch());
    assert!(unrevoked.is_current(), "its holder has not noticed");
    Takeover {
        config,
        stale,
        unrevoked,
        current,
        _leases: (a, b),
    }
}

fn event(n: u8) -> NewEvent {
    NewEvent::new("counter.added", 1, vec![n])
}

fn is_fenced(result: &Result<impl std::fmt::Debug, StoreError>, fence: &Fence) -> bool {
    matches!(result, Err(StoreError::Fenced { shard, epoch, .. })
        if *shard == fence.shard() && *epoch == fence.epoch())
}

#[tokio::test]
async fn a_stale_fence_appends_nothing() {
    let stream = StreamId::new("counter-1");
    let t = takeover(&stream).await;
    let store = PgEventStore::new(&t.config);
    for fence in [t.stale.fence(), &t.unrevoked] {
        for expected in [ExpectedVersion::NoStream, ExpectedVersion::Any] {
            let refused = store
                .append_fenced(&stream, expected, &[event(1), event(2)], fence)
                .await;
            assert!(is_fenced(&refused, fence), "{refused:?}");
        }
        let empty = store
            .append_fenced(&stream, ExpectedVersion::Any, &[], fence)
            .await;
        assert!(is_fenced(&empty, fence), "an empty batch: {empty:?}");
    }
    assert_eq!(store.stream_version(&stream).await.unwrap(), 0);
    let out = store
        .append_fenced(
            &stream,
            ExpectedVersion::NoStream,
            &[event(3)],
            t.current.fence(),
        )
        .await
        .unwrap();
    assert_eq!(out.version, 1);
}

#[tokio::test]
async fn a_stale_fence_saves_and_prunes_no_snapshot() {
    let stream = StreamId::new("counter-2");
    let t = takeover(&stream).await;
    let store = PgSnapshotStore::new(&t.config);
    let snapshot = |version| Snapshot {
        stream_id: stream.clone(),
        version,
        payload: vec![1],
        taken_at: SystemTime::now(),
    };
    let keep_one = NonZeroUsize::new(1);
    store
        .save_fenced(snapshot(3), None, t.current.fence())
        .await
        .unwrap();
    for fence in [t.stale.fence(), &t.unrevoked] {
        let refused = store.save_fenced(snapshot(5), keep_one, fence).await;
        assert!(is_fenced(&refused, fence), "{refused:?}");
    }
    assert_eq!(
        store.versions(&stream).await.unwrap(),
        vec![3],
        "nothing pruned"
    );
    store
        .save_fenced(snapshot(5), keep_one, t.current.fence())
        .await
        .unwrap();
    assert_eq!(store.versions(&stream).await.unwrap(), vec![5]);
}

#[tokio::test]
async fn a_stale_fence_writes_no_state() {
    let stream = StreamId::new("counter-3");
    let t = takeover(&stream).await;
    let store = PgStateStore::new(&t.config);
    for fence in [t.stale.fence(), &t.unrevoked] {
        let refused = store
            .save_fenced(&stream, ExpectedVersion::NoStream, vec![1], fence)
            .await;
        assert!(is_fenced(&refused, fence), "insert: {refused:?}");
        let refused = store
            .save_fenced(&stream, ExpectedVersion::Any, vec![1], fence)
            .await;
        assert!(is_fenced(&refused, fence), "upsert: {refused:?}");
    }
    assert_eq!(store.version(&stream).await.unwrap(), 0);
    let v1 = store
        .save_fenced(
            &stream,
            ExpectedVersion::NoStream,
            vec![2],
            t.current.fence(),
        )
        .await
        .unwrap();
    assert_eq!(v1, 1);
    for fence in [t.stale.fence(), &t.unrevoked] {
        let refused = store
            .save_fenced(&stream, ExpectedVersion::Exact(1), vec![3], fence)
            .await;
        assert!(is_fenced(&refused, fence), "update: {refused:?}");
    }
    let row = store.load(&stream).await.unwrap().unwrap();
    assert_eq!((row.version, row.payload), (1, vec![2]));
    assert_eq!(store.version(&stream).await.unwrap(), 1);
}

#[tokio::test]
async fn a_fence_its_holder_ended_writes_nothing_while_the_database_still_has_it() {
    let config = common::fresh_config().await;
    let lease = PgLease::connect_with(&config, 8, fast_timing())
        .await
        .unwrap();
    let stream = StreamId::new("counter-6");
    let guard = lease.acquire(&stream).await.unwrap();
    let ended = Tenure::unbounded(guard.fence().shard(), guard.fence().epoch());
    ended.revoke();
    let ended = Fence::new(ended);
    let events = PgEventStore::new(&config);
    let refused = events
        .append_fenced(&stream, ExpectedVersion::NoStream, &[event(1)], &ended)
        .await;
    assert!(is_fenced(&refused, &ended), "{refused:?}");
    let refused = PgStateStore::new(&config)
        .save_fenced(&stream, ExpectedVersion::Any, vec![1], &ended)
        .await;
    assert!(is_fenced(&refused, &ended), "{refused:?}");
    let snapshot = Snapshot {
        stream_id: stream.clone(),
        version: 1,
        payload: vec![1],
        taken_at: SystemTime::now(),
    };
    let refused = PgSnapshotStore::new(&config)
        .save_fenced(snapshot, None, &ended)
        .await;
    assert!(is_fenced(&refused, &ended), "{refused:?}");
    assert_eq!(events.stream_version(&stream).await.unwrap(), 0);
    events
        .append_fenced(
            &stream,
            ExpectedVersion::NoStream,
            &[event(1)],
            guard.fence(),
        )
        .await
        .expect("the holder's own fence is current");
}

#[tokio::test]
async fn a_current_fence_writes_like_the_plain_methods() {
    let config = common::fresh_config().await;
    let lease = PgLease::connect_with(&config, 8, fast_timing())
        .await
        .unwrap();
    let stream = StreamId::new("counter-4");
    let guard = lease.acquire(&stream).await.unwrap();
    let fence = guard.fence();
    let events = PgEventStore::new(&config);

    let batch = vec![event(1), event(2)];
    let first = events
        .append_fenced(&stream, ExpectedVersion::NoStream, &batch, fence)
        .await
        .unwrap();
    assert_eq!(first.version, 2);
    let retried = events
        .append_fenced(&stream, ExpectedVersion::NoStream, &batch, fence)
        .await
        .unwrap();
    assert_eq!(
        retried, first,
        "an idempotent retry answers the original outcome"
    );
    let conflict = events
        .append_fenced(&stream, ExpectedVersion::Exact(1), &[event(3)], fence)
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict { actual: 2, .. })),
        "a stale version under a current fence is a conflict: {conflict:?}"
    );
    let empty = events
        .append_fenced(&stream, ExpectedVersion::Exact(2), &[], fence)
        .await
        .unwrap();
    assert_eq!(empty.version, 2);
    let any = events
        .append_fenced(&stream, ExpectedVersion::Any, &[event(4)], fence)
        .await
        .unwrap();
    assert_eq!(any.version, 3);

    let states = PgStateStore::new(&config);
    let conflict = states
        .save_fenced(&stream, ExpectedVersion::Exact(4), vec![1], fence)
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict { actual: 0, .. })),
        "{conflict:?}"
    );
    assert_eq!(
        states
            .save_fenced(&stream, ExpectedVersion::Any, vec![1], fence)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        states
            .save_fenced(&stream, ExpectedVersion::Exact(1), vec![2], fence)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        states
            .save_fenced(&stream, ExpectedVersion::Any, vec![3], fence)
            .await
            .unwrap(),
        3
    );
}

#[tokio::test]
async fn a_takeover_waits_for_an_in_flight_fenced_write_and_a_renewal_does_not() {
    let config = common::fresh_config().await;
    let a = PgLease::connect_with(&config, 8, fast_timing())
        .await
        .unwrap();
    // Default timing: its acquisition may wait longer than a fast one.
    let b = PgLease::connect(&other_process(&config, "fenced-b").await, 8)
        .await
        .unwrap();
    let stream = StreamId::new("counter-5");
    let guard = a.acquire(&stream).await.unwrap();
    let shard = i32::try_from(guard.fence().shard()).unwrap();
    let epoch = i64::try_from(guard.fence().epoch()).unwrap();

    // What a fenced write holds until it commits.
    let mut in_flight = config.pool().begin().await.unwrap();
    let locked: Option<i32> = sqlx::query_scalar(&format!(
        "SELECT shard FROM {}.leases WHERE shard = $1 AND epoch = $2 FOR KEY SHARE",
        config.schema_name()
    ))
    .bind(shard)
    .bind(epoch)
    .fetch_optional(&mut *in_flight)
    .await
    .unwrap();
    assert_eq!(locked, Some(shard));

    // Renewals go on (a's tenure stays current past its first deadline).
    tokio::time::sleep(fast_timing().ttl()).await;
    assert!(guard.is_current(), "renewed despite the in-flight write");

    expire(&config, guard.fence().shard()).await;
    let takeover = tokio::spawn(async move { b.acquire(&stream).await.map(|g| (g, b)) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!takeover.is_finished(), "the takeover waits for the write");
    in_flight.commit().await.unwrap();
    let (taken, _b) = tokio::time::timeout(Duration::from_secs(2), takeover)
        .await
        .unwrap()
        .unwrap()
        .expect("taken once the write committed");
    assert!(taken.fence().epoch() > guard.fence().epoch());
}
