//! Exactly-once delivery into Postgres read models.

use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::lease::Fence;
use nexus_core::projection::{Batch, ProjectionError, Sink};
use nexus_core::{BoxError, DomainEvent, LogPosition};
use sqlx::{PgConnection, PgPool};

use super::sql::{LOCK_SETUP, ProjectionSql};
use super::{decode, encode};
use crate::config::Schema;
use crate::errors;

/// A read model in Postgres, fed exactly once.
///
/// The runner calls [`handle`](Self::handle) with each batch inside an open
/// transaction, then records the checkpoint in that same transaction and
/// commits: the read model and the position change together or not at all.
/// `table` is the schema-qualified, quoted name of the physical table to
/// write (`"schema"."balances__g1"`); readers query the view of the
/// projection's table name (`"schema"."balances"`), which a rebuild swaps.
/// Name indexes after `table` (or not at all), since a rebuild creates a
/// second table beside the first.
///
/// See the [module example](super).
#[async_trait]
pub trait PgProjection: Send + Sync + 'static {
    /// The events it reads.
    type Event: DomainEvent;

    /// Creates `table` if it does not exist (`CREATE TABLE IF NOT EXISTS`).
    async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError>;

    /// Applies `batch` to `table` on `tx`, the batch's open transaction.
    /// Batch the writes (one `UNNEST` upsert per batch is fastest); do not
    /// commit or roll back.
    async fn handle(
        &self,
        tx: &mut PgConnection,
        table: &str,
        batch: &Batch<Self::Event>,
    ) -> Result<(), BoxError>;
}

/// The exactly-once [`Sink`] of a [`PgProjection`]; made by
/// [`PgReadSide::exactly_once`](super::PgReadSide::exactly_once).
pub struct PgSink<P> {
    name: String,
    table: String,
    schema: Schema,
    pool: PgPool,
    sql: Arc<ProjectionSql>,
    projection: P,
    /// The generation readers see, and the position recorded for it as this
    /// instance last read or wrote it (the compare-and-set of `RECORD`).
    generation: i64,
    recorded: Option<String>,
    /// The generation a rebuild fills, while one runs.
    rebuilding: Option<i64>,
    prepared: bool,
}

impl<P> std::fmt::Debug for PgSink<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSink")
            .field("name", &self.name)
            .field("table", &self.table)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// A table name: a plain lowercase identifier, so it is safe in SQL text.
pub(crate) fn valid_table(table: &str) -> bool {
    let mut bytes = table.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && table.len() <= 40
}

/// Runs DDL statements one by one on `conn` (`raw_sql` would batch them,
/// but its executor bound makes the future not `Send`).
async fn execute_all(conn: &mut PgConnection, statements: &[String]) -> Result<(), sqlx::Error> {
    for statement in statements {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    Ok(())
}

impl<P: PgProjection> PgSink<P> {
    pub(crate) fn new(
        name: String,
        table: String,
        schema: Schema,
        pool: PgPool,
        sql: Arc<ProjectionSql>,
        projection: P,
    ) -> Self {
        Self {
            name,
            table,
            schema,
            pool,
            sql,
            projection,
            generation: 1,
            recorded: None,
            rebuilding: None,
            prepared: false,
        }
    }

    /// The quoted view readers query.
    fn view(&self) -> String {
        format!("{}.\"{}\"", self.schema.quoted(), self.table)
    }

    /// The quoted physical table of `generation`.
    fn physical(&self, generation: i64) -> String {
        format!("{}.\"{}__g{generation}\"", self.schema.quoted(), self.table)
    }

    fn failed(&self, error: sqlx::Error) -> ProjectionError {
        ProjectionError::Store(errors::store_error(error, &self.pool))
    }

    fn refused(&self, fence: Option<&Fence>) -> ProjectionError {
        match fence {
            Some(fence) => ProjectionError::Fenced {
                projection: self.name.clone(),
                shard: fence.shard(),
                epoch: fence.epoch(),
            },
            None => ProjectionError::Moved {
                projection: self.name.clone(),
            },
        }
    }

    /// Creates the generation's table and points the view at it, under a
    /// lock so that two starting processes do not race on the DDL.
    async fn prepare(&self, generation: i64, replace_view: bool) -> Result<(), ProjectionError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        sqlx::query(LOCK_SETUP)
            .bind(format!(
                "nexus projection {} {}",
                self.schema.as_str(),
                self.name
            ))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.failed(e))?;
        let table = self.physical(generation);
        self.projection
            .create(&mut tx, &table)
            .await
            .map_err(ProjectionError::Handler)?;
        if replace_view {
            let view = self.view();
            let statements = [
                format!("DROP VIEW IF EXISTS {view}"),
                format!("CREATE VIEW {view} AS SELECT * FROM {table}"),
            ];
            execute_all(&mut tx, &statements)
                .await
                .map_err(|e| self.failed(e))?;
        }
        tx.commit().await.map_err(|e| self.failed(e))
    }

    /// Records `position` for `generation` on `conn` (inside the batch's
    /// transaction), fenced and compared with what this instance recorded.
    async fn record(
        &self,
        conn: &mut PgConnection,
        position: &str,
        generation: i64,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let recorded = sqlx::query(&self.sql.record)
            .bind(&self.name)
            .bind(position)
            .bind(fence.map(|f| f.shard().cast_signed()))
            .bind(fence.map(|f| i64::try_from(f.epoch()).unwrap_or(i64::MAX)))
            .bind(self.recorded.as_deref())
            .bind(generation)
            .bind(true)
            .bind(self.generation)
            .fetch_optional(conn)
            .await
            .map_err(|e| self.failed(e))?;
        match recorded {
            Some(_) => Ok(()),
            None => Err(self.refused(fence)),
        }
    }
}

