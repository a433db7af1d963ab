//! Wake-ups: an empty NOTIFY after each committed append, LISTEN in the
//! projections, and the factory that wires a projection to them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::codec::EventCodec;
use nexus_core::lease::Fence;
use nexus_core::projection::{AtLeastOnce, Projection, Wakeup};
use nexus_core::store::{EventStore, ReplayVisitor};
use nexus_core::{
    AppendOutcome, DomainEvent, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, ReplayEvent,
    StoreError, StreamId,
};
use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use super::sink::valid_table;
use super::sql::{ProjectionSql, channel};
use super::{PgLogProbe, PgProjection, PgSink};
use crate::{PgSetupError, PgStoreConfig};

/// An [`EventStore`] that sends an empty `NOTIFY` on the schema's channel
/// after every append that committed, so projections wake at once.
///
/// The NOTIFY is its own statement on the pool, after the append's
/// transaction committed — never inside it, where Postgres would take a
/// global lock at commit and serialise every appender. A task sends it, so
/// an append never waits for it, and a burst of appends while one NOTIFY is
/// in flight is covered by one more, not one each. A NOTIFY that fails is
/// logged; projections poll as well, so it costs latency, not events.
///
/// ```no_run
/// use std::sync::Arc;
/// use nexus_store_pg::{PgEventStore, PgStoreConfig};
/// use nexus_store_pg::projection::NotifyingStore;
/// # async fn run(config: PgStoreConfig) {
/// let store = Arc::new(NotifyingStore::new(PgEventStore::new(&config), &config));
/// // Entities::<Wallet>::builder(&system).event_sourced(store, codec)…
/// # let _ = store;
/// # }
/// ```
#[derive(Debug)]
pub struct NotifyingStore<S> {
    inner: S,
    pending: Arc<Notify>,
}

impl<S: EventStore> NotifyingStore<S> {
    /// Wraps `inner`, notifying on `config`'s schema channel. Must be called
    /// within a tokio runtime (a task sends the notifications).
    pub fn new(inner: S, config: &PgStoreConfig) -> Self {
        let pending = Arc::new(Notify::new());
        let signal = Arc::downgrade(&pending);
        let pool = config.pool.clone();
        let channel = channel(&config.schema);
        tokio::spawn(async move {
            while let Some(signal) = signal.upgrade() {
                // One permit: appends while a NOTIFY is in flight coalesce.
                signal.notified().await;
                drop(signal);
                if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
                    .bind(&channel)
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(%error, "append wake-up not sent; projections poll");
                }
            }
        });
        Self { inner, pending }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn notify(&self) {
        self.pending.notify_one();
    }
}

#[async_trait]
impl<S: EventStore> EventStore for NotifyingStore<S> {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        let out = self.inner.append(stream, expected, events).await?;
        self.notify();
        Ok(out)
    }

    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: &Fence,
    ) -> Result<AppendOutcome, StoreError> {
        let out = self
            .inner
            .append_fenced(stream, expected, events, fence)
            .await?;
        self.notify();
        Ok(out)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version).await
    }

    async fn read_stream_for_replay(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<ReplayEvent>, StoreError> {
        self.inner
            .read_stream_for_replay(stream, from_version)
            .await
    }

    async fn replay(
        &self,
        stream: &StreamId,
        from_version: u64,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), StoreError> {
        self.inner.replay(stream, from_version, visit).await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }
}

/// The read side of one schema: a LISTEN connection feeding a [`Wakeup`],
/// the lag probe, and factories for projections wired to both.
///
/// See the [module example](super).
#[derive(Clone, Debug)]
pub struct PgReadSide {
    config: PgStoreConfig,
    wakeup: Wakeup,
    probe: Arc<PgLogProbe>,
    sql: Arc<ProjectionSql>,
}

impl PgReadSide {
    /// Starts listening on `config`'s schema channel (a connection of its
    /// own, reconnected when it breaks; each reconnection wakes the
    /// projections once, in case a notification was missed).
    pub async fn connect(config: &PgStoreConfig) -> Result<Self, PgSetupError> {
        let database = |source| PgSetupError::Database {
            schema: config.schema.to_string(),
            source,
        };
        let mut listener = PgListener::connect_with(&config.pool)
            .await
            .map_err(database)?;
        let name = channel(&config.schema);
        listener.listen(&name).await.map_err(database)?;
        let wakeup = Wakeup::new();
        let signal = wakeup.clone();
        tokio::spawn(async move {
            loop {
                match listener.try_recv().await {
                    Ok(Some(_)) => signal.wake(),
                    Ok(None) => {
                        // The connection broke and sqlx reconnects on the
                        // next call; a notification may have been lost.
                        tracing::debug!("projection LISTEN connection lost; reconnecting");
                        signal.wake();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "projection LISTEN failed; polling meanwhile");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
        Ok(Self {
            config: config.clone(),
            wakeup,
            probe: Arc::new(PgLogProbe::new(config)),
            sql: Arc::new(ProjectionSql::new(&config.schema)),
        })
    }

    /// The wake-up fed by LISTEN.
    pub fn wakeup(&self) -> Wakeup {
        self.wakeup.clone()
    }

    /// The lag probe.
    pub fn probe(&self) -> Arc<PgLogProbe> {
        Arc::clone(&self.probe)
    }

    /// An exactly-once projection `name` of `projection` into the read model
    /// `table` (a plain lowercase identifier, at most 40 bytes), reading
    /// `store`, with the wake-up and the probe set. Add a lease with
    /// [`Projection::lease`] for one instance across processes.
    pub fn exactly_once<P: PgProjection>(
        &self,
        name: &str,
        table: &str,
        projection: P,
        store: Arc<dyn EventStore>,
        codec: EventCodec<P::Event>,
    ) -> Result<Projection<P::Event, PgSink<P>>, PgSetupError> {
        let sink = self.sink(name, table, projection)?;
        Ok(Projection::new(name, store, codec, sink)
            .wakeup(self.wakeup())
            .probe(self.probe()))
    }

    /// The exactly-once sink of `projection` alone, for a
    /// [`Projection`] assembled by hand.
    pub fn sink<P: PgProjection>(
        &self,
        name: &str,
        table: &str,
        projection: P,
    ) -> Result<PgSink<P>, PgSetupError> {
        if !valid_table(table) {
            return Err(PgSetupError::InvalidSchema {
                name: table.to_owned(),
                reason: "a read-model table name must be a lowercase identifier of at most 40 bytes",
            });
        }
        Ok(PgSink::new(
            name.to_owned(),
            table.to_owned(),
            self.config.schema.clone(),
            self.config.pool.clone(),
            Arc::clone(&self.sql),
            projection,
        ))
    }

    /// An at-least-once projection `name` calling `handler` with each batch,
    /// its checkpoints in the schema's `projections` table, with the wake-up
    /// and the probe set.
    pub fn at_least_once<E, F, Fut>(
        &self,
        name: &str,
        store: Arc<dyn EventStore>,
        codec: EventCodec<E>,
        handler: F,
    ) -> Projection<E, AtLeastOnce<E>>
    where
        E: DomainEvent,
        F: Fn(nexus_core::projection::Batch<E>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), nexus_core::BoxError>> + Send + 'static,
    {
        let checkpoints = Arc::new(super::PgCheckpoints::new(&self.config));
        Projection::new(
            name,
            store,
            codec,
            AtLeastOnce::new(name, checkpoints, handler),
        )
        .wakeup(self.wakeup())
        .probe(self.probe())
    }
}
