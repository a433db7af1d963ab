//! The Postgres durable-state store.

use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::lease::Fence;
use nexus_core::store::{StateStore, StoredState, VersionedState};
use nexus_core::{ExpectedVersion, StoreError, StreamId};
use sqlx::PgPool;

use crate::PgStoreConfig;
use crate::convert::{FenceKey, conflict, fenced, get, to_i64, to_u64};
use crate::errors::{self, Failure, Stage, store_error};
use crate::sql::states::StateSql;

/// A [`StateStore`] on Postgres: one row per persistence id with a version
/// column. A write is a single conditional statement
/// (`INSERT … ON CONFLICT DO NOTHING` for a new row,
/// `UPDATE … WHERE version = $expected` for an existing one); zero rows
/// written means a conflict, reported with the row's actual version.
///
/// ```no_run
/// use nexus_store_pg::{PgStateStore, PgStoreConfig};
/// # async fn run(config: PgStoreConfig) {
/// let states = PgStateStore::new(&config);
/// # let _ = states;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgStateStore {
    pool: PgPool,
    sql: Arc<StateSql>,
}

impl PgStateStore {
    /// The durable-state store of `config`'s schema.
    pub fn new(config: &PgStoreConfig) -> Self {
        Self {
            pool: config.pool.clone(),
            sql: Arc::new(StateSql::new(&config.schema)),
        }
    }

    /// The error of a write statement that failed after it was sent: a
    /// race the database rolled back is a conflict, as a version mismatch
    /// is.
    async fn write_failed(
        &self,
        error: sqlx::Error,
        id: &StreamId,
        expected: ExpectedVersion,
    ) -> StoreError {
        match errors::classify(error, &self.pool, Stage::WriteSent) {
            Failure::Race | Failure::Unique => self.refused(id, expected).await,
            Failure::Store(error) => error,
        }
    }

    /// The conflict of a write that matched no row.
    async fn refused(&self, id: &StreamId, expected: ExpectedVersion) -> StoreError {
        match self.version(id).await {
            Ok(actual) => conflict(id, expected, actual),
            Err(error) => error,
        }
    }
}

#[async_trait]
impl StateStore for PgStateStore {
    async fn load(&self, id: &StreamId) -> Result<Option<StoredState>, StoreError> {
        let row = sqlx::query(&self.sql.load)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        row.map(|row| {
            Ok(StoredState {
                version: to_u64(get(&row, 0)?)?,
                payload: get(&row, 1)?,
            })
        })
        .transpose()
    }

    async fn save(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let query = match expected.pinned() {
            None => sqlx::query_scalar(&self.sql.upsert),
            Some(0) => sqlx::query_scalar(&self.sql.insert),
            Some(_) => sqlx::query_scalar(&self.sql.update),
        };
        let mut query = query.bind(id.as_str()).bind(payload);
        if let Some(version) = expected.pinned().filter(|v| *v > 0) {
            query = query.bind(to_i64(version)?);
        }
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        let written = query.fetch_optional(&mut *conn).await;
        // Released before a refusal reads the version on another one.
        drop(conn);
        match written {
            Ok(Some(version)) => to_u64(version),
            Ok(None) => Err(self.refused(id, expected).await),
            Err(error) => Err(self.write_failed(error, id, expected).await),
        }
    }

    /// Writes in the same statement that checks `fence` against the lease
    /// table of the store's schema: a stale epoch or an expired lease
    /// writes nothing and fails with [`StoreError::Fenced`] (a version
    /// conflict under a current fence is still a conflict).
    /// A fence that is no longer current by its holder's own clock is
    /// refused the same way without a round trip.
    async fn save_fenced(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let key = FenceKey::of(id, fence)?;
        let sql = match expected.pinned() {
            None => &self.sql.upsert_fenced,
            Some(0) => &self.sql.insert_fenced,
            Some(_) => &self.sql.update_fenced,
        };
        let pinned = expected
            .pinned()
            .filter(|v| *v > 0)
            .map(to_i64)
            .transpose()?;
        let query = sqlx::query_as(sql)
            .bind(id.as_str())
            .bind(payload)
            .bind(pinned)
            .bind(key.shard)
            .bind(key.epoch);
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        let row = query.fetch_one(&mut *conn).await;
        drop(conn);
        let (written, current): (Option<i64>, bool) = match row {
            Ok(row) => row,
            Err(error) => return Err(self.write_failed(error, id, expected).await),
        };
        match (written, current) {
            (_, false) => Err(fenced(id, fence)),
            (Some(version), true) => to_u64(version),
            (None, true) => Err(self.refused(id, expected).await),
        }
    }

    /// Reads only the version column.
    async fn load_versioned(&self, id: &StreamId) -> Result<VersionedState, StoreError> {
        let row = sqlx::query(&self.sql.load_versioned)
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        match row {
            None => Ok(VersionedState {
                version: 0,
                payload: None,
            }),
            Some(row) => Ok(VersionedState {
                version: to_u64(get(&row, 0)?)?,
                payload: get(&row, 1)?,
            }),
        }
    }

    async fn version(&self, id: &StreamId) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(&self.sql.version)
            .bind(id.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        to_u64(version)
    }

    async fn delete(&self, id: &StreamId, expected: ExpectedVersion) -> Result<(), StoreError> {
        let pinned = expected.pinned().map(to_i64).transpose()?;
        if pinned == Some(0) {
            // Deleting a row that must not exist: nothing to do if it does not.
            let actual = self.version(id).await?;
            return if actual == 0 {
                Ok(())
            } else {
                Err(conflict(id, expected, actual))
            };
        }
        let deleted = sqlx::query(&self.sql.delete)
            .bind(id.as_str())
            .bind(pinned)
            .execute(&self.pool)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        if deleted.rows_affected() == 1 || pinned.is_none() {
            Ok(())
        } else {
            Err(self.refused(id, expected).await)
        }
    }
}