#[async_trait]
impl<P: PgProjection> Sink<P::Event> for PgSink<P> {
    async fn load(&mut self) -> Result<Option<LogPosition>, ProjectionError> {
        let row: Option<(String, i64)> = sqlx::query_as(&self.sql.load)
            .bind(&self.name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        self.rebuilding = None;
        let position = if let Some((position, generation)) = &row {
            self.generation = *generation;
            self.recorded = Some(position.clone());
            Some(decode(position)?)
        } else {
            self.generation = 1;
            self.recorded = None;
            None
        };
        if !self.prepared {
            self.prepare(self.generation, true).await?;
            self.prepared = true;
        }
        Ok(position)
    }

    async fn deliver(
        &mut self,
        batch: Batch<P::Event>,
        through: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let target = self.rebuilding.unwrap_or(self.generation);
        let table = self.physical(target);
        let position = encode(through);
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        if !batch.is_empty() {
            self.projection
                .handle(&mut tx, &table, &batch)
                .await
                .map_err(ProjectionError::Handler)?;
        }
        if self.rebuilding.is_some() {
            let recorded = sqlx::query(&self.sql.record_rebuild)
                .bind(&self.name)
                .bind(&position)
                .bind(fence.map(|f| f.shard().cast_signed()))
                .bind(fence.map(|f| i64::try_from(f.epoch()).unwrap_or(i64::MAX)))
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.failed(e))?;
            if recorded.is_none() {
                return Err(self.refused(fence));
            }
        } else {
            self.record(&mut tx, &position, self.generation, fence)
                .await?;
        }
        // Dropping `tx` on any error above rolls the read model back too.
        tx.commit().await.map_err(|e| self.failed(e))?;
        if self.rebuilding.is_none() {
            self.recorded = Some(position);
        }
        Ok(())
    }

    async fn begin_rebuild(&mut self, fence: Option<&Fence>) -> Result<(), ProjectionError> {
        if fence.is_some_and(|f| !f.is_current()) {
            return Err(self.refused(fence));
        }
        let next = self.generation + 1;
        // A rebuild that crashed left its table half-built: start it afresh.
        sqlx::query(&format!("DROP TABLE IF EXISTS {}", self.physical(next)))
            .execute(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        self.prepare(next, false).await?;
        self.rebuilding = Some(next);
        Ok(())
    }

    async fn finish_rebuild(
        &mut self,
        through: LogPosition,
        fence: Option<&Fence>,
    ) -> Result<(), ProjectionError> {
        let Some(next) = self.rebuilding else {
            return Err(ProjectionError::Unsupported(
                "no rebuild is running".to_owned(),
            ));
        };
        let position = encode(through);
        let (view, old, new) = (
            self.view(),
            self.physical(self.generation),
            self.physical(next),
        );
        let mut tx = self.pool.begin().await.map_err(|e| self.failed(e))?;
        self.record(&mut tx, &position, next, fence).await?;
        // DDL is transactional: readers see the old view until this commits,
        // then the new one, never a half-built table.
        let statements = [
            format!("DROP VIEW IF EXISTS {view}"),
            format!("CREATE VIEW {view} AS SELECT * FROM {new}"),
            format!("DROP TABLE IF EXISTS {old}"),
        ];
        execute_all(&mut tx, &statements)
            .await
            .map_err(|e| self.failed(e))?;
        tx.commit().await.map_err(|e| self.failed(e))?;
        self.generation = next;
        self.recorded = Some(position);
        self.rebuilding = None;
        Ok(())
    }
}
