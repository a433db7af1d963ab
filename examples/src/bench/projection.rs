//! The projection workloads of `nexus-bench`, on Postgres, in a fresh
//! schema that is dropped afterwards.
//!
//! - `pg_projection_catch_up`: an exactly-once projection replays
//!   [`CATCH_UP_EVENTS`] events (seeded with one `INSERT … SELECT
//!   generate_series`, over 1,000 streams) into a Postgres read model, one
//!   `UNNEST` upsert and one checkpoint per batch of [`BATCH`]
//!   (`events_per_s`). Beside it, `raw_per_s`: a hand-written loop doing the
//!   same decoding and the same upserts from a plain keyset `SELECT` scan in
//!   batches of the same size (no checkpoint, no horizon), and `ratio`. The
//!   seeded table is vacuumed and analysed before either runs.
//! - `pg_projection_lag`: appenders write about 1,000 events/s through a
//!   NOTIFY-ing store while the projection follows, woken by LISTEN;
//!   `p50_ms` and `p99_ms` from an append's commit (its acknowledgement) to
//!   the read model reflecting it (the projection's committed position
//!   passing the append's).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nexus_core::codec::{EventCodec, Json};
use nexus_core::projection::Batch;
use nexus_core::{BoxError, EventMetadata, EventStore, ExpectedVersion, LogPosition, StreamId};
use nexus_store_pg::projection::{NotifyingStore, PgProjection, PgReadSide};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};

use super::postgres::{PgBenchError, in_scratch_schema};
use super::{Budget, Selection, TallyEvent, emit, quantile_us};

/// Events `pg_projection_catch_up` replays.
pub const CATCH_UP_EVENTS: i64 = 200_000;
/// Streams they are spread over.
const STREAMS: i64 = 1_000;
/// Events per batch, for the projection and the raw loop alike.
pub const BATCH: usize = 1_000;
/// Appenders of `pg_projection_lag`, each appending every [`APPEND_EVERY`].
const APPENDERS: u32 = 4;
/// About 1,000 appends/s over [`APPENDERS`].
const APPEND_EVERY: Duration = Duration::from_millis(4);

/// Per-stream totals and event counts: the read model both sides write.
struct Totals;

/// One batch's per-stream change: one upsert row per stream.
fn fold_batch<'a>(
    events: impl Iterator<Item = (&'a str, &'a TallyEvent)>,
) -> BTreeMap<&'a str, (i64, i64)> {
    let mut rows = BTreeMap::<&str, (i64, i64)>::new();
    for (id, event) in events {
        let row = rows.entry(id).or_default();
        match event {
            TallyEvent::Added(n) => row.0 += i64::try_from(*n).unwrap_or(i64::MAX),
        }
        row.1 += 1;
    }
    rows
}

/// One `UNNEST` upsert of `rows` into `table`.
async fn upsert(
    conn: &mut PgConnection,
    table: &str,
    rows: &BTreeMap<&str, (i64, i64)>,
) -> Result<(), sqlx::Error> {
    let ids: Vec<&str> = rows.keys().copied().collect();
    let totals: Vec<i64> = rows.values().map(|r| r.0).collect();
    let counts: Vec<i64> = rows.values().map(|r| r.1).collect();
    sqlx::query(&format!(
        "INSERT INTO {table} AS t (id, total, events)
         SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[])
         ON CONFLICT (id) DO UPDATE SET total = t.total + excluded.total,
                                        events = t.events + excluded.events"
    ))
    .bind(ids)
    .bind(totals)
    .bind(counts)
    .execute(conn)
    .await?;
    Ok(())
}

fn create_sql(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, total bigint NOT NULL, events bigint NOT NULL)"
    )
}

#[async_trait]
impl PgProjection for Totals {
    type Event = TallyEvent;

    async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError> {
        sqlx::query(&create_sql(table)).execute(conn).await?;
        Ok(())
    }

    async fn handle(
        &self,
        tx: &mut PgConnection,
        table: &str,
        batch: &Batch<TallyEvent>,
    ) -> Result<(), BoxError> {
        let rows = fold_batch(batch.iter().map(|e| (e.stream_id.as_str(), &e.event)));
        upsert(tx, table, &rows).await?;
        Ok(())
    }
}

/// Runs the projection workloads `only` selects against `database_url`,
/// one JSON line each.
///
/// ```no_run
/// use std::time::Duration;
/// use nexus_examples::bench::{Budget, Selection, projection};
/// # async fn run() -> Result<(), nexus_examples::bench::postgres::PgBenchError> {
/// let budget = Budget { per_workload: Duration::from_secs(3) };
/// projection::run("postgres://postgres@127.0.0.1:5432/test", budget, &Selection::all()).await?;
/// # Ok(())
/// # }
/// ```
pub async fn run(database_url: &str, budget: Budget, only: &Selection) -> Result<(), PgBenchError> {
    if !only.wants_any(&["pg_projection_catch_up", "pg_projection_lag"]) {
        return Ok(());
    }
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(30))
        .connect(database_url)
        .await?;
    in_scratch_schema(&pool, "nexus_bench_projection", |config| async move {
        if only.wants("pg_projection_catch_up") {
            catch_up(&config).await?;
        }
        if only.wants("pg_projection_lag") {
            lag(&config, budget).await?;
        }
        Ok(())
    })
    .await
}

