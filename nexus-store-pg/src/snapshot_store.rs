//! The Postgres snapshot store.

use std::num::NonZeroUsize;
use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::lease::Fence;
use nexus_core::store::{Snapshot, SnapshotStore};
use nexus_core::{StoreError, StreamId};
use sqlx::PgPool;

use crate::PgStoreConfig;
use crate::convert::{FenceKey, fenced, get, to_i64, to_u64};
use crate::errors::{store_error, write_error};
use crate::sql::snapshots::SnapshotSql;
use crate::wire::Timestamp;

/// A [`SnapshotStore`] on Postgres: one row per (stream, version); saving
/// and pruning to `keep_last` is one statement, after a transaction lock on
/// the stream's snapshots, so that two concurrent saves of one stream prune
/// in turn (each statement sees the other's snapshot) and never keep more
/// than `keep_last`.
///
/// ```no_run
/// use nexus_store_pg::{PgSnapshotStore, PgStoreConfig};
/// # async fn run(config: PgStoreConfig) {
/// let snapshots = PgSnapshotStore::new(&config);
/// # let _ = snapshots;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgSnapshotStore {
    pool: PgPool,
    sql: Arc<SnapshotSql>,
}

impl PgSnapshotStore {
    /// The snapshot store of `config`'s schema.
    pub fn new(config: &PgStoreConfig) -> Self {
        Self {
            pool: config.pool.clone(),
            sql: Arc::new(SnapshotSql::new(&config.schema)),
        }
    }

    /// A transaction holding the lock on `stream`'s snapshots. Nothing is
    /// written yet, so its failures are not ambiguous.
    async fn locked(
        &self,
        stream: &StreamId,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        sqlx::query(&self.sql.lock)
            .bind(stream.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        Ok(tx)
    }
}

#[async_trait]
impl SnapshotStore for PgSnapshotStore {
    async fn save(
        &self,
        snapshot: Snapshot,
        keep_last: Option<NonZeroUsize>,
    ) -> Result<(), StoreError> {
        let keep = keep_last.map(|k| i64::try_from(k.get()).unwrap_or(i64::MAX));
        let query = sqlx::query(&self.sql.save)
            .bind(snapshot.stream_id.as_str())
            .bind(to_i64(snapshot.version)?)
            .bind(&snapshot.payload)
            .bind(Timestamp(snapshot.taken_at))
            .bind(keep);
        let mut tx = self.locked(&snapshot.stream_id).await?;
        query
            .execute(&mut *tx)
            .await
            .map_err(|e| write_error(e, &self.pool))?;
        tx.commit().await.map_err(|e| write_error(e, &self.pool))?;
        Ok(())
    }

    /// Saves and prunes in the same statement that checks `fence` against
    /// the lease table of the store's schema: a stale epoch or an expired
    /// lease writes and deletes nothing and fails with
    /// [`StoreError::Fenced`].
    /// A fence that is no longer current by its holder's own clock is
    /// refused the same way without a round trip.
    async fn save_fenced(
        &self,
        snapshot: Snapshot,
        keep_last: Option<NonZeroUsize>,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        let key = FenceKey::of(&snapshot.stream_id, fence)?;
        let keep = keep_last.map(|k| i64::try_from(k.get()).unwrap_or(i64::MAX));
        let query = sqlx::query_scalar(&self.sql.save_fenced)
            .bind(snapshot.stream_id.as_str())
            .bind(to_i64(snapshot.version)?)
            .bind(&snapshot.payload)
            .bind(Timestamp(snapshot.taken_at))
            .bind(keep)
            .bind(key.shard)
            .bind(key.epoch);
        let mut tx = self.locked(&snapshot.stream_id).await?;
        let current: bool = query
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| write_error(e, &self.pool))?;
        tx.commit().await.map_err(|e| write_error(e, &self.pool))?;
        if current {
            Ok(())
        } else {
            Err(fenced(&snapshot.stream_id, fence))
        }
    }

    async fn load_latest(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        let row = sqlx::query(&self.sql.load_latest)
            .bind(stream.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        let Some(row) = row else { return Ok(None) };
        let taken_at: Timestamp = get(&row, 2)?;
        Ok(Some(Snapshot {
            stream_id: stream.clone(),
            version: to_u64(get(&row, 0)?)?,
            payload: get(&row, 1)?,
            taken_at: taken_at.0,
        }))
    }

    async fn versions(&self, stream: &StreamId) -> Result<Vec<u64>, StoreError> {
        let versions: Vec<i64> = sqlx::query_scalar(&self.sql.versions)
            .bind(stream.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| store_error(e, &self.pool))?;
        versions.into_iter().map(to_u64).collect()
    }
}
