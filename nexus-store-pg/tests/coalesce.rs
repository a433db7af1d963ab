//! Coalesced appends (`AppendCoalescing`): concurrent appends of different
//! streams share one statement and transaction, and each caller is still
//! told exactly what an append alone would tell it.
//!
//! A group is formed on purpose: the store runs one coalescing statement at
//! a time, the first append waits on a head row another transaction holds
//! (the gate), and the appends sent meanwhile queue up and go out together
//! once the gate opens.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use nexus_core::lease::{Fence, OwnershipLease, Tenure};
use nexus_core::{AppendOutcome, EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
use nexus_store_pg::{AppendCoalescing, PgEventStore, PgLease, PgStoreConfig};
use sqlx::{Connection, PgConnection};
use tokio::task::JoinSet;

fn event() -> NewEvent {
    NewEvent::new("test.happened", 1, b"x".to_vec())
}

fn events(n: usize) -> Vec<NewEvent> {
    (0..n).map(|_| event()).collect()
}

/// A store that runs one coalescing statement at a time.
async fn one_statement_at_a_time() -> (PgStoreConfig, PgEventStore) {
    let config = common::fresh_config()
        .await
        .coalesce_appends(AppendCoalescing::new().in_flight(1));
    let store = PgEventStore::new(&config);
    (config, store)
}

/// The same on a pool of its own: `pool`'s options, connecting with
/// `connect` applied to the test database's options.
async fn one_statement_at_a_time_on(
    pool: sqlx::postgres::PgPoolOptions,
    connect: impl FnOnce(sqlx::postgres::PgConnectOptions) -> sqlx::postgres::PgConnectOptions,
) -> (PgStoreConfig, PgEventStore) {
    let migrated = common::fresh_config().await;
    let schema = migrated.schema_name().as_str();
    let pool = pool
        .connect_with(connect(common::connect_options(schema)))
        .await
        .unwrap();
    let config = PgStoreConfig::new(pool)
        .schema(schema)
        .unwrap()
        .coalesce_appends(AppendCoalescing::new().in_flight(1));
    let store = PgEventStore::new(&config);
    (config, store)
}

/// Holds a new stream's head row in an open transaction: an append of that
/// stream waits on it until [`Gate::open`].
struct Gate {
    conn: PgConnection,
    stream: StreamId,
}

impl Gate {
    async fn hold(config: &PgStoreConfig, stream: &str) -> Self {
        let mut conn = PgConnection::connect_with(&common::connect_options("gate"))
            .await
            .unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query(&format!(
            "INSERT INTO \"{}\".streams (stream_id, aggregate_type, version) VALUES ($1, 'gate', 1)",
            config.schema_name()
        ))
        .bind(stream)
        .execute(&mut conn)
        .await
        .unwrap();
        Self {
            conn,
            stream: StreamId::new(stream),
        }
    }

    /// Rolls the held row back: the waiting append goes on, creating it.
    async fn open(mut self) {
        sqlx::query("ROLLBACK")
            .execute(&mut self.conn)
            .await
            .unwrap();
    }
}

/// The pids of the store's backends that wait on a lock, once there are
/// `n` of them.
async fn waiting_on_locks(config: &PgStoreConfig, n: usize) -> Vec<i32> {
    let probe = common::pool("probe", 1).await;
    for _ in 0..2_000 {
        let pids: Vec<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
        )
        .bind(config.schema_name().as_str())
        .fetch_all(&probe)
        .await
        .unwrap();
        if pids.len() >= n {
            return pids;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no append of the store waits on the gate");
}

/// Sends the gate's append first and waits until its statement waits on
/// the gate, so the appends sent next queue up behind it.
async fn start_gated(
    config: &PgStoreConfig,
    store: &PgEventStore,
    gate: &Gate,
) -> tokio::task::JoinHandle<Result<AppendOutcome, StoreError>> {
    let gated = tokio::spawn({
        let store = store.clone();
        let stream = gate.stream.clone();
        async move {
            store
                .append(&stream, ExpectedVersion::NoStream, &[event()])
                .await
        }
    });
    waiting_on_locks(config, 1).await;
    gated
}

/// How many transactions wrote the events of `streams`.
async fn transactions_of(config: &PgStoreConfig, streams: &[&str]) -> i64 {
    sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT tx_id) FROM \"{}\".events WHERE stream_id = ANY($1)",
        config.schema_name()
    ))
    .bind(streams)
    .fetch_one(config.pool())
    .await
    .unwrap()
}

