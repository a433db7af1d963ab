//! The Postgres workloads of `nexus-bench`, each measured beside a raw
//! baseline in the same run, in a fresh schema that is dropped afterwards.
//!
//! - `pg_many_entities`: 32 callers send commands to 1,000 tallies
//!   (`cmds_per_s`, with the store's default coalescing of concurrent
//!   appends of different streams, and `uncoalesced_cmds_per_s`, one
//!   transaction per append; each with the events it stored per
//!   transaction), beside 32 callers doing a plain sqlx single-row `INSERT`
//!   per transaction on a pool of the same size (`raw_insert_per_s`), and
//!   the ratios to it.
//! - `pg_hot_entity`: 32 callers on one tally with group commit
//!   (`cmds_per_s`, `conflict_retries`, and where the time goes:
//!   `appends_per_s`, `mean_batch`, `append_ms`), beside
//!   `raw_commit_per_s`, one connection committing one single-row `INSERT`
//!   after another in plain sqlx (see [`raw_commit`](super::raw_commit)),
//!   measured in [`turns`] with the entity, and their `ratio`.
//! - `pg_hot_entity_async_commit`: the same with `synchronous_commit = off`
//!   on the store's connections (and on the raw loop's, which shares
//!   them). Labelled apart because it trades the last
//!   few hundred milliseconds of acknowledged commands on a server crash
//!   for not waiting on the WAL flush; the default stays durable.
//! - `pg_reads`: 32 callers query 1,000 warm tallies (`Total` writes
//!   nothing). `confirmed_reads_per_s` is the default, where each reply
//!   first confirms the stream head with one indexed read because other
//!   processes may write; `unchecked_reads_per_s` is the same with
//!   `sole_writer()`; `raw_head_reads_per_s` is that indexed read alone,
//!   in plain sqlx at the same concurrency.
//! - `pg_rehydrate_10k`: the median time to recover a 10,000-event stream
//!   without a snapshot (`cold_load_ms`) and with one every 100 events
//!   (`cold_load_snapshot_ms`), beside the median time of the stream read
//!   alone (`read_stream_ms`) and of the raw baseline (`raw_read_ms`): plain
//!   sqlx fetching the same 10,000 rows (`SELECT … ORDER BY version`), with
//!   nothing decoded.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::telemetry::{InMemoryRecorder, names};
use nexus_core::{
    ActorSystem, Entities, EntitiesBuilder, EventMetadata, EventStore, ExpectedVersion,
    SnapshotStrategy, Snapshots, StoreError, StreamId, WhenFull, recover,
};
use nexus_store_pg::{
    AppendCoalescing, PgEventStore, PgSetupError, PgSnapshotStore, PgStoreConfig,
};
use serde_json::json;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::{Add, Budget, Selection, Tally, TallyEvent, closed_loop, emit, turns};

/// Concurrent callers of the throughput workloads.
const CALLERS: usize = 32;
/// Tallies of `pg_many_entities`.
const ENTITIES: usize = 1_000;
/// Commands an entity commits together under load.
const GROUP_COMMIT: usize = 64;
/// Events of the `pg_rehydrate_10k` stream.
const REHYDRATE_EVENTS: u64 = 10_000;
/// Connections of each pool. Half the callers: on two cores more
/// connections only add context switches, and the WAL flush (the bound of
/// every commit) is shared by all of them anyway.
const POOL_SIZE: u32 = 16;
/// Timed recoveries per measurement; the median is reported.
const LOADS: usize = 21;

/// Why the Postgres workloads could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgBenchError {
    /// Connecting or a raw statement failed.
    #[error("postgres: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be set up.
    #[error(transparent)]
    Setup(#[from] PgSetupError),
    /// A store call failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A workload went wrong (a failed command, a wrong recovered state).
    #[error("{0}")]
    Workload(String),
}

pub(crate) fn workload_error(error: impl std::fmt::Display) -> PgBenchError {
    PgBenchError::Workload(error.to_string())
}

