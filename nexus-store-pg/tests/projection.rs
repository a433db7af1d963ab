//! The Postgres read side against a real Postgres, one schema per test:
//! projections never skip (in-flight, rolled-back and long-running
//! transactions), report a held horizon naming its blocker, deliver exactly
//! once, refuse a stale instance's checkpoint, wake on NOTIFY and poll
//! without it, pause, resume, wait for a position, rebuild behind a swap,
//! and export their lag and a held horizon as metrics.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::codec::{EventCodec, Json};
use nexus_core::lease::OwnershipLease;
use nexus_core::projection::{
    Batch, CheckpointStore, EventVisitor, ProjectionHandle, ProjectionStatus, RunState, Sink,
};
use nexus_core::telemetry::{InMemoryRecorder, names};
use nexus_core::{
    BoxError, DomainEvent, EventMetadata, EventStore, ExpectedVersion, LogPosition, StreamId,
};
use nexus_store_pg::projection::{NotifyingStore, PgCheckpoints, PgProjection, PgReadSide};
use nexus_store_pg::{LeaseTiming, PgEventStore, PgLease, PgStoreConfig};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

#[derive(Clone, Debug, Serialize, Deserialize, DomainEvent, EventVisitor)]
#[event(prefix = "tally")]
enum TallyEvent {
    Added(i64),
    Reset,
}

/// Per-stream totals: what a fold of the log gives.
struct Totals;

/// One batch's effect on each stream, built by exhaustive dispatch.
#[derive(Default)]
struct Deltas {
    current: i64,
    reset: bool,
}

impl TallyEventVisitor for Deltas {
    type Output = ();
    fn added(&mut self, n: &i64) {
        self.current += n;
    }
    fn reset(&mut self) {
        self.current = 0;
        self.reset = true;
    }
}

#[async_trait]
impl PgProjection for Totals {
    type Event = TallyEvent;

    async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError> {
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, total bigint NOT NULL, events bigint NOT NULL)"
        ))
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        table: &str,
        batch: &Batch<TallyEvent>,
    ) -> Result<(), BoxError> {
        // Fold the batch per stream, then one upsert per stream.
        let mut per_stream: Vec<(String, Deltas, i64)> = Vec::new();
        for e in batch {
            let id = e.entity_id().to_owned();
            let index = if let Some(i) = per_stream.iter().position(|(s, _, _)| *s == id) {
                i
            } else {
                per_stream.push((id, Deltas::default(), 0));
                per_stream.len() - 1
            };
            let entry = &mut per_stream[index];
            e.event.visit(&mut entry.1);
            entry.2 += 1;
        }
        for (id, deltas, events) in per_stream {
            sqlx::query(&format!(
                "INSERT INTO {table} AS t VALUES ($1, $2, $4) ON CONFLICT (id) DO UPDATE SET \
                 total = CASE WHEN $3 THEN 0 ELSE t.total END + excluded.total, \
                 events = t.events + excluded.events"
            ))
            .bind(id)
            .bind(deltas.current)
            .bind(deltas.reset)
            .bind(events)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

fn codec() -> EventCodec<TallyEvent> {
    EventCodec::new(Json)
}

async fn add(store: &dyn EventStore, id: &str, n: i64) -> LogPosition {
    let event = codec()
        .encode(&TallyEvent::Added(n), EventMetadata::new())
        .unwrap();
    let out = store
        .append(
            &StreamId::for_entity("tally", id),
            ExpectedVersion::Any,
            &[event],
        )
        .await
        .unwrap();
    *out.positions.last().unwrap()
}

/// Appends one event in `conn`'s open transaction, by hand (the store's
/// append commits by itself): the late or rolled-back commit the tests need.
/// Knows the `events` columns; keep it in step with the migrations.
async fn add_in_transaction(conn: &mut PgConnection, config: &PgStoreConfig, id: &str, n: i64) {
    let event = codec()
        .encode(&TallyEvent::Added(n), EventMetadata::new())
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {schema}.events (stream_id, version, event_id, event_type, schema_version, payload_bytes, occurred_at)
         SELECT $1, coalesce(max(version), 0) + 1, $2, $3, 1, $4, now() FROM {schema}.events WHERE stream_id = $1",
        schema = config.schema_name().as_str()
    ))
    .bind(format!("tally-{id}"))
    .bind(event.metadata.event_id)
    .bind(&event.event_type)
    .bind(&event.payload)
    .execute(&mut *conn)
    .await
    .unwrap();
}