async fn versions_of(store: &PgEventStore, stream: &str) -> Vec<u64> {
    store
        .read_stream(&StreamId::new(stream), 0)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_transaction_writes_a_group_and_each_stream_keeps_its_own_version_check() {
    let (config, store) = one_statement_at_a_time().await;
    for (stream, n) in [("exact-1", 1), ("stale-1", 2), ("archived-1", 1)] {
        store
            .append(
                &StreamId::new(stream),
                ExpectedVersion::NoStream,
                &events(n),
            )
            .await
            .unwrap();
    }
    store
        .archive_stream(&StreamId::new("archived-1"))
        .await
        .unwrap();
    let gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &gate).await;

    let append = |stream: &'static str, expected, n| {
        let store = store.clone();
        async move {
            store
                .append(&StreamId::new(stream), expected, &events(n))
                .await
        }
    };
    let (new, exact, stale, any, existing, archived, ()) = tokio::join!(
        append("new-1", ExpectedVersion::NoStream, 2),
        append("exact-1", ExpectedVersion::Exact(1), 3),
        append("stale-1", ExpectedVersion::Exact(5), 1),
        append("any-1", ExpectedVersion::Any, 1),
        append("exact-1", ExpectedVersion::NoStream, 1),
        append("archived-1", ExpectedVersion::Any, 1),
        async {
            // Every append above is queued by its first poll, before this.
            tokio::time::sleep(Duration::from_millis(50)).await;
            gate.open().await;
        },
    );
    assert_eq!(gated.await.unwrap().unwrap().version, 1);

    assert_eq!(new.unwrap().version, 2);
    let exact = exact.unwrap();
    assert_eq!(exact.version, 4);
    assert_eq!(exact.positions.len(), 3);
    assert!(exact.positions.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(any.unwrap().version, 1);
    match stale {
        Err(StoreError::Conflict { actual: 2, .. }) => {}
        other => panic!("a stale version is a conflict naming the head, got {other:?}"),
    }
    // The second append of exact-1 waited for the group that held the
    // stream, then met the version that group wrote.
    match existing {
        Err(StoreError::Conflict { actual: 4, .. }) => {}
        other => panic!("no stream for an existing stream is a conflict, got {other:?}"),
    }
    assert!(
        matches!(archived, Err(StoreError::StreamArchived { .. })),
        "got {archived:?}"
    );
    assert_eq!(
        transactions_of(&config, &["new-1", "any-1"]).await,
        1,
        "the group's streams were written by one transaction"
    );
    assert_eq!(versions_of(&store, "new-1").await, [1, 2]);
    assert_eq!(versions_of(&store, "exact-1").await, [1, 2, 3, 4]);
    assert_eq!(versions_of(&store, "stale-1").await, [1, 2]);
    let archived = store
        .stream_head(&StreamId::new("archived-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((archived.version, archived.archived), (1, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_batch_in_a_group_fails_only_its_own_append() {
    let (config, store) = one_statement_at_a_time().await;
    let stored = event();
    let reused = stored.metadata.event_id;
    store
        .append(
            &StreamId::new("holder-1"),
            ExpectedVersion::NoStream,
            &[stored],
        )
        .await
        .unwrap();
    let gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &gate).await;

    let append = |stream: &'static str, events: Vec<NewEvent>| {
        let store = store.clone();
        async move {
            store
                .append(&StreamId::new(stream), ExpectedVersion::Any, &events)
                .await
        }
    };
    // Postgres refuses a text with a NUL byte (SQLSTATE 22021) and a reused
    // event id (23505): each fails the whole statement.
    let nul = NewEvent::new("test.\0happened", 1, b"x".to_vec());
    let mut reusing = event();
    reusing.metadata.event_id = reused;
    let (good, bad_type, bad_id, also_good, ()) = tokio::join!(
        append("good-1", events(2)),
        append("nul-1", vec![nul]),
        append("reuse-1", vec![event(), reusing]),
        append("good-2", events(1)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            gate.open().await;
        },
    );
    gated.await.unwrap().unwrap();

    assert_eq!(good.unwrap().version, 2);
    assert_eq!(also_good.unwrap().version, 1);
    let bad_type = bad_type.expect_err("a text with a NUL byte cannot be stored");
    assert!(
        matches!(bad_type, StoreError::Backend { .. }) && bad_type.to_string().contains("22021"),
        "a backend error naming its SQLSTATE, got {bad_type}"
    );
    match bad_id {
        Err(StoreError::DuplicateEventId { stream, event_id }) => {
            assert_eq!((stream.as_str(), event_id), ("holder-1", reused));
        }
        other => panic!("a reused id names where it is stored, got {other:?}"),
    }
    assert_eq!(versions_of(&store, "good-1").await, [1, 2]);
    assert_eq!(versions_of(&store, "good-2").await, [1]);
    assert!(versions_of(&store, "nul-1").await.is_empty());
    assert!(versions_of(&store, "reuse-1").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_cut_off_mid_statement_is_ambiguous_for_each_append_and_stored_all_or_nothing() {
    let (config, store) = one_statement_at_a_time().await;
    let first_gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &first_gate).await;
    // The group itself waits on a second gate, so its statement is in
    // flight when its backend is killed.
    let second_gate = Gate::hold(&config, "gate-2").await;

    let batches: Vec<(StreamId, Vec<NewEvent>)> = ["a-1", "b-1", "c-1"]
        .into_iter()
        .map(|s| (StreamId::new(s), events(2)))
        .chain([(second_gate.stream.clone(), events(1))])
        .collect();
    let mut group = JoinSet::new();
    for (stream, events) in batches.clone() {
        let store = store.clone();
        group.spawn(async move {
            let outcome = store
                .append(&stream, ExpectedVersion::NoStream, &events)
                .await;
            (stream, outcome)
        });
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    first_gate.open().await;
    gated.await.unwrap().unwrap();
    let pids = waiting_on_locks(&config, 1).await;
    let probe = common::pool("killer", 1).await;
    for pid in pids {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&probe)
            .await
            .unwrap();
    }
    let mut told = HashMap::new();
    while let Some(result) = group.join_next().await {
        let (stream, outcome) = result.unwrap();
        told.insert(stream.to_string(), outcome);
    }
    for (stream, outcome) in &told {
        assert!(
            matches!(outcome, Err(StoreError::Ambiguous { .. })),
            "{stream}: a statement cut off after it was sent has an unknown outcome, got {outcome:?}"
        );
    }
    second_gate.open().await;

    // All or nothing: the cut statement rolled back as a whole, and the
    // callers' retries (the same batches) store each once.
    for stream in ["a-1", "b-1", "c-1", "gate-2"] {
        assert!(versions_of(&store, stream).await.is_empty(), "{stream}");
    }
    for (stream, events) in batches {
        let out = store
            .append(&stream, ExpectedVersion::NoStream, &events)
            .await
            .unwrap();
        let again = store
            .append(&stream, ExpectedVersion::NoStream, &events)
            .await
            .expect("a retry of a stored batch gets its outcome");
        assert_eq!(out, again);
    }
    assert_eq!(versions_of(&store, "a-1").await, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_in_a_group_gets_its_original_outcome() {
    let (config, store) = one_statement_at_a_time().await;
    let batch = events(2);
    let original = store
        .append(
            &StreamId::new("retried-1"),
            ExpectedVersion::NoStream,
            &batch,
        )
        .await
        .unwrap();
    let gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &gate).await;
    let (retried, other, third) = (
        StreamId::new("retried-1"),
        StreamId::new("other-1"),
        StreamId::new("other-2"),
    );
    let (for_other, for_third) = (events(1), events(1));
    let (retry, other, third, ()) = tokio::join!(
        store.append(&retried, ExpectedVersion::NoStream, &batch),
        store.append(&other, ExpectedVersion::NoStream, &for_other),
        store.append(&third, ExpectedVersion::NoStream, &for_third),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            gate.open().await;
        },
    );
    gated.await.unwrap().unwrap();
    assert_eq!(retry.unwrap(), original);
    assert_eq!(other.unwrap().version, 1);
    assert_eq!(third.unwrap().version, 1);
    assert_eq!(
        transactions_of(&config, &["other-1", "other-2"]).await,
        1,
        "the retry was in a group that stored the others"
    );
    assert_eq!(versions_of(&store, "retried-1").await, [1, 2]);
}

/// Writers that own their stream (as entities do) append with `Exact`,
/// others share streams with `Any`, all through the default coalescing, at
/// random moments: every acknowledged batch is stored once, at the versions
/// it was told, with no gap, and groups did form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_through_the_coalescer_lose_nothing_and_share_transactions() {
    const OWNERS: usize = 48;
    const SHARED: usize = 4;
    const APPENDS: usize = 25;
    let config = common::fresh_config().await;
    let store = Arc::new(PgEventStore::new(&config));
    let mut writers = JoinSet::new();
    for owner in 0..OWNERS {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            let stream = StreamId::new(format!("owned-{owner}"));
            let mut version = 0;
            let mut told = Vec::new();
            for _ in 0..APPENDS {
                let n = fastrand::usize(1..=3);
                let out = store
                    .append(&stream, ExpectedVersion::Exact(version), &events(n))
                    .await
                    .expect("the only writer of its stream never conflicts");
                assert_eq!(out.version, version + n as u64);
                version = out.version;
                told.push(out.version);
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..500))).await;
            }
            (stream, told)
        });
    }
    for writer in 0..OWNERS {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            let stream = StreamId::new(format!("shared-{}", writer % SHARED));
            let mut told = Vec::new();
            for _ in 0..APPENDS / 5 {
                let out = store
                    .append(&stream, ExpectedVersion::Any, &events(1))
                    .await
                    .expect("any never conflicts");
                told.push(out.version);
                tokio::time::sleep(Duration::from_micros(fastrand::u64(0..2_000))).await;
            }
            (stream, told)
        });
    }
    let mut acknowledged: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(result) = writers.join_next().await {
            let (stream, told) = result.unwrap();
            acknowledged
                .entry(stream.to_string())
                .or_default()
                .extend(told);
        }
    })
    .await;
    assert!(outcome.is_ok(), "the writers finished within a minute");

    for (stream, mut told) in acknowledged {
        let stored = versions_of(&store, &stream).await;
        let head = *stored.last().unwrap();
        assert_eq!(stored, (1..=head).collect::<Vec<_>>(), "{stream}: no gap");
        told.sort_unstable();
        let mut unique = told.clone();
        unique.dedup();
        assert_eq!(unique, told, "{stream}: no version told twice");
        assert_eq!(
            told.last(),
            Some(&head),
            "{stream}: the last append made the head"
        );
        if stream.starts_with("shared") {
            assert_eq!(
                told.len() as u64,
                head,
                "{stream}: every Any append stored once"
            );
        }
    }
    let appends = i64::try_from(OWNERS * APPENDS + OWNERS * (APPENDS / 5)).unwrap();
    let transactions: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT tx_id) FROM \"{}\".events",
        config.schema_name()
    ))
    .fetch_one(config.pool())
    .await
    .unwrap();
    assert!(
        transactions < appends,
        "concurrent appends shared transactions ({transactions} for {appends} appends)"
    );
}