/// Runs the Postgres workloads `only` selects against `database_url`,
/// printing one JSON line each.
///
/// ```no_run
/// use std::time::Duration;
/// use nexus_examples::bench::{Budget, Selection, postgres};
/// # async fn run() -> Result<(), postgres::PgBenchError> {
/// let budget = Budget { per_workload: Duration::from_secs(5) };
/// postgres::run("postgres://postgres@127.0.0.1:5432/test", budget, &Selection::all()).await?;
/// # Ok(())
/// # }
/// ```
pub async fn run(database_url: &str, budget: Budget, only: &Selection) -> Result<(), PgBenchError> {
    if !only.wants_any(&[
        "pg_many_entities",
        "pg_hot_entity",
        "pg_hot_entity_async_commit",
        "pg_reads",
        "pg_rehydrate_10k",
    ]) {
        return Ok(());
    }
    let options: PgConnectOptions = database_url.parse()?;
    let pool = connect_pool(options.clone()).await?;
    in_scratch_schema(&pool, "nexus_bench", |config| async move {
        let async_commit = PgStoreConfig::new(
            connect_pool(options.options([("synchronous_commit", "off")])).await?,
        )
        .schema(config.schema_name().as_str())?;
        if only.wants("pg_many_entities") {
            many_entities(&config, budget).await?;
        }
        for (name, config) in [
            ("pg_hot_entity", &config),
            ("pg_hot_entity_async_commit", &async_commit),
        ] {
            if only.wants(name) {
                hot_entity(name, config, budget).await?;
            }
        }
        if only.wants("pg_reads") {
            reads(&config, budget).await?;
        }
        if only.wants("pg_rehydrate_10k") {
            rehydrate(&config).await?;
        }
        Ok(())
    })
    .await
}

/// Runs `work` on a fresh, migrated schema `{prefix}_{uuid}` of `pool`, then
/// drops the schema whatever `work` returned, so runs on one database never
/// meet and leave nothing behind.
pub(crate) async fn in_scratch_schema<F, Fut>(
    pool: &PgPool,
    prefix: &str,
    work: F,
) -> Result<(), PgBenchError>
where
    F: FnOnce(PgStoreConfig) -> Fut,
    Fut: std::future::Future<Output = Result<(), PgBenchError>>,
{
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let config = PgStoreConfig::new(pool.clone()).schema(&schema)?;
    config.migrate().await?;
    let outcome = work(config).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(pool)
        .await?;
    outcome
}

async fn connect_pool(options: PgConnectOptions) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .min_connections(POOL_SIZE)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options)
        .await
}

fn tallies(system: &ActorSystem, store: Arc<dyn EventStore>) -> Entities<Tally> {
    tallies_builder(system, store)
        .build()
        .expect("the benchmark's options are valid")
}

fn tallies_builder(system: &ActorSystem, store: Arc<dyn EventStore>) -> EntitiesBuilder<Tally> {
    Entities::<Tally>::builder(system)
        .event_sourced(store, EventCodec::new(Bincode))
        .mailbox_capacity(1_024)
        .when_full(WhenFull::Wait)
        .group_commit(GROUP_COMMIT)
        .ask_timeout(Duration::from_secs(30))
}

/// Recovers tallies `e0..e{ENTITIES}` once, so that what follows measures
/// the steady state.
async fn warm_up(entities: &Entities<Tally>) -> Result<(), PgBenchError> {
    let mut warm = Vec::with_capacity(CALLERS);
    for caller in 0..CALLERS {
        let entities = entities.clone();
        warm.push(tokio::spawn(async move {
            for e in (caller..ENTITIES).step_by(CALLERS) {
                entities.of(format!("e{e}")).ask(Add(1)).await?;
            }
            Ok::<_, nexus_core::EntityError<super::TallyError>>(())
        }));
    }
    for task in warm {
        task.await
            .map_err(workload_error)?
            .map_err(workload_error)?;
    }
    Ok(())
}

/// Queries of warm entities, confirmed at the stream head and unchecked,
/// beside the head read alone.
async fn reads(config: &PgStoreConfig, budget: Budget) -> Result<(), PgBenchError> {
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(config));
    let mut per_second = Vec::new();
    for sole_writer in [false, true] {
        let system = ActorSystem::new();
        let builder = tallies_builder(&system, Arc::clone(&store));
        let entities = if sole_writer {
            builder.sole_writer()
        } else {
            builder
        }
        .build()
        .map_err(workload_error)?;
        warm_up(&entities).await?;
        let run = closed_loop(CALLERS, budget.per_workload, move |_| {
            let entity = entities.of(format!("e{}", fastrand::usize(0..ENTITIES)));
            async move { entity.ask(super::Total).await }
        })
        .await;
        system.shutdown(Duration::from_secs(5)).await;
        per_second.push((run.per_second(), run.failed));
    }
    let pool = config.pool().clone();
    let head: Arc<str> = format!(
        "SELECT coalesce(max(version), 0) FROM \"{}\".events WHERE stream_id = $1",
        config.schema_name()
    )
    .into();
    let raw = closed_loop(CALLERS, budget.per_workload, move |_| {
        let (pool, head) = (pool.clone(), Arc::clone(&head));
        async move {
            sqlx::query_scalar::<_, i64>(&head)
                .bind(format!("tally-e{}", fastrand::usize(0..ENTITIES)))
                .fetch_one(&pool)
                .await
        }
    })
    .await;
    let [(confirmed, confirmed_failed), (unchecked, unchecked_failed)] = per_second[..] else {
        unreachable!("two runs")
    };
    emit(
        "pg_reads",
        json!({
            "confirmed_reads_per_s": confirmed,
            "unchecked_reads_per_s": unchecked,
            "raw_head_reads_per_s": raw.per_second(),
            "confirmed_to_unchecked": confirmed / unchecked,
            "failed": confirmed_failed + unchecked_failed + raw.failed,
        }),
    );
    Ok(())
}

