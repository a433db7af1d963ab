//! `raw_commit_per_s` of `pg_hot_entity`: the rate at which one connection
//! commits one single-row `INSERT` per transaction, one after another,
//! in plain sqlx. Each commit waits for its own WAL flush, so this is the
//! bound of a design that commits once per command; group commit inside
//! the entity is what lets a hot key go past it.

use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::Throughput;

/// Commits single-row inserts into a fresh table of `schema` on one
/// connection of `pool`, sequentially, until `budget` has passed. The
/// table is dropped afterwards.
///
/// ```no_run
/// use std::time::Duration;
/// # async fn run(pool: sqlx::PgPool) -> Result<(), sqlx::Error> {
/// let commits = nexus_examples::bench::raw_commit::sequential_commits(&pool, "public", Duration::from_secs(1)).await?;
/// println!("{} commits/s", commits.per_second());
/// # Ok(())
/// # }
/// ```
pub async fn sequential_commits(
    pool: &PgPool,
    schema: &str,
    budget: Duration,
) -> Result<Throughput, sqlx::Error> {
    let table = format!("\"{schema}\".raw_commits_{}", uuid::Uuid::new_v4().simple());
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(&format!(
        "CREATE TABLE {table} (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             stream_id text NOT NULL,
             payload bytea NOT NULL)"
    ))
    .execute(&mut *conn)
    .await?;
    let insert = format!("INSERT INTO {table} (stream_id, payload) VALUES ($1, $2)");
    let started = Instant::now();
    let mut ok = 0;
    while started.elapsed() < budget {
        // Autocommit: the statement is its transaction, one round trip,
        // as an append is; its commit waits for the WAL flush.
        sqlx::query(&insert)
            .bind("tally-hot")
            .bind(&[1_u8][..])
            .execute(&mut *conn)
            .await?;
        ok += 1;
    }
    let elapsed = started.elapsed();
    sqlx::raw_sql(&format!("DROP TABLE {table}"))
        .execute(&mut *conn)
        .await?;
    Ok(Throughput {
        ok,
        failed: 0,
        elapsed,
    })
}