#[tokio::test]
async fn without_coalescing_every_append_is_its_own_transaction() {
    let config = common::fresh_config()
        .await
        .coalesce_appends(AppendCoalescing::off());
    let store = Arc::new(PgEventStore::new(&config));
    let mut writers = JoinSet::new();
    for writer in 0..16 {
        let store = Arc::clone(&store);
        writers.spawn(async move {
            store
                .append(
                    &StreamId::new(format!("alone-{writer}")),
                    ExpectedVersion::NoStream,
                    &events(1),
                )
                .await
        });
    }
    while let Some(result) = writers.join_next().await {
        result.unwrap().unwrap();
    }
    let transactions: i64 = sqlx::query_scalar(&format!(
        "SELECT count(DISTINCT tx_id) FROM \"{}\".events",
        config.schema_name()
    ))
    .fetch_one(config.pool())
    .await
    .unwrap();
    assert_eq!(transactions, 16);
}

/// Fenced appends in one group: each is checked against its own lease, a
/// stale fence refuses its append only, and the others share the
/// transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_fence_in_a_group_refuses_only_its_own_append() {
    let (config, store) = one_statement_at_a_time().await;
    let a = PgLease::connect_with(&config, 8, common::fast_timing())
        .await
        .unwrap();
    let b = PgLease::connect_with(
        &common::other_process(&config, "coalesce-b").await,
        8,
        common::fast_timing(),
    )
    .await
    .unwrap();
    // Two streams of one shard: a's lease of it is taken over by b.
    let stale_stream = StreamId::new("fenced-0");
    let shard = a.shard_of(&stale_stream);
    let current_stream = (1..10_000)
        .map(|n| StreamId::new(format!("fenced-{n}")))
        .find(|s| a.shard_of(s) == shard)
        .expect("one of 10,000 ids falls in one of 8 shards");
    let stale = a.acquire(&stale_stream).await.unwrap();
    let unrevoked = Fence::new(Tenure::unbounded(
        stale.fence().shard(),
        stale.fence().epoch(),
    ));
    common::expire(&config, shard).await;
    let current = common::acquire_eventually(&b, &current_stream, Duration::from_secs(1)).await;

    let gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &gate).await;
    let unfenced_stream = StreamId::new("plain-1");
    let (stale, fresh, unfenced) = (events(1), events(2), events(1));
    let (refused, stored, plain, ()) = tokio::join!(
        store.append_fenced(&stale_stream, ExpectedVersion::Any, &stale, &unrevoked),
        store.append_fenced(
            &current_stream,
            ExpectedVersion::NoStream,
            &fresh,
            current.fence()
        ),
        store.append(&unfenced_stream, ExpectedVersion::NoStream, &unfenced),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            gate.open().await;
        },
    );
    gated.await.unwrap().unwrap();
    match refused {
        Err(StoreError::Fenced {
            shard: s, epoch, ..
        }) => {
            assert_eq!((s, epoch), (unrevoked.shard(), unrevoked.epoch()));
        }
        other => panic!("a stale fence is fenced off, got {other:?}"),
    }
    assert_eq!(stored.unwrap().version, 2);
    assert_eq!(plain.unwrap().version, 1);
    assert!(versions_of(&store, stale_stream.as_str()).await.is_empty());
    assert_eq!(
        transactions_of(&config, &[current_stream.as_str(), "plain-1"]).await,
        1,
        "the fenced and the plain append shared one transaction"
    );
}

