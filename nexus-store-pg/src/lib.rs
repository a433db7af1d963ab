//! # Postgres stores for Nexus
//!
//! [`PgEventStore`], [`PgSnapshotStore`] and [`PgStateStore`] implement the
//! store contract of `nexus-core` on a [`sqlx::PgPool`], in one schema per
//! application ([`PgStoreConfig::schema`]), with embedded migrations
//! ([`PgStoreConfig::migrate`]).
//!
//! - An append is one round trip: the batch travels as arrays, the version
//!   check and the insert are one statement. Concurrent appends of
//!   different streams are coalesced into one statement and transaction
//!   ([`AppendCoalescing`], on by default), each still checked on its own:
//!   many entities share one commit, as Postgres's group commit shares a
//!   WAL flush, and no caller is told anything its append alone would not
//!   have told it.
//! - The global log is read below the transaction horizon, so a reader never
//!   skips an event that commits late.
//! - [`PgLease`] makes one process the owner of a shard of streams, on a
//!   lease table in the same schema: every acquisition gets a larger epoch,
//!   a heartbeat renews all held shards in one statement, and the holder
//!   stops acting by its own monotonic clock before the database could
//!   hand the shard to another process ([`LeaseTiming`] names the
//!   assumptions). Postgres is the only coordinator.
//! - Fenced writes ([`append_fenced`](nexus_core::EventStore::append_fenced),
//!   [`save_fenced`](nexus_core::store::SnapshotStore::save_fenced),
//!   [`save_fenced`](nexus_core::store::StateStore::save_fenced)) check the
//!   writer's epoch and the lease's expiry in the write's own statement, so
//!   a process whose lease was taken over stores nothing
//!   ([`StoreError::Fenced`](nexus_core::StoreError::Fenced)), and a
//!   takeover waits for the old owner's in-flight writes.
//! - Driver errors are mapped at one boundary, by SQLSTATE: a unique
//!   violation becomes a conflict with the actual version, a serialization
//!   failure or a deadlock a race (re-read like a conflict), a statement or
//!   lock timeout [`StoreError::Timeout`](nexus_core::StoreError::Timeout),
//!   a read-only server or a broken connection
//!   [`StoreError::Unavailable`](nexus_core::StoreError::Unavailable), a
//!   connection lost after a write was sent
//!   [`StoreError::Ambiguous`](nexus_core::StoreError::Ambiguous) (re-send
//!   the same batch), a pool without free connections
//!   [`StoreError::PoolExhausted`](nexus_core::StoreError::PoolExhausted),
//!   anything else a backend error naming its SQLSTATE.
//!
//! ## The schema
//!
//! - `streams` holds one row per stream (id, aggregate type, version,
//!   created/updated, archived). An append is one statement: a conditional
//!   write of that head (`WHERE version = $expected`, unconditional for
//!   `Any`) chained to the insert of the events, so concurrent `Any`
//!   writers queue on the head's row lock instead of failing inserts, and
//!   the current version is one index lookup.
//! - `events` keeps every event; the global log is ordered by
//!   `(epoch, tx_id, seq)` (`events_log_idx`), one category's events by
//!   `events_category_idx` ([`EventStore::read_category`](nexus_core::EventStore::read_category)).
//! - Archived streams ([`EventStore::archive_stream`](nexus_core::EventStore::archive_stream))
//!   are skipped by every read and refuse appends
//!   ([`StoreError::StreamArchived`](nexus_core::StoreError::StreamArchived)).
//!
//! ## Querying events in SQL
//!
//! With [`PayloadFormat::Json`] (for an application whose events use the
//! JSON codec), payloads are stored as `jsonb` in column `payload`; other
//! payloads keep their bytes in `payload_bytes`. SQL can then read and
//! index them:
//!
//! ```sql
//! SELECT stream_id, version, (payload->>'amountCents')::bigint AS amount_cents
//! FROM wallet_app.events
//! WHERE event_type = 'wallet.deposited' AND (payload->>'amountCents')::bigint > 10000;
//!
//! CREATE INDEX CONCURRENTLY events_deposit_amount_idx
//!     ON wallet_app.events (((payload->>'amountCents')::bigint))
//!     WHERE event_type = 'wallet.deposited';
//! ```
//!
//! ## Operating it
//!
//! - **Rolling deploys**: `schema_compat.oldest_compatible` names the oldest
//!   release that may use the schema; expand migrations leave it, contract
//!   migrations raise it (see [`PgStoreConfig::migrate`]). Migrations run
//!   with a `lock_timeout`.
//! - **Replication**: run with synchronous replication
//!   (`synchronous_commit = on` with a synchronous standby) if a standby may
//!   be promoted. After an asynchronous failover the promoted server hands
//!   out transaction ids that a reader may already have passed; restart the
//!   processes so that [`PgStoreConfig::migrate`] sees the new timeline and
//!   begins a new log epoch before anything is written (positions of the
//!   new epoch sort after every old one). A log restored or copied from a
//!   busier cluster is refused at start-up
//!   ([`PgSetupError::LogAhead`]) until [`PgStoreConfig::begin_log_epoch`].
//! - **Held-back horizon**: a long or forgotten transaction anywhere on the
//!   server (another database, a `PREPARE TRANSACTION`) holds every
//!   reader back. [`PgEventStore::catch_up_lag`] names it (pid, database,
//!   age) and counts the events behind it, and a reader that waited past
//!   its catch-up wait logs it. Set `idle_in_transaction_session_timeout`.
//! - **Fenced writers**: a fenced append holds its lease row's key-share
//!   lock until it commits. A process paused after Postgres ran its
//!   statement but before the message that commits it arrived holds that
//!   lock, and so every takeover of the shard, until it resumes. Set
//!   `idle_in_transaction_session_timeout` on the store's pool below the
//!   lease's ttl (the wallet app sets half of it), and Postgres rolls such
//!   an append back in time.
//!
//! ```no_run
//! use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
//! use nexus_store_pg::{PgEventStore, PgStoreConfig};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let pool = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/test").await?;
//! let config = PgStoreConfig::new(pool).schema("wallet_app")?;
//! config.migrate().await?;
//! let events = PgEventStore::new(&config);
//! let stream = StreamId::for_entity("wallet", "alice");
//! let deposited = NewEvent::new("wallet.deposited", 1, br#"{"amount":5}"#.to_vec());
//! events.append(&stream, ExpectedVersion::NoStream, &[deposited]).await?;
//! # Ok(())
//! # }
//! ```
//!
//! An owned entity's writes carry the fence of its lease:
//!
//! ```no_run
//! use nexus_core::lease::OwnershipLease;
//! use nexus_core::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};
//! use nexus_store_pg::{PgEventStore, PgLease, PgStoreConfig};
//! # async fn run(config: PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let lease = PgLease::connect(&config, 64).await?;
//! let events = PgEventStore::new(&config);
//! let stream = StreamId::for_entity("wallet", "alice");
//! let guard = lease.acquire(&stream).await?;
//! let deposited = NewEvent::new("wallet.deposited", 1, br#"{"amount":5}"#.to_vec());
//! match events
//!     .append_fenced(&stream, ExpectedVersion::Any, &[deposited], guard.fence())
//!     .await
//! {
//!     Ok(_) => {}
//!     Err(StoreError::Fenced { .. }) => { /* another process owns the shard now */ }
//!     Err(other) => return Err(other.into()),
//! }
//! # Ok(())
//! # }
//! ```

mod batch;
#[cfg(feature = "cluster")]
mod cluster;
mod coalesce;
mod config;
mod convert;
mod errors;
mod event_store;
mod first_pages;
mod lease;
mod migrate;
pub mod projection;
mod replay;
mod setup_error;
mod snapshot_store;
mod sql;
mod state_store;
mod wire;

#[cfg(feature = "cluster")]
pub use cluster::PgCoordination;
pub use coalesce::AppendCoalescing;
pub use config::{PayloadFormat, PgStoreConfig, Schema};
pub use event_store::PgEventStore;
pub use event_store::{CatchUpLag, HorizonBlocker};
pub use lease::{LeaseTiming, PgLease};
pub use setup_error::PgSetupError;
pub use snapshot_store::PgSnapshotStore;
pub use state_store::PgStateStore;
