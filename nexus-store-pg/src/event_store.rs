//! The Postgres event store.

use std::collections::{BTreeMap, HashMap};
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::lease::Fence;
use nexus_core::store::{ReplayVisitor, StreamHead};
use nexus_core::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, ReplayEvent, StoreError, StreamId,
};
use sqlx::PgPool;
use sqlx::postgres::PgRow;
use uuid::Uuid;

use crate::batch::{Batch, check_ids};
use crate::coalesce::{Coalescer, Via};
use crate::convert::{FenceKey, conflict, corrupt, fenced, get, get_trusted, to_i64, to_u64};
use crate::errors::{self, Failure, Stage};
use crate::first_pages::{self, FirstPages, Reader, Turn};
use crate::sql::events::EventSql;
use crate::wire::{Timestamp, TxId};
use crate::{PayloadFormat, PgStoreConfig};

/// An [`EventStore`] on Postgres.
///
/// - **Append** is one statement per batch: the events travel as arrays and
///   are inserted with `UNNEST`, after the stream's head is checked against
///   the expected version in the same statement. A stale version, a
///   concurrent writer (SQLSTATE 23505 on `(stream_id, version)`) or a reused
///   event id stores nothing; the store then reads where the ids are stored
///   to tell an idempotent retry (answered with the original outcome) from a
///   reused id or a version conflict.
/// - **Global log**: a position is `(transaction id, sequence)`, and
///   [`read_all`](EventStore::read_all) only returns rows of transactions
///   below the snapshot's xmin, the oldest transaction still running. Every
///   transaction that can still commit has an id at or above it, so nothing
///   can later appear before a position a reader has passed: a late commit
///   causes lag, never a skip.
///
/// Clones share the pool.
///
/// ```no_run
/// use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use nexus_store_pg::{PgEventStore, PgStoreConfig};
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test").await?;
/// let config = PgStoreConfig::new(pool).schema("docs")?;
/// config.migrate().await?;
/// let store = PgEventStore::new(&config);
/// let stream = StreamId::new("wallet-alice");
/// let event = NewEvent::new("wallet.deposited", 1, b"{}".to_vec());
/// let out = store.append(&stream, ExpectedVersion::Any, &[event]).await?;
/// assert!(out.version >= 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct PgEventStore {
    pub(crate) pool: PgPool,
    pub(crate) sql: Arc<EventSql>,
    catch_up_wait: Duration,
    pub(crate) payloads: PayloadFormat,
    /// `None` when appends are not coalesced (and in the coalescing
    /// workers' own store).
    coalescer: Option<Arc<Coalescer>>,
    /// Replays that start while another reads, read together.
    first_pages: Arc<FirstPages>,
    first_pages_reader: Reader,
}

impl PgEventStore {
    /// Runs a stream query (`$1` stream id, `$2` first version) and converts
    /// each row as it arrives, rather than collecting all rows first: a long
    /// stream (a recovery) then never holds every raw row and every event at
    /// once.
    async fn stream_rows<T>(
        &self,
        sql: &str,
        stream: &StreamId,
        from_version: u64,
        convert: impl Fn(&PgRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let mut rows = sqlx::query(sql)
            .bind(stream.as_str())
            .bind(from)
            .fetch(&self.pool);
        let mut out = Vec::new();
        while let Some(row) = poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
            let row = row.map_err(|e| self.failed(e))?;
            out.push(convert(&row)?);
        }
        Ok(out)
    }

    /// The event store of `config`'s schema (migrated with
    /// [`PgStoreConfig::migrate`]).
    pub fn new(config: &PgStoreConfig) -> Self {
        let sql = Arc::new(EventSql::new(&config.schema));
        Self {
            pool: config.pool.clone(),
            catch_up_wait: config.catch_up_wait,
            payloads: config.payloads,
            coalescer: Coalescer::new(config.coalescing, config.pool.options()),
            first_pages: Arc::default(),
            first_pages_reader: Reader {
                pool: config.pool.clone(),
                sql: Arc::from(sql.replay_first_pages.as_str()),
            },
            sql,
        }
    }