/// A fence whose holder learns, while its append waits in the queue, that
/// the lease is gone (its tenure revoked) stores nothing, as an append alone
/// sent after the revocation would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_revoked_while_its_append_waits_stores_nothing() {
    let (config, store) = one_statement_at_a_time().await;
    let lease = PgLease::connect_with(&config, 8, common::fast_timing())
        .await
        .unwrap();
    let revoked_stream = StreamId::new("revoked-0");
    let held = lease.acquire(&revoked_stream).await.unwrap();
    let tenure = Tenure::unbounded(held.fence().shard(), held.fence().epoch());
    let fence = Fence::new(Arc::clone(&tenure));

    let gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &gate).await;
    let plain = StreamId::new("plain-1");
    let (fenced, unfenced) = (events(1), events(1));
    let (refused, stored, ()) = tokio::join!(
        store.append_fenced(&revoked_stream, ExpectedVersion::NoStream, &fenced, &fence),
        store.append(&plain, ExpectedVersion::NoStream, &unfenced),
        async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            tenure.revoke();
            tokio::time::sleep(Duration::from_millis(30)).await;
            gate.open().await;
        },
    );
    gated.await.unwrap().unwrap();
    assert!(
        matches!(refused, Err(StoreError::Fenced { .. })),
        "a revoked fence is fenced off, got {refused:?}"
    );
    assert_eq!(stored.unwrap().version, 1);
    assert!(
        versions_of(&store, revoked_stream.as_str())
            .await
            .is_empty()
    );
}

