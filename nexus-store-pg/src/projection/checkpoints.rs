//! Checkpoints of at-least-once projections in the `projections` table.

use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::LogPosition;
use nexus_core::lease::Fence;
use nexus_core::projection::{CheckpointStore, ProjectionError};
use sqlx::PgPool;

use super::sql::ProjectionSql;
use super::{decode, encode};
use crate::PgStoreConfig;
use crate::errors;

/// A [`CheckpointStore`] in the schema's `projections` table; a save under a
/// stale fence is refused in the saving statement.
///
/// ```no_run
/// use nexus_core::LogPosition;
/// use nexus_core::projection::CheckpointStore;
/// # async fn run(config: nexus_store_pg::PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let checkpoints = nexus_store_pg::projection::PgCheckpoints::new(&config);
/// checkpoints.save("mailer", LogPosition::new(9, 9), None).await?;
/// assert_eq!(checkpoints.load("mailer").await?, Some(LogPosition::new(9, 9)));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgCheckpoints {
    pool: PgPool,
    sql: Arc<ProjectionSql>,
}

impl PgCheckpoints {
    /// The checkpoints of `config`'s schema (migrated).
    pub fn new(config: &PgStoreConfig) -> Self {
        Self {
            pool: config.pool.clone(),
            sql: Arc::new(ProjectionSql::new(&config.schema)),
        }
    }
}

#[async_trait]
impl CheckpointStore for PgCheckpoints {
    async fn load(&self, projection: &str) -> Result<Option<LogPosition>, ProjectionError> {
        let row: Option<(String, i64)> = sqlx::query_as(&self.sql.load)
            .bind(projection)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| ProjectionError::Store(errors::store_error(e, &self.pool)))?;
        row.map(|(position, _)| decode(&position)).transpose()
    }

    async fn save(
        &self,
        projection: &str,
        position: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let saved = sqlx::query(&self.sql.record)
            .bind(projection)
            .bind(encode(position))
            .bind(fence.map(|f| f.shard().cast_signed()))
            .bind(fence.map(|f| i64::try_from(f.epoch()).unwrap_or(i64::MAX)))
            .bind(None::<String>)
            .bind(1_i64)
            .bind(false)
            .bind(1_i64)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| ProjectionError::Store(errors::store_error(e, &self.pool)))?;
        match (saved, fence) {
            (Some(_), _) => Ok(()),
            (None, Some(fence)) => Err(ProjectionError::Fenced {
                projection: projection.to_owned(),
                shard: fence.shard(),
                epoch: fence.epoch(),
            }),
            (None, None) => Err(ProjectionError::Moved {
                projection: projection.to_owned(),
            }),
        }
    }
}