/// The fold of the whole log per stream, straight from the store.
async fn fold_of_log(store: &dyn EventStore) -> Vec<(String, i64, i64)> {
    let mut totals = std::collections::BTreeMap::<String, (i64, i64)>::new();
    let mut after = LogPosition::START;
    loop {
        let page = store.read_all(after, 1000).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.position;
        for recorded in &page {
            let id = recorded
                .stream_id
                .as_str()
                .trim_start_matches("tally-")
                .to_owned();
            let entry = totals.entry(id).or_default();
            match codec().decode(recorded).unwrap() {
                TallyEvent::Added(n) => entry.0 += n,
                TallyEvent::Reset => entry.0 = 0,
            }
            entry.1 += 1;
        }
    }
    totals.into_iter().map(|(id, (t, e))| (id, t, e)).collect()
}

async fn read_model(config: &PgStoreConfig, table: &str) -> Vec<(String, i64, i64)> {
    sqlx::query_as(&format!(
        "SELECT id, total, events FROM {}.{table} ORDER BY id",
        config.schema_name().as_str()
    ))
    .fetch_all(config.pool())
    .await
    .unwrap()
}

fn totals(read_side: &PgReadSide, store: Arc<dyn EventStore>, name: &str) -> ProjectionHandle {
    read_side
        .exactly_once(name, name, Totals, store, codec())
        .unwrap()
        .batch_size(64)
        .poll_every(Duration::from_millis(100))
        .horizon_warn_after(Duration::from_millis(200))
        .spawn()
}