/// An append that waits for a statement longer than the pool's acquire
/// timeout is told the pool was exhausted, and is not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_that_waits_past_the_acquire_timeout_is_pool_exhausted_and_unsent() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(200));
    let (config, store) = one_statement_at_a_time_on(pool, |options| options).await;
    let gate = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &gate).await;
    let late = StreamId::new("late-1");
    let batch = events(1);
    let (outcome, ()) = tokio::join!(
        store.append(&late, ExpectedVersion::NoStream, &batch),
        async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            gate.open().await;
        },
    );
    gated.await.unwrap().unwrap();
    assert!(
        matches!(outcome, Err(StoreError::PoolExhausted { waited_ms: 200 })),
        "got {outcome:?}"
    );
    assert!(versions_of(&store, "late-1").await.is_empty());
}

/// A lock timeout that one stream of a group meets (another transaction
/// holds its head) cancels the group's statement; the other appends are
/// then written alone and only the blocked one times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_timeout_on_one_stream_fails_only_its_own_append() {
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4);
    let (config, store) =
        one_statement_at_a_time_on(pool, |options| options.options([("lock_timeout", "300ms")]))
            .await;
    let first = Gate::hold(&config, "gate-1").await;
    let gated = start_gated(&config, &store, &first).await;
    let blocked = Gate::hold(&config, "blocked-1").await;
    let (free, stuck) = (StreamId::new("free-1"), blocked.stream.clone());
    let (for_free, for_stuck) = (events(1), events(1));
    let (free_outcome, stuck_outcome, ()) = tokio::join!(
        store.append(&free, ExpectedVersion::NoStream, &for_free),
        store.append(&stuck, ExpectedVersion::NoStream, &for_stuck),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            first.open().await;
        },
    );
    // The gate's own append may have timed out too; it does not matter here.
    let _ = gated.await.unwrap();
    assert_eq!(free_outcome.unwrap().version, 1);
    assert!(
        matches!(stuck_outcome, Err(StoreError::Timeout { .. })),
        "got {stuck_outcome:?}"
    );
    blocked.open().await;
}

