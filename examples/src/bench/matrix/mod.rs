//! `pg_matrix`: appends against Postgres for 1, 10 and 50 writers × 1, 10
//! and 100 events per append, each cell beside its raw baseline from the
//! same run, one JSON line per cell.
//!
//! Each writer owns one [`Journal`] and sends it one command at a time, so
//! every command is one append of `events_per_append` events
//! (`appends_per_s`, `events_per_s`). Beside it, in the same cell, the raw
//! baseline: as many writers doing plain sqlx transactions of the same
//! rows, one `INSERT … UNNEST` each, into a table with the event log's
//! main columns and keys (`raw_appends_per_s`, `raw_events_per_s`). Both sides
//! share one pool with a connection per writer, so a cell's concurrency is
//! its writers on either side, and they take [`turns`]. `ratio` is Nexus's
//! events/s over the raw ones; `payload_bytes` is the size of one event's
//! encoded payload. Each side of a cell runs for `--seconds`, so the whole
//! matrix takes 18 × `--seconds` plus set-up.

mod journal;
mod raw;

pub use journal::{Journal, JournalError, JournalEvent, NOTE, Note};

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::{ActorSystem, Entities, EventMetadata, EventStore, WhenFull};
use nexus_store_pg::{PgEventStore, PgStoreConfig};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;

use super::postgres::{PgBenchError, in_scratch_schema, workload_error};
use super::{Budget, Selection, closed_loop, emit, turns};
use raw::RawWriters;

/// The writers of the matrix's rows.
pub const WRITERS: [usize; 3] = [1, 10, 50];
/// The events per append of the matrix's columns.
pub const EVENTS_PER_APPEND: [usize; 3] = [1, 10, 100];

/// Runs `pg_matrix` against `database_url` when `only` selects it, in a
/// schema of its own that is dropped afterwards.
///
/// ```no_run
/// use std::time::Duration;
/// use nexus_examples::bench::{Budget, Selection, matrix};
/// # async fn run() -> Result<(), nexus_examples::bench::postgres::PgBenchError> {
/// let budget = Budget { per_workload: Duration::from_secs(2) };
/// let only = Selection::only(vec!["pg_matrix".to_owned()]);
/// matrix::run("postgres://postgres@127.0.0.1:5432/test", budget, &only).await?;
/// # Ok(())
/// # }
/// ```
pub async fn run(database_url: &str, budget: Budget, only: &Selection) -> Result<(), PgBenchError> {
    if !only.wants("pg_matrix") {
        return Ok(());
    }
    let most = WRITERS.into_iter().max().unwrap_or(1);
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(most).unwrap_or(u32::MAX))
        .min_connections(u32::try_from(most).unwrap_or(u32::MAX))
        .acquire_timeout(Duration::from_secs(30))
        .connect(database_url)
        .await?;
    in_scratch_schema(&pool, "nexus_matrix", |config| async move {
        sqlx::raw_sql(&raw::create_table(config.schema_name().as_str()))
            .execute(config.pool())
            .await?;
        for writers in WRITERS {
            for events in EVENTS_PER_APPEND {
                cell(&config, budget, writers, events).await?;
            }
        }
        Ok(())
    })
    .await
}

/// One cell at `writers` × `events`: the raw baseline and Nexus in turns.
async fn cell(
    config: &PgStoreConfig,
    budget: Budget,
    writers: usize,
    events: usize,
) -> Result<(), PgBenchError> {
    let name = format!("w{writers}e{events}");
    let codec = EventCodec::<JournalEvent>::new(Bincode);
    let payload = codec
        .encode(&JournalEvent::Noted(NOTE.to_owned()), EventMetadata::new())
        .map_err(workload_error)?
        .payload;
    let payload_bytes = payload.len();
    let raw = Arc::new(RawWriters::new(
        config.pool().clone(),
        config.schema_name().as_str(),
        &name,
        writers,
        events,
        payload,
    ));
    let system = ActorSystem::new();
    let store: Arc<dyn EventStore> = Arc::new(PgEventStore::new(config));
    let journals = Entities::<Journal>::builder(&system)
        .event_sourced(store, codec)
        .mailbox_capacity(1_024)
        .when_full(WhenFull::Wait)
        .ask_timeout(Duration::from_secs(30))
        .build()
        .map_err(workload_error)?;
    let refs: Arc<[_]> = (0..writers)
        .map(|writer| journals.of(format!("{name}-{writer}")))
        .collect();
    // Recovered once, so that the timed loop measures appends alone.
    for journal in refs.iter() {
        journal.ask(Note(1)).await.map_err(workload_error)?;
    }
    // The two sides take turns, so that a slow spell of the shared disk
    // falls on both rather than on whichever ran then.
    let (mut raw_turns, mut framework_turns) = (Vec::new(), Vec::new());
    let turn = turns::turn(budget.per_workload);
    for _ in 0..turns::TURNS {
        let raw = Arc::clone(&raw);
        raw_turns.push(
            closed_loop(writers, turn, move |writer| {
                let raw = Arc::clone(&raw);
                async move { raw.write(writer).await }
            })
            .await,
        );
        let refs = Arc::clone(&refs);
        framework_turns.push(
            closed_loop(writers, turn, move |writer| {
                let journal = refs[writer].clone();
                async move { journal.ask(Note(events)).await }
            })
            .await,
        );
    }
    system.shutdown(Duration::from_secs(5)).await;
    let (raw_run, framework) = (
        turns::combined(&raw_turns),
        turns::combined(&framework_turns),
    );

    #[allow(clippy::cast_precision_loss)]
    let per_append = events as f64;
    let (appends, raw_appends) = (framework.per_second(), raw_run.per_second());
    emit(
        "pg_matrix",
        json!({
            "writers": writers,
            "events_per_append": events,
            "payload_bytes": payload_bytes,
            "appends_per_s": appends,
            "events_per_s": appends * per_append,
            "raw_appends_per_s": raw_appends,
            "raw_events_per_s": raw_appends * per_append,
            "ratio": appends / raw_appends,
            "failed": framework.failed + raw_run.failed,
        }),
    );
    Ok(())
}