/// Seeds [`CATCH_UP_EVENTS`] `Added(1)` events over [`STREAMS`] streams in
/// one statement (one transaction), with their stream heads.
async fn seed(config: &PgStoreConfig) -> Result<(), PgBenchError> {
    let schema = config.schema_name().as_str();
    let event = EventCodec::<TallyEvent>::new(Json)
        .encode(&TallyEvent::Added(1), EventMetadata::new())
        .map_err(|e| PgBenchError::Workload(e.to_string()))?;
    let mut tx = config.pool().begin().await?;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".events
             (stream_id, version, event_id, event_type, schema_version, payload_bytes, occurred_at)
         SELECT 'tally-s' || (g % $1), g / $1 + 1, gen_random_uuid(), $3, $4, $5, now()
         FROM generate_series(0, $2 - 1) AS g ORDER BY g"
    ))
    .bind(STREAMS)
    .bind(CATCH_UP_EVENTS)
    .bind(&event.event_type)
    .bind(i64::from(event.schema_version))
    .bind(&event.payload)
    .execute(&mut *tx)
    .await?;
    sqlx::query(&format!(
        "INSERT INTO \"{schema}\".streams (stream_id, aggregate_type, version)
         SELECT stream_id, 'tally', max(version) FROM \"{schema}\".events GROUP BY stream_id"
    ))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Statistics, hint bits and the visibility map for the fresh rows, so
    // that neither side pays for them and the planner knows the table.
    sqlx::query(&format!("VACUUM (ANALYZE) \"{schema}\".events"))
        .execute(config.pool())
        .await?;
    Ok(())
}

/// The position of the log's last event (the start when it is empty).
async fn log_head(config: &PgStoreConfig) -> Result<LogPosition, PgBenchError> {
    let head: Option<(i32, String, i64)> = sqlx::query_as(&format!(
        "SELECT epoch, tx_id::text, seq FROM \"{}\".events
         ORDER BY epoch DESC, tx_id DESC, seq DESC LIMIT 1",
        config.schema_name().as_str()
    ))
    .fetch_optional(config.pool())
    .await?;
    Ok(head.map_or(LogPosition::START, |(epoch, tx_id, seq)| {
        LogPosition::in_epoch(
            u32::try_from(epoch).unwrap_or(0),
            tx_id.parse().unwrap_or(0),
            u64::try_from(seq).unwrap_or(0),
        )
    }))
}

#[allow(clippy::cast_precision_loss)]
async fn catch_up(config: &PgStoreConfig) -> Result<(), PgBenchError> {
    seed(config).await?;
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(config));
    let last = log_head(config).await?;

    // The projection, from the origin, exactly once.
    let read_side = PgReadSide::connect(config).await?;
    let started = Instant::now();
    let handle = read_side
        .exactly_once(
            "bench_totals",
            "bench_totals",
            Totals,
            store,
            EventCodec::new(Json),
        )?
        .batch_size(BATCH)
        .spawn();
    handle
        .wait_for(last, Duration::from_secs(600))
        .await
        .map_err(|e| PgBenchError::Workload(e.to_string()))?;
    let projected = started.elapsed();
    handle.stop().await;

    // The hand-written loop: keyset scan, decode, the same upsert.
    let raw = raw_loop(config).await?;

    let schema = config.schema_name().as_str();
    for table in ["bench_totals", "raw_totals"] {
        let (events, total): (i64, i64) = sqlx::query_as(&format!(
            "SELECT sum(events)::int8, sum(total)::int8 FROM \"{schema}\".{table}"
        ))
        .fetch_one(config.pool())
        .await?;
        if events != CATCH_UP_EVENTS || total != CATCH_UP_EVENTS {
            return Err(PgBenchError::Workload(format!(
                "{table} holds {events} events totalling {total}, not {CATCH_UP_EVENTS}"
            )));
        }
    }
    let events_per_s = CATCH_UP_EVENTS as f64 / projected.as_secs_f64();
    let raw_per_s = CATCH_UP_EVENTS as f64 / raw.as_secs_f64();
    emit(
        "pg_projection_catch_up",
        json!({
            "events": CATCH_UP_EVENTS,
            "batch": BATCH,
            "events_per_s": events_per_s.round(),
            "raw_per_s": raw_per_s.round(),
            "ratio": (events_per_s / raw_per_s * 100.0).round() / 100.0,
        }),
    );
    Ok(())
}