async fn many_entities(config: &PgStoreConfig, budget: Budget) -> Result<(), PgBenchError> {
    let pool = config.pool().clone();
    sqlx::raw_sql(&format!(
        "CREATE TABLE \"{0}\".raw_inserts (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             stream_id text NOT NULL,
             payload bytea NOT NULL,
             created_at timestamptz NOT NULL DEFAULT now())",
        config.schema_name()
    ))
    .execute(&pool)
    .await?;
    let insert: Arc<str> = format!(
        "INSERT INTO \"{}\".raw_inserts (stream_id, payload) VALUES ($1, $2)",
        config.schema_name()
    )
    .into();
    let raw = closed_loop(CALLERS, budget.per_workload, move |_| {
        let (pool, insert) = (pool.clone(), Arc::clone(&insert));
        async move {
            sqlx::query(&insert)
                .bind(format!("tally-e{}", fastrand::usize(0..ENTITIES)))
                .bind(&[1_u8][..])
                .execute(&pool)
                .await
        }
    })
    .await;

    let uncoalesced = commands_to_many(
        &config.clone().coalesce_appends(AppendCoalescing::off()),
        budget,
    )
    .await?;
    let coalesced = commands_to_many(config, budget).await?;
    emit(
        "pg_many_entities",
        json!({
            "cmds_per_s": coalesced.run.per_second(),
            "events_per_transaction": coalesced.events_per_transaction,
            "uncoalesced_cmds_per_s": uncoalesced.run.per_second(),
            "uncoalesced_events_per_transaction": uncoalesced.events_per_transaction,
            "raw_insert_per_s": raw.per_second(),
            "ratio": coalesced.run.per_second() / raw.per_second(),
            "uncoalesced_ratio": uncoalesced.run.per_second() / raw.per_second(),
            "failed": coalesced.run.failed + uncoalesced.run.failed + raw.failed,
        }),
    );
    Ok(())
}

/// One closed-loop run of `pg_many_entities` on the store of `config`.
struct ManyEntities {
    run: super::Throughput,
    /// Events the run stored per transaction that stored them.
    events_per_transaction: f64,
}

async fn commands_to_many(
    config: &PgStoreConfig,
    budget: Budget,
) -> Result<ManyEntities, PgBenchError> {
    let system = ActorSystem::new();
    let entities = tallies(&system, Arc::new(PgEventStore::new(config)));
    warm_up(&entities).await?;
    let (first_seq,): (Option<i64>,) = sqlx::query_as(&format!(
        "SELECT max(seq) FROM \"{}\".events",
        config.schema_name()
    ))
    .fetch_one(config.pool())
    .await?;
    let run = closed_loop(CALLERS, budget.per_workload, move |_| {
        let entity = entities.of(format!("e{}", fastrand::usize(0..ENTITIES)));
        async move { entity.ask(Add(1)).await }
    })
    .await;
    system.shutdown(Duration::from_secs(5)).await;
    let (events, transactions): (i64, i64) = sqlx::query_as(&format!(
        "SELECT count(*), count(DISTINCT tx_id) FROM \"{}\".events WHERE seq > $1",
        config.schema_name()
    ))
    .bind(first_seq.unwrap_or(0))
    .fetch_one(config.pool())
    .await?;
    #[allow(clippy::cast_precision_loss)]
    let events_per_transaction = events as f64 / transactions.max(1) as f64;
    Ok(ManyEntities {
        run,
        events_per_transaction,
    })
}