/// The status once it names a horizon's blocker, which it does after the
/// stall has lasted `horizon_warn_after`; a status naming none for 10 s
/// fails the test.
async fn named_blocker(handle: &ProjectionHandle) -> ProjectionStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = handle.status().await;
        if status.horizon_held_by.is_some() {
            return status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no blocker named in 10 s: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_and_rolled_back_commits_cause_lag_never_skips() {
    // Holds the server's horizon: no test waiting on the log runs meanwhile.
    let _horizon = common::horizon_alone().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let handle = totals(&read_side, Arc::clone(&store), "totals");
    let first = add(&*store, "a", 1).await;
    // Through the first event, so the stall below is the late writer's alone.
    handle
        .wait_for(first, Duration::from_secs(10))
        .await
        .unwrap();

    // In flight and long-running: holds the horizon while others commit.
    let mut late = PgConnection::connect_with(&common::connect_options("late_writer"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut late).await.unwrap();
    add_in_transaction(&mut late, &config, "late", 1000).await;
    // Rolled back: its event must never show up.
    let mut rolled = PgConnection::connect_with(&common::connect_options("rolled_back"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut rolled).await.unwrap();
    add_in_transaction(&mut rolled, &config, "ghost", 7).await;

    let mut last = LogPosition::START;
    for i in 0..50 {
        last = add(&*store, &format!("s{}", i % 5), 1).await;
    }
    sqlx::query("ROLLBACK").execute(&mut rolled).await.unwrap();

    // Committed events wait behind the held horizon: lag, named, counted.
    let err = handle
        .wait_for(last, Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not"), "{err}");
    let status = named_blocker(&handle).await;
    assert!(status.lag_events.unwrap() >= 50, "{status:?}");
    assert!(status.lag_seconds.unwrap() > 0.0, "{status:?}");
    let blocker = status.horizon_held_by.clone().unwrap_or_default();
    assert!(blocker.contains("late_writer"), "{blocker}");
    assert!(status.horizon_stalls >= 1, "{status:?}");

    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    handle
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    // The late commit got a position after `last`; wait for the drain.
    let mut tries = 0;
    while read_model(&config, "totals").await != fold_of_log(&*store).await {
        tries += 1;
        assert!(
            tries < 100,
            "the read model never matched the fold of the log"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let model = read_model(&config, "totals").await;
    assert!(
        model
            .iter()
            .any(|(id, total, _)| id == "late" && *total == 1000)
    );
    assert!(!model.iter().any(|(id, _, _)| id == "ghost"));
    let status = handle.status().await;
    assert_eq!(status.lag_events, Some(0), "{status:?}");
    assert_eq!(status.horizon_held_by, None);
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appenders_fold_exactly_once_across_a_restart() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> =
        Arc::new(NotifyingStore::new(PgEventStore::new(&config), &config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let handle = totals(&read_side, Arc::clone(&store), "totals");
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut last = LogPosition::START;
                for i in 0..60 {
                    last = last.max(add(&*store, &format!("s{}", (w + i) % 7), 1 + i).await);
                    if i == 30 {
                        tokio::task::yield_now().await;
                    }
                }
                last
            })
        })
        .collect();
    // Restart the projection midway: it resumes from its checkpoint.
    tokio::time::sleep(Duration::from_millis(200)).await;
    handle.stop().await;
    let handle = totals(&read_side, Arc::clone(&store), "totals");
    let mut last = LogPosition::START;
    for writer in writers {
        last = last.max(writer.await.unwrap());
    }
    handle
        .wait_for(last, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(
        read_model(&config, "totals").await,
        fold_of_log(&*store).await
    );
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notify_wakes_at_once_and_polling_covers_without_it() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let plain: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let notifying: Arc<dyn EventStore> =
        Arc::new(NotifyingStore::new(PgEventStore::new(&config), &config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    // A poll so slow that only a NOTIFY can explain a quick pick-up.
    let handle = read_side
        .exactly_once("woken", "woken", Totals, Arc::clone(&plain), codec())
        .unwrap()
        .poll_every(Duration::from_secs(60))
        .spawn();
    tokio::time::sleep(Duration::from_millis(300)).await; // idle now
    let at = add(&*notifying, "a", 1).await;
    handle.wait_for(at, Duration::from_secs(3)).await.unwrap();
    handle.stop().await;

    // Without NOTIFY (a plain store appending), polling still finds it.
    let polled = read_side
        .exactly_once("polled", "polled", Totals, Arc::clone(&plain), codec())
        .unwrap()
        .poll_every(Duration::from_millis(200))
        .spawn();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let at = add(&*plain, "b", 1).await;
    polled.wait_for(at, Duration::from_secs(3)).await.unwrap();
    polled.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_holds_the_position_and_resume_catches_up() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let handle = totals(&read_side, Arc::clone(&store), "totals");
    let first = add(&*store, "a", 1).await;
    handle
        .wait_for(first, Duration::from_secs(5))
        .await
        .unwrap();
    handle.pause();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(handle.status().await.state, RunState::Paused);
    let second = add(&*store, "a", 1).await;
    assert!(
        handle
            .wait_for(second, Duration::from_millis(500))
            .await
            .is_err()
    );
    assert_eq!(handle.position(), first);
    handle.resume();
    handle
        .wait_for(second, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        read_model(&config, "totals").await,
        vec![("a".to_owned(), 2, 2)]
    );
    handle.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebuild_fills_a_fresh_table_and_swaps_it_in_whole() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let mut last = LogPosition::START;
    for i in 0..300 {
        last = add(&*store, &format!("s{}", i % 10), 1).await;
    }
    let handle = totals(&read_side, Arc::clone(&store), "totals");
    handle
        .wait_for(last, Duration::from_secs(10))
        .await
        .unwrap();
    let before = read_model(&config, "totals").await;
    // Corrupt the live model, as a buggy projection version would have.
    sqlx::query(&format!(
        "UPDATE {}.totals SET total = -1",
        config.schema_name().as_str()
    ))
    .execute(config.pool())
    .await
    .unwrap();
    // A reader during the rebuild sees the old model whole: never partial.
    let reader = {
        let config = config.clone();
        tokio::spawn(async move {
            for _ in 0..50 {
                let model = read_model(&config, "totals").await;
                let sum: i64 = model.iter().map(|(_, _, e)| e).sum();
                assert_eq!(sum, 300, "a reader saw a half-built model: {model:?}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let swapped_at = handle.rebuild().await.unwrap();
    assert!(swapped_at >= last);
    reader.await.unwrap();
    assert_eq!(read_model(&config, "totals").await, before);
    // And it keeps projecting into the new generation.
    let next = add(&*store, "s0", 5).await;
    handle.wait_for(next, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        read_model(&config, "totals").await,
        fold_of_log(&*store).await
    );
    handle.stop().await;
}

fn fast_timing() -> LeaseTiming {
    LeaseTiming::new(
        Duration::from_millis(1500),
        Duration::from_millis(300),
        Duration::from_millis(200),
    )
    .unwrap()
}

/// Ends `stream`'s lease at the database, as if its holder had paused past
/// the ttl, so another process can take it with a higher epoch.
async fn expire_lease(config: &PgStoreConfig, lease: &PgLease, stream: &StreamId) {
    sqlx::query(&format!(
        "UPDATE {}.leases SET expires_at = clock_timestamp() WHERE shard = $1",
        config.schema_name().as_str()
    ))
    .bind(lease.shard_of(stream).cast_signed())
    .execute(config.pool())
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_instance_checkpoint_is_refused_and_its_batch_rolled_back() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let stream = StreamId::new("projection.totals");
    let old = PgLease::connect_with(&config, 4, fast_timing())
        .await
        .unwrap();
    let new = PgLease::connect_with(&config, 4, fast_timing())
        .await
        .unwrap();
    let old_guard = old.acquire(&stream).await.unwrap();

    let mut sink = read_side.sink("totals", "totals", Totals).unwrap();
    assert_eq!(sink.load().await.unwrap(), None);
    let at = add(&*store, "a", 1).await;
    let page = store.read_all(LogPosition::START, 10).await.unwrap();
    let batch: Batch<TallyEvent> = page
        .iter()
        .map(|r| nexus_core::projection::Projected {
            event: codec().decode(r).unwrap(),
            stream_id: r.stream_id.clone(),
            version: r.version,
            position: r.position,
            metadata: r.metadata.clone(),
        })
        .collect();
    sink.deliver(batch.clone(), at, Some(old_guard.fence()))
        .await
        .unwrap();

    expire_lease(&config, &old, &stream).await;
    let new_guard = new.acquire(&stream).await.unwrap();
    assert!(new_guard.fence().epoch() > old_guard.fence().epoch());
    // The old instance does not know yet (its clock says current): the
    // database refuses its checkpoint, and the batch's writes with it.
    let refused = sink
        .deliver(batch, at, Some(old_guard.fence()))
        .await
        .unwrap_err();
    assert!(refused.is_fenced(), "{refused}");
    assert_eq!(
        read_model(&config, "totals").await,
        vec![("a".to_owned(), 1, 1)]
    );

    // At-least-once checkpoints are fenced the same way.
    let checkpoints = PgCheckpoints::new(&config);
    let stale = checkpoints
        .save("mailer", at, Some(old_guard.fence()))
        .await
        .unwrap_err();
    assert!(stale.is_fenced(), "{stale}");
    checkpoints
        .save("mailer", at, Some(new_guard.fence()))
        .await
        .unwrap();
    assert_eq!(checkpoints.load("mailer").await.unwrap(), Some(at));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_instance_runs_and_a_standby_takes_over() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let spawn = |lease: PgLease| {
        read_side
            .exactly_once("totals", "totals", Totals, Arc::clone(&store), codec())
            .unwrap()
            .poll_every(Duration::from_millis(100))
            .lease(Arc::new(lease) as Arc<dyn OwnershipLease>)
            .spawn()
    };
    let first = spawn(
        PgLease::connect_with(&config, 4, fast_timing())
            .await
            .unwrap(),
    );
    let a = add(&*store, "a", 1).await;
    first.wait_for(a, Duration::from_secs(5)).await.unwrap();
    let second = spawn(
        PgLease::connect_with(&config, 4, fast_timing())
            .await
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(second.status().await.state, RunState::Standby);
    assert!(first.status().await.epoch.is_some());
    // The standby follows the recorded position, so its wait_for answers.
    second.wait_for(a, Duration::from_secs(5)).await.unwrap();

    first.stop().await;
    let b = add(&*store, "a", 1).await;
    second.wait_for(b, Duration::from_secs(10)).await.unwrap();
    assert_eq!(second.status().await.state, RunState::Running);
    assert_eq!(
        read_model(&config, "totals").await,
        vec![("a".to_owned(), 2, 2)]
    );
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_least_once_hands_event_ids_and_records_every_n() {
    let _horizon = common::horizon_shared().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink_seen = Arc::clone(&seen);
    let handle = read_side
        .at_least_once(
            "mailer",
            Arc::clone(&store),
            codec(),
            move |batch: Batch<TallyEvent>| {
                let seen = Arc::clone(&sink_seen);
                async move {
                    seen.lock().unwrap().extend(
                        batch
                            .iter()
                            .map(nexus_core::projection::Projected::event_id),
                    );
                    Ok(())
                }
            },
        )
        .batch_size(10)
        .poll_every(Duration::from_millis(100))
        .spawn();
    let mut last = LogPosition::START;
    for _ in 0..25 {
        last = add(&*store, "a", 1).await;
    }
    handle.wait_for(last, Duration::from_secs(5)).await.unwrap();
    handle.stop().await;
    let ids = seen.lock().unwrap().clone();
    assert_eq!(ids.len(), 25);
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), 25);
    // Stopping recorded the position: a restart delivers nothing again.
    assert_eq!(
        PgCheckpoints::new(&config).load("mailer").await.unwrap(),
        Some(last)
    );
}

/// [`Totals`], 40 ms a batch: a projection that is still catching up when
/// the test looks.
struct SlowTotals;

#[async_trait]
impl PgProjection for SlowTotals {
    type Event = TallyEvent;

    async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError> {
        Totals.create(conn, table).await
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        table: &str,
        batch: &Batch<TallyEvent>,
    ) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(40)).await;
        Totals.handle(tx, table, batch).await
    }
}

/// Polls `value` every 50 ms until `done` holds of it, for at most 10 s.
async fn eventually(what: &str, value: impl Fn() -> f64, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = value();
        if done(now) {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} stayed at {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lag a projection exports: events held behind an open transaction
/// are lag in events and seconds and a held horizon, not silence; once it
/// commits they drain to zero; and a projection that is still catching up
/// reports its backlog, not the zero of its last idle moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
// Gauges of event counts hold small whole numbers, exactly.
#[allow(clippy::float_cmp)]
async fn lag_and_a_held_horizon_are_exported_as_metrics() {
    // Holds the server's horizon: no test waiting on the log runs meanwhile.
    let _horizon = common::horizon_alone().await;
    let config = common::fresh_config().await;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(&config));
    let read_side = PgReadSide::connect(&config).await.unwrap();
    let recorder = InMemoryRecorder::new();
    let handle = metrics::with_local_recorder(&recorder, || {
        totals(&read_side, Arc::clone(&store), "watched")
    });
    let labels = [("projection", "watched")];
    let gauge = |name| recorder.gauge(name, &labels);
    let first = add(&*store, "a", 1).await;
    handle
        .wait_for(first, Duration::from_secs(10))
        .await
        .unwrap();

    let mut late = PgConnection::connect_with(&common::connect_options("late_writer"))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut late).await.unwrap();
    add_in_transaction(&mut late, &config, "late", 1000).await;
    for i in 0..20 {
        add(&*store, &format!("s{}", i % 4), 1).await;
    }
    let held = || gauge(names::PROJECTION_LAG_EVENTS);
    let lag = eventually("lag in events", held, |n| n >= 20.0).await;
    assert_eq!(lag, 20.0, "the 20 committed events behind the horizon");
    assert!(gauge(names::PROJECTION_LAG_SECONDS) > 0.0);
    eventually(
        "the held horizon",
        || gauge(names::HORIZON_HELD_SECONDS),
        |s| s > 0.0,
    )
    .await;
    eventually(
        "horizon stalls",
        || {
            #[allow(clippy::cast_precision_loss)]
            let stalls = recorder.counter(names::HORIZON_STALLS, &labels) as f64;
            stalls
        },
        |n| n >= 1.0,
    )
    .await;

    sqlx::query("COMMIT").execute(&mut late).await.unwrap();
    eventually("the drain", held, |n| n == 0.0).await;
    eventually(
        "the released horizon",
        || gauge(names::HORIZON_HELD_SECONDS),
        |s| s == 0.0,
    )
    .await;
    assert_eq!(recorder.counter(names::PROJECTION_EVENTS, &labels), 22);
    handle.stop().await;

    // Catching up: 800 events, 10 a batch, 40 ms a batch (3.2 s). The
    // backlog shows while it works through it, and drains to zero.
    for i in 0..800 {
        add(&*store, &format!("c{}", i % 8), 1).await;
    }
    let slow = metrics::with_local_recorder(&recorder, || {
        read_side
            .exactly_once("slow", "slow", SlowTotals, Arc::clone(&store), codec())
            .unwrap()
            .batch_size(10)
            .poll_every(Duration::from_millis(100))
            .spawn()
    });
    let labels = [("projection", "slow")];
    let backlog = || recorder.gauge(names::PROJECTION_LAG_EVENTS, &labels);
    let seen = eventually("the backlog", backlog, |n| n >= 100.0).await;
    assert!(seen <= 822.0, "{seen} of 822 events");
    eventually("the caught-up backlog", backlog, |n| n == 0.0).await;
    assert_eq!(recorder.counter(names::PROJECTION_EVENTS, &labels), 822);
    slow.stop().await;
}