    /// The rows of the replay statement `sql` from `from_version`, handed
    /// to `visit`.
    async fn stream_replay(
        &self,
        sql: &str,
        stream: &StreamId,
        from_version: u64,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), StoreError> {
        crate::replay::replay(&self.pool, sql, stream, from_version, visit, |e| {
            self.failed(e)
        })
        .await
    }

    /// This store without coalescing: what a coalescing worker writes with.
    pub(crate) fn direct(&self) -> Self {
        Self {
            coalescer: None,
            ..self.clone()
        }
    }

    fn failed(&self, error: sqlx::Error) -> StoreError {
        errors::store_error(error, &self.pool)
    }

    /// What holds the global log's horizon back, if anything: how many
    /// committed events readers cannot be handed yet, and the oldest
    /// running (or prepared) transaction of the server, in any database,
    /// with its pid and age. A reader that lags with a large
    /// [`held_back`](CatchUpLag::held_back) is waiting for that
    /// transaction; `idle_in_transaction_session_timeout` ends forgotten
    /// sessions, a forgotten `PREPARE TRANSACTION` needs `ROLLBACK
    /// PREPARED`. Seeing other users' sessions needs `pg_read_all_stats`.
    ///
    /// ```no_run
    /// # async fn run(store: nexus_store_pg::PgEventStore) -> Result<(), nexus_core::StoreError> {
    /// let lag = store.catch_up_lag().await?;
    /// if let Some(blocker) = lag.blocker.filter(|_| lag.held_back > 0) {
    ///     eprintln!("{} events held back by pid {:?}, {:?} old", lag.held_back, blocker.pid, blocker.age);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn catch_up_lag(&self) -> Result<CatchUpLag, StoreError> {
        let row = sqlx::query(&self.sql.horizon_lag)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        let held_back = to_u64(get(&row, 0)?)?;
        let age: Option<f64> = get(&row, 5)?;
        let blocker = match (get::<Option<String>>(&row, 3)?, age) {
            (Some(state), Some(age)) => Some(HorizonBlocker {
                pid: get(&row, 1)?,
                database: get(&row, 2)?,
                state,
                prepared_gid: get(&row, 4)?,
                age: Duration::from_secs_f64(age.max(0.0)),
            }),
            _ => None,
        };
        Ok(CatchUpLag { held_back, blocker })
    }

    /// The statement for `expected`, fenced or not.
    fn append_sql(&self, expected: ExpectedVersion, fenced: bool) -> &str {
        let sql = &self.sql;
        match (expected.pinned(), fenced) {
            (None, false) => &sql.append_any,
            (Some(0), false) => &sql.append_new,
            (Some(_), false) => &sql.append_exact,
            (None, true) => &sql.append_any_fenced,
            (Some(0), true) => &sql.append_new_fenced,
            (Some(_), true) => &sql.append_exact_fenced,
        }
    }

    /// Runs the append statement once, fenced when `fence` is given.
    async fn try_append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        batch: &Batch<'_>,
        fence: Option<FenceKey>,
        via: &mut Via<'_>,
    ) -> Result<Attempt, StoreError> {
        let head = expected.pinned().map(to_i64).transpose()?;
        let query = sqlx::query(self.append_sql(expected, fence.is_some()))
            .bind(stream.as_str())
            .bind(head);
        let mut query = batch.bind_to(query);
        if let Some(key) = fence {
            query = query.bind(key.shard).bind(key.epoch);
        }
        // Acquired first: a failure to get a connection sent nothing, one
        // after the statement went out may have committed.
        let mut conn = via
            .connection(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        let rows = query.fetch_all(conn.get()).await;
        if let Err(error) = &rows {
            conn.failed(error);
        }
        match rows {
            Ok(rows) if fence.is_some() => fenced_attempt(&rows),
            Ok(rows) if rows.is_empty() => Ok(Attempt::Refused),
            Ok(rows) => outcome(&rows).map(Attempt::Stored),
            // Under a fence too: the fence passed, or nothing would have
            // been inserted to violate a constraint.
            Err(error) => match errors::classify(error, &self.pool, Stage::WriteSent) {
                Failure::Unique => Ok(Attempt::Refused),
                Failure::Race => Ok(Attempt::Raced),
                Failure::Store(error) => Err(error),
            },
        }
    }

    /// Appends `events`, under `fence` when given: shared by
    /// [`append`](EventStore::append) and
    /// [`append_fenced`](EventStore::append_fenced).
    pub(crate) async fn append_batch(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: Option<&Fence>,
        mut via: Via<'_>,
    ) -> Result<AppendOutcome, StoreError> {
        expected.pinned().map(to_i64).transpose()?;
        let key = fence.map(|f| FenceKey::of(stream, f)).transpose()?;
        if events.is_empty() {
            let actual = match (key, fence) {
                (Some(key), Some(fence)) => self.fenced_head(stream, key, fence).await?,
                _ => self.stream_version(stream).await?,
            };
            return if expected.accepts(actual) {
                Ok(AppendOutcome {
                    version: actual,
                    positions: Vec::new(),
                })
            } else {
                Err(conflict(stream, expected, actual))
            };
        }
        let batch = Batch::new(stream, events, self.payloads)?;
        // Only a race the database rolled back (a serialization failure or
        // a deadlock) runs the statement again, a few times: the head's row
        // lock orders every other writer, so `Any` never loops.
        for _ in 0..RACE_RETRIES {
            match self
                .try_append(stream, expected, &batch, key, &mut via)
                .await?
            {
                Attempt::Stored(out) => return Ok(out),
                Attempt::Fenced => {
                    let fence = fence.expect("only a fenced append is fenced");
                    return Err(fenced(stream, fence));
                }
                Attempt::Refused => {
                    return self.refused(stream, expected, events, &batch.ids).await;
                }
                Attempt::Raced => {
                    let actual = self.stream_version(stream).await?;
                    if !expected.accepts(actual) {
                        return self.refused(stream, expected, events, &batch.ids).await;
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
        let actual = self.stream_version(stream).await?;
        Err(conflict(stream, expected, actual))
    }

    /// Why a batch was not stored: an idempotent retry (its original
    /// outcome), a reused id, an archived stream, or a version conflict.
    pub(crate) async fn refused(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        ids: &[Uuid],
    ) -> Result<AppendOutcome, StoreError> {
        if let Some(original) = self.replayed(stream, expected, events, ids).await? {
            return Ok(original);
        }
        match self.stream_head(stream).await? {
            Some(head) if head.archived => Err(StoreError::StreamArchived {
                stream: stream.clone(),
            }),
            head => Err(conflict(stream, expected, head.map_or(0, |h| h.version))),
        }
    }

    /// The stream's version, or [`StoreError::Fenced`] when `fence` is
    /// stale at the database.
    async fn fenced_head(
        &self,
        stream: &StreamId,
        key: FenceKey,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let (version, current): (i64, bool) = sqlx::query_as(&self.sql.fenced_head)
            .bind(stream.as_str())
            .bind(key.shard)
            .bind(key.epoch)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        if current {
            to_u64(version)
        } else {
            Err(fenced(stream, fence))
        }
    }

    /// The original outcome if `events` are already stored in `stream` at
    /// consecutive versions that `expected` allows (a retry after a lost
    /// reply), `None` if none of their ids is stored, and
    /// [`StoreError::DuplicateEventId`] naming a stored id and the stream
    /// that holds it if some are stored elsewhere.
    async fn replayed(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        ids: &[Uuid],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let rows = sqlx::query(&self.sql.find_ids)
            .bind(ids)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut stored = HashMap::with_capacity(rows.len());
        for row in &rows {
            let id: Uuid = get(row, 0)?;
            let at: String = get(row, 1)?;
            let version = to_u64(get(row, 2)?)?;
            let position = position(get(row, 3)?, get(row, 4)?, get(row, 5)?)?;
            stored.insert(id, (at, version, position));
        }
        // An id of the batch that is stored, and where.
        let duplicate = |preferred: Uuid| {
            let id = if stored.contains_key(&preferred) {
                preferred
            } else {
                *ids.iter()
                    .find(|id| stored.contains_key(id))
                    .expect("some id is stored")
            };
            StoreError::DuplicateEventId {
                stream: StreamId::new(stored[&id].0.clone()),
                event_id: id,
            }
        };
        let first = events[0].metadata.event_id;
        let Some((_, first_version, _)) = stored.get(&first) else {
            return Err(duplicate(first));
        };
        let base = first_version - 1;
        if expected.pinned().is_some_and(|v| v != base) {
            return Err(duplicate(first));
        }
        let mut positions = Vec::with_capacity(events.len());
        for (offset, id) in (1..).zip(ids) {
            match stored.get(id) {
                Some((at, version, position))
                    if at == stream.as_str() && *version == base + offset =>
                {
                    positions.push(*position);
                }
                _ => return Err(duplicate(*id)),
            }
        }
        Ok(Some(AppendOutcome {
            version: base + positions.len() as u64,
            positions,
        }))
    }

    /// A page of the log (`sql`: the log or the category read) below
    /// the horizon, waiting up to the catch-up wait for older transactions.
    ///
    /// The horizon is a bound of the statement itself, so no row past it
    /// is fetched; only an empty page asks (one index probe) whether
    /// committed rows wait behind it, to wait for them rather than report
    /// an empty page at once.
    async fn read_log(
        &self,
        sql: &str,
        category: Option<&str>,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Err(StoreError::InvalidRequest(
                "read_all: limit must be at least 1".to_owned(),
            ));
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let epoch = i32::try_from(after.epoch).unwrap_or(i32::MAX);
        let sequence = i64::try_from(after.sequence).unwrap_or(i64::MAX);
        let deadline = tokio::time::Instant::now() + self.catch_up_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let mut query = sqlx::query(sql)
                .bind(epoch)
                .bind(TxId(after.commit))
                .bind(sequence)
                .bind(limit);
            if let Some(category) = category {
                query = query.bind(category);
            }
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.failed(e))?;
            if !rows.is_empty() {
                return rows
                    .iter()
                    .map(|row| recorded(row, StreamId::new(get::<String>(row, 12)?)))
                    .collect();
            }
            // Committed rows behind the horizon: an older transaction is
            // still running; wait for it rather than report an empty page.
            if !self
                .held_back_after(category, epoch, after.commit, sequence)
                .await?
            {
                return Ok(Vec::new());
            }
            if tokio::time::Instant::now() >= deadline {
                // Never silent: name what holds the log back.
                if let Ok(lag) = self.catch_up_lag().await {
                    tracing::warn!(
                        held_back = lag.held_back,
                        blocker = ?lag.blocker,
                        "the global log's horizon is held back by an older transaction"
                    );
                }
                return Ok(Vec::new());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Whether committed rows after the position (of `category`, if given)
    /// exist: after an empty page below the horizon, they wait behind it.
    async fn held_back_after(
        &self,
        category: Option<&str>,
        epoch: i32,
        commit: u64,
        sequence: i64,
    ) -> Result<bool, StoreError> {
        let sql = match category {
            Some(_) => &self.sql.held_back_after_category,
            None => &self.sql.held_back_after,
        };
        let mut query = sqlx::query_scalar(sql)
            .bind(epoch)
            .bind(TxId(commit))
            .bind(sequence);
        if let Some(category) = category {
            query = query.bind(category);
        }
        query
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))
    }
}

/// How many times an append runs again after a serialization failure or a
/// deadlock before it reports a conflict.
const RACE_RETRIES: usize = 8;

/// What holds the global log back ([`PgEventStore::catch_up_lag`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct CatchUpLag {
    /// Committed events of the current epoch at or above the horizon:
    /// readers get them once the blocking transaction ends.
    pub held_back: u64,
    /// The oldest running or prepared transaction of the server, if any.
    pub blocker: Option<HorizonBlocker>,
}

/// The transaction at the horizon.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct HorizonBlocker {
    /// Its backend's pid; `None` for a prepared transaction.
    pub pid: Option<i32>,
    /// The database it runs in (maybe another one than the store's).
    pub database: Option<String>,
    /// The backend's state (`idle in transaction`, `active`, …), or
    /// `prepared`.
    pub state: String,
    /// The global id of a prepared transaction.
    pub prepared_gid: Option<String>,
    /// How long the transaction has been open (or prepared).
    pub age: Duration,
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        let Some(coalescer) = self.coalescer.as_ref().filter(|_| !events.is_empty()) else {
            return self
                .append_batch(stream, expected, events, None, Via::Pool)
                .await;
        };
        // What an append alone would refuse before sending anything is
        // refused here, so a group never holds a batch that cannot be
        // written.
        let expected_column = expected.pinned().map(to_i64).transpose()?;
        check_ids(stream, events)?;
        let expected = (expected, expected_column);
        match coalescer.append(self, stream, expected, events, None).await {
            Some(outcome) => outcome,
            None => {
                self.append_batch(stream, expected.0, events, None, Via::Pool)
                    .await
            }
        }
    }

    /// Appends in the same statement that checks `fence` against the lease
    /// table of the store's schema (see [`PgLease`](crate::PgLease)): a
    /// stale epoch or an expired lease stores nothing and fails with
    /// [`StoreError::Fenced`].
    /// A fence that is no longer current by its holder's own clock is
    /// refused the same way without a round trip. A retry of a batch already stored under a
    /// current fence answers with the original outcome, as
    /// [`append`](EventStore::append) does.
    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: &Fence,
    ) -> Result<AppendOutcome, StoreError> {
        let Some(coalescer) = self.coalescer.as_ref().filter(|_| !events.is_empty()) else {
            return self
                .append_batch(stream, expected, events, Some(fence), Via::Pool)
                .await;
        };
        let expected_column = expected.pinned().map(to_i64).transpose()?;
        let key = FenceKey::of(stream, fence)?;
        check_ids(stream, events)?;
        let with = (expected, expected_column);
        match coalescer
            .append(self, stream, with, events, Some((fence.clone(), key)))
            .await
        {
            Some(outcome) => outcome,
            None => {
                self.append_batch(stream, expected, events, Some(fence), Via::Pool)
                    .await
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.stream_rows(&self.sql.read_stream, stream, from_version, |row| {
            recorded(row, stream.clone())
        })
        .await
    }

    async fn read_stream_for_replay(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<ReplayEvent>, StoreError> {
        self.stream_rows(&self.sql.replay_stream, stream, from_version, replayed)
            .await
    }

    /// Streams the replay statement's rows, each decoded in place (see
    /// `crate::replay`): memory bounded by the driver's row buffer, no
    /// allocation per event. A replay that starts while another reads is
    /// queued, and gets its first events (decoded into owned copies) from
    /// one statement with the others queued (see `crate::first_pages`); it
    /// streams the rest of a long stream alone.
    async fn replay(
        &self,
        stream: &StreamId,
        from_version: u64,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), StoreError> {
        let mut from_version = from_version;
        let _alone = match self
            .first_pages
            .turn(&self.first_pages_reader, stream, from_version)
        {
            Turn::Alone(alone) => alone,
            Turn::Queued(page) => {
                let page = page.await.unwrap_or_else(|_| Err(first_pages::stopped()))?;
                for event in &page.events {
                    if visit(event.borrowed()).is_break() {
                        return Ok(());
                    }
                }
                match page.events.last() {
                    Some(last) if page.full => from_version = last.version + 1,
                    _ => return Ok(()),
                }
                // The rest streams like a replay alone, not counted as one:
                // others waiting need not wait for a long tail.
                let rest = &self.sql.replay_rest;
                return self.stream_replay(rest, stream, from_version, visit).await;
            }
        };
        let whole = &self.sql.replay_stream;
        self.stream_replay(whole, stream, from_version, visit).await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read_log(&self.sql.read_all, None, after, limit).await
    }

    /// Served by `events_category_idx`, with the horizon of
    /// [`read_all`](EventStore::read_all).
    async fn read_category(
        &self,
        category: &str,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Err(StoreError::InvalidRequest(
                "read_category: limit must be at least 1".to_owned(),
            ));
        }
        self.read_log(&self.sql.read_category, Some(category), after, limit)
            .await
    }

    async fn stream_head(&self, stream: &StreamId) -> Result<Option<StreamHead>, StoreError> {
        let head: Option<(i64, bool)> = sqlx::query_as(&self.sql.stream_head)
            .bind(stream.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        head.map(|(version, archived)| {
            Ok(StreamHead {
                version: to_u64(version)?,
                archived,
            })
        })
        .transpose()
    }

    async fn archive_stream(&self, stream: &StreamId) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(|e| self.failed(e))?;
        let archived: Option<i64> = sqlx::query_scalar(&self.sql.archive)
            .bind(stream.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(|e| errors::write_error(e, &self.pool))?;
        match archived {
            Some(_) => Ok(()),
            None => Err(StoreError::InvalidRequest(format!(
                "stream {stream} has no events to archive"
            ))),
        }
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let version: i64 = sqlx::query_scalar(&self.sql.stream_version)
            .bind(stream.as_str())
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.failed(e))?;
        to_u64(version)
    }
}

/// What one run of the append statement did.
enum Attempt {
    /// The batch was stored.
    Stored(AppendOutcome),
    /// The version check or a unique constraint refused the batch.
    Refused,
    /// A serialization failure or a deadlock rolled the statement back.
    Raced,
    /// The fence refused the batch.
    Fenced,
}

/// The outcome of one fenced append from its rows: one row with `ok` false
/// when the fence refused, one with a NULL version when the version check
/// did, else one row per stored event.
fn fenced_attempt(rows: &[PgRow]) -> Result<Attempt, StoreError> {
    let Some(first) = rows.first() else {
        return Err(corrupt("a fenced append returned no row".to_owned()));
    };
    if !get::<bool>(first, 4)? {
        return Ok(Attempt::Fenced);
    }
    if get::<Option<i64>>(first, 1)?.is_none() {
        return Ok(Attempt::Refused);
    }
    outcome(rows).map(Attempt::Stored)
}

/// The outcome of a stored batch from the `RETURNING version, tx_id, seq`
/// rows.
fn outcome(rows: &[PgRow]) -> Result<AppendOutcome, StoreError> {
    let mut stored = rows
        .iter()
        .map(|row| {
            let position = position(get(row, 0)?, get(row, 2)?, get(row, 3)?)?;
            Ok((to_u64(get(row, 1)?)?, position))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    stored.sort_unstable_by_key(|(version, _)| *version);
    Ok(AppendOutcome {
        version: stored.last().map_or(0, |(version, _)| *version),
        positions: stored.into_iter().map(|(_, position)| position).collect(),
    })
}

/// A row of the `{columns}` list of the read statements, of `stream_id`.
fn recorded(row: &PgRow, stream_id: StreamId) -> Result<RecordedEvent, StoreError> {
    let schema_version: i64 = get_trusted(row, 6)?;
    let occurred: Timestamp = get_trusted(row, 10)?;
    Ok(RecordedEvent {
        position: position(
            get_trusted(row, 0)?,
            get_trusted(row, 1)?,
            get_trusted(row, 2)?,
        )?,
        stream_id,
        version: to_u64(get_trusted(row, 3)?)?,
        event_type: get_trusted(row, 5)?,
        schema_version: u32::try_from(schema_version)
            .map_err(|_| corrupt(format!("schema version {schema_version} out of range")))?,
        payload: get_trusted(row, 7)?,
        metadata: EventMetadata {
            event_id: get_trusted(row, 4)?,
            timestamp: occurred.0,
            correlation_id: get_trusted(row, 8)?,
            causation_id: get_trusted(row, 9)?,
            headers: get_trusted::<Option<sqlx::types::Json<BTreeMap<String, String>>>>(row, 11)?
                .map(|headers| headers.0)
                .unwrap_or_default(),
        },
    })
}

fn replayed(row: &PgRow) -> Result<ReplayEvent, StoreError> {
    crate::replay::event_at(row, 0).map(ReplayEvent::from)
}

pub(crate) fn position(epoch: i32, tx: TxId, seq: i64) -> Result<LogPosition, StoreError> {
    let epoch = u32::try_from(epoch).map_err(|_| corrupt(format!("negative log epoch {epoch}")))?;
    Ok(LogPosition::in_epoch(epoch, tx.0, to_u64(seq)?))
}
