//! Lag and horizon diagnostics of a Postgres log.

use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::projection::LogProbe;
use nexus_core::{LogPosition, StoreError};
use sqlx::PgPool;

use super::sql::ProjectionSql;
use crate::PgStoreConfig;
use crate::errors;

/// A [`LogProbe`] on the schema's `events` table: lag in events and seconds,
/// and the transaction that holds the horizon back, named by backend pid,
/// application, state and age, or by a prepared transaction's gid.
///
/// ```no_run
/// use nexus_core::LogPosition;
/// use nexus_core::projection::LogProbe;
/// # async fn run(config: nexus_store_pg::PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let probe = nexus_store_pg::projection::PgLogProbe::new(&config);
/// let (events, seconds) = probe.lag(LogPosition::START).await?;
/// println!("{events} events behind, the oldest {seconds} s old");
/// if let Some(blocker) = probe.held_by(LogPosition::START).await? {
///     println!("horizon held by {blocker}");
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgLogProbe {
    pool: PgPool,
    sql: Arc<ProjectionSql>,
}

impl PgLogProbe {
    /// The probe of `config`'s schema.
    pub fn new(config: &PgStoreConfig) -> Self {
        Self {
            pool: config.pool.clone(),
            sql: Arc::new(ProjectionSql::new(&config.schema)),
        }
    }
}

fn sequence(position: LogPosition) -> i64 {
    i64::try_from(position.sequence).unwrap_or(i64::MAX)
}

fn epoch(position: LogPosition) -> i32 {
    i32::try_from(position.epoch).unwrap_or(i32::MAX)
}

#[async_trait]
impl LogProbe for PgLogProbe {
    async fn lag(&self, position: LogPosition) -> Result<(u64, f64), StoreError> {
        let (count, seconds): (i64, f64) = sqlx::query_as(&self.sql.lag)
            .bind(position.commit.to_string())
            .bind(sequence(position))
            .bind(epoch(position))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| errors::store_error(e, &self.pool))?;
        Ok((u64::try_from(count).unwrap_or(0), seconds.max(0.0)))
    }

    async fn held_by(&self, position: LogPosition) -> Result<Option<String>, StoreError> {
        let (waiting, backend, prepared, xmin): (
            bool,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = sqlx::query_as(&self.sql.held_by)
            .bind(position.commit.to_string())
            .bind(sequence(position))
            .bind(epoch(position))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| errors::store_error(e, &self.pool))?;
        if !waiting {
            return Ok(None);
        }
        Ok(Some(backend.or(prepared).unwrap_or_else(|| {
            format!("transaction {}", xmin.unwrap_or_else(|| "?".to_owned()))
        })))
    }
}