/// The coalescing workers run on the runtime of the first append; when that
/// runtime is gone, an append from another runtime starts new ones instead
/// of waiting for the dead ones forever.
#[test]
fn a_store_outlives_the_runtime_its_workers_started_on() {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    let first = runtime();
    let store = first.block_on(async {
        let store = PgEventStore::new(&common::fresh_config().await);
        store
            .append(
                &StreamId::new("first-1"),
                ExpectedVersion::NoStream,
                &events(1),
            )
            .await
            .unwrap();
        store
    });
    drop(first);
    let second = runtime();
    let stored = second.block_on(async {
        let stream = StreamId::new("second-1");
        let batch = events(1);
        // The pool's connections were opened on the first runtime: the
        // first statement may meet one whose socket died with it, an
        // outcome the caller resolves by sending the same batch again.
        for _ in 0..3 {
            let sent = store.append(&stream, ExpectedVersion::NoStream, &batch);
            let answer = tokio::time::timeout(Duration::from_secs(10), sent)
                .await
                .expect("the append hung: no worker took it");
            match answer {
                Ok(out) => return out,
                Err(error) if error.is_retryable() => {}
                Err(error) => panic!("not a retryable error: {error:?}"),
            }
        }
        panic!("three sends of the batch never stored it");
    });
    assert_eq!(stored.version, 1);
}