/// The baseline: a plain keyset scan of the log in batches of [`BATCH`],
/// each decoded and upserted into `raw_totals` in one statement.
async fn raw_loop(config: &PgStoreConfig) -> Result<Duration, PgBenchError> {
    let schema = config.schema_name().as_str();
    let pool: &PgPool = config.pool();
    let table = format!("\"{schema}\".raw_totals");
    sqlx::query(&create_sql(&table)).execute(pool).await?;
    // Qualified columns: an unqualified `ORDER BY tx_id` names the output
    // column `tx_id::text`, which sorts as text and not by the index, so
    // every batch sorted the whole rest of the log (the 5x slower baseline).
    let scan = format!(
        "SELECT e.epoch, e.tx_id::text AS tx, e.seq, e.stream_id, e.payload_bytes
         FROM \"{schema}\".events e
         WHERE (e.epoch, e.tx_id, e.seq) > ($1, $2::text::xid8, $3)
         ORDER BY e.epoch, e.tx_id, e.seq LIMIT $4"
    );
    let limit = i64::try_from(BATCH).unwrap_or(i64::MAX);
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    let (mut epoch, mut tx_id, mut seq) = (0_i32, "0".to_owned(), 0_i64);
    loop {
        let rows: Vec<(i32, String, i64, String, Vec<u8>)> = sqlx::query_as(&scan)
            .bind(epoch)
            .bind(&tx_id)
            .bind(seq)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?;
        let Some(last) = rows.last() else { break };
        (epoch, tx_id, seq) = (last.0, last.1.clone(), last.2);
        let events = rows
            .iter()
            .map(|row| serde_json::from_slice::<TallyEvent>(&row.4).map(|e| (row.3.as_str(), e)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PgBenchError::Workload(e.to_string()))?;
        let folded = fold_batch(events.iter().map(|(id, e)| (*id, e)));
        upsert(&mut conn, &table, &folded).await?;
    }
    Ok(started.elapsed())
}

async fn lag(config: &PgStoreConfig, budget: Budget) -> Result<(), PgBenchError> {
    let appender: Arc<dyn EventStore> =
        Arc::new(NotifyingStore::new(PgEventStore::new(config), config));
    let reader: Arc<dyn EventStore> = Arc::new(PgEventStore::new(config));
    let read_side = PgReadSide::connect(config).await?;
    // From now: the catch-up's events are not this workload's.
    let head = log_head(config).await?;
    let handle = read_side
        .exactly_once(
            "bench_lag",
            "bench_lag",
            Totals,
            reader,
            EventCodec::new(Json),
        )?
        .batch_size(BATCH)
        .poll_every(Duration::from_secs(1))
        .spawn();
    handle
        .wait_for(head, Duration::from_secs(600))
        .await
        .map_err(|e| PgBenchError::Workload(e.to_string()))?;

    let codec = EventCodec::<TallyEvent>::new(Json);
    let started = Instant::now();
    let mut appenders = Vec::new();
    for a in 0..APPENDERS {
        let (store, handle, codec) = (Arc::clone(&appender), handle.clone(), codec.clone());
        let until = started + budget.per_workload;
        appenders.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(APPEND_EVERY);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut waits = Vec::new();
            let mut n = 0_u64;
            while Instant::now() < until {
                ticks.tick().await;
                n += 1;
                let event = codec.encode(&TallyEvent::Added(1), EventMetadata::new())?;
                let stream = StreamId::for_entity("tally", &format!("lag{a}-{}", n % 50));
                let out = store
                    .append(&stream, ExpectedVersion::Any, &[event])
                    .await?;
                let committed = Instant::now();
                let position = *out.positions.last().expect("one event");
                let handle = handle.clone();
                waits.push(tokio::spawn(async move {
                    handle
                        .wait_for(position, Duration::from_secs(30))
                        .await
                        .map(|()| committed.elapsed())
                }));
            }
            Ok::<_, BoxError>(waits)
        }));
    }
    let mut samples = Vec::new();
    for appender in appenders {
        let waits = appender
            .await
            .map_err(|e| PgBenchError::Workload(e.to_string()))?
            .map_err(|e| PgBenchError::Workload(e.to_string()))?;
        for wait in waits {
            samples.push(
                wait.await
                    .map_err(|e| PgBenchError::Workload(e.to_string()))?
                    .map_err(|e| PgBenchError::Workload(e.to_string()))?,
            );
        }
    }
    let elapsed = started.elapsed();
    handle.stop().await;
    #[allow(clippy::cast_precision_loss)]
    let appends_per_s = samples.len() as f64 / elapsed.as_secs_f64();
    super::latencies::keep("pg_projection_lag", &samples);
    let p50 = quantile_us(&mut samples, 0.5) / 1000.0;
    let p99 = quantile_us(&mut samples, 0.99) / 1000.0;
    emit(
        "pg_projection_lag",
        json!({
            "appends_per_s": appends_per_s.round(),
            "samples": samples.len(),
            "p50_ms": (p50 * 100.0).round() / 100.0,
            "p99_ms": (p99 * 100.0).round() / 100.0,
        }),
    );
    Ok(())
}