async fn hot_entity(
    name: &str,
    config: &PgStoreConfig,
    budget: Budget,
) -> Result<(), PgBenchError> {
    // The runtime's own counts: its metrics, bound to a local recorder.
    let recorder = InMemoryRecorder::new();
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(config));
    let system = ActorSystem::new();
    let builder = tallies_builder(&system, store);
    let tallies = metrics::with_local_recorder(&recorder, || builder.build())
        .expect("the benchmark's options are valid");
    let hot = tallies.of(name);
    hot.ask(Add(1)).await.map_err(workload_error)?;
    let tally = [("aggregate", "tally")];
    let appends_of = || recorder.histogram(names::APPEND_DURATION, &tally);
    let (appends_before, seconds_before) = appends_of();
    // In turns with the entity, on the same database: what one connection
    // commits alone.
    let (mut runs, mut raws) = (Vec::new(), Vec::new());
    let turn = turns::turn(budget.per_workload);
    for _ in 0..turns::TURNS {
        let hot = hot.clone();
        runs.push(
            closed_loop(CALLERS, turn, move |_| {
                let hot = hot.clone();
                async move { hot.ask(Add(1)).await }
            })
            .await,
        );
        let schema = config.schema_name().as_str();
        raws.push(super::raw_commit::sequential_commits(config.pool(), schema, turn).await?);
    }
    system.shutdown(Duration::from_secs(5)).await;
    let (run, raw) = (turns::combined(&runs), turns::combined(&raws));
    let (appends, seconds) = appends_of();
    let appends = appends - appends_before;
    let append_time = Duration::from_secs_f64((seconds - seconds_before).max(0.0));
    #[allow(clippy::cast_precision_loss)]
    let (mean_batch, append_ms, appends_per_s) = (
        run.ok as f64 / appends.max(1) as f64,
        append_time.as_secs_f64() * 1_000.0 / appends.max(1) as f64,
        appends as f64 / run.elapsed.as_secs_f64(),
    );
    emit(
        name,
        json!({
            "cmds_per_s": run.per_second(),
            "raw_commit_per_s": raw.per_second(),
            "ratio": run.per_second() / raw.per_second(),
            "conflict_retries": recorder.counter(names::CONFLICTS, &tally),
            "appends_per_s": appends_per_s,
            "mean_batch": mean_batch,
            "append_ms": append_ms,
            "failed": run.failed,
        }),
    );
    Ok(())
}

/// The median of `LOADS` runs of `load`, in milliseconds.
async fn median_ms<F, Fut>(load: F) -> Result<f64, PgBenchError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), PgBenchError>>,
{
    let mut times = Vec::with_capacity(LOADS);
    for _ in 0..LOADS {
        let started = Instant::now();
        load().await?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(times[LOADS / 2].as_secs_f64() * 1_000.0)
}

async fn rehydrate(config: &PgStoreConfig) -> Result<(), PgBenchError> {
    let store = PgEventStore::new(config);
    let codec = EventCodec::<TallyEvent>::new(Bincode);
    let plain = StreamId::for_entity("tally", "rehydrate");
    let snapshotted = StreamId::for_entity("tally", "rehydrate-snapshotted");
    let snapshots = Snapshots::<Tally>::new(
        SnapshotStrategy::every_n(NonZeroU64::new(100).expect("non-zero")),
        Arc::new(PgSnapshotStore::new(config)),
        Bincode,
    );
    for stream in [&plain, &snapshotted] {
        for chunk in 0..REHYDRATE_EVENTS / 1_000 {
            let batch = (0..1_000)
                .map(|_| codec.encode(&TallyEvent::Added(1), EventMetadata::new()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(workload_error)?;
            store
                .append(stream, ExpectedVersion::Exact(chunk * 1_000), &batch)
                .await?;
        }
    }
    for version in (100..=REHYDRATE_EVENTS).step_by(100) {
        snapshots
            .save(&snapshotted, &Tally { total: version }, version)
            .await
            .map_err(workload_error)?;
    }
    sqlx::query(&format!("ANALYZE \"{}\".events", config.schema_name()))
        .execute(config.pool())
        .await?;
    let read_stream_ms = median_ms(|| async {
        store.read_stream(&plain, 1).await?;
        Ok(())
    })
    .await?;
    let raw = format!(
        "SELECT version, event_type, schema_version, payload_bytes FROM \"{}\".events
         WHERE stream_id = $1 ORDER BY version",
        config.schema_name()
    );
    let raw_read_ms = median_ms(|| async {
        let rows = sqlx::query(&raw)
            .bind(plain.as_str())
            .fetch_all(config.pool())
            .await?;
        if u64::try_from(rows.len()) == Ok(REHYDRATE_EVENTS) {
            Ok(())
        } else {
            Err(workload_error(format!("read {} raw rows", rows.len())))
        }
    })
    .await?;
    emit(
        "pg_rehydrate_10k",
        json!({
            "cold_load_ms": median_ms(|| load(&store, &codec, &plain, None)).await?,
            "cold_load_snapshot_ms":
                median_ms(|| load(&store, &codec, &snapshotted, Some(&snapshots))).await?,
            "read_stream_ms": read_stream_ms,
            "raw_read_ms": raw_read_ms,
        }),
    );
    Ok(())
}

/// Recovers `stream` as a new entity would, and checks the total.
async fn load(
    store: &PgEventStore,
    codec: &EventCodec<TallyEvent>,
    stream: &StreamId,
    snapshots: Option<&Snapshots<Tally>>,
) -> Result<(), PgBenchError> {
    let recovered = recover::<Tally>(stream, store, codec, snapshots)
        .await
        .map_err(workload_error)?;
    if recovered.state.total == REHYDRATE_EVENTS {
        Ok(())
    } else {
        Err(workload_error(format!(
            "recovered a total of {} instead of {REHYDRATE_EVENTS}",
            recovered.state.total
        )))
    }
}
