//! # Postgres stores for Nexus
//!
//! [`PgEventStore`], [`PgSnapshotStore`] and [`PgStateStore`] implement the
//! store contract of `nexus-core` on a [`sqlx::PgPool`], in one schema per
//! application ([`PgStoreConfig::schema`]), with embedded migrations
//! ([`PgStoreConfig::migrate`]).
//!
//! - An append is one round trip: the batch travels as arrays, the version
//!   check and the insert are one statement.
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
//! - Driver errors are mapped at one boundary: a unique violation becomes a
//!   conflict with the actual version, a broken connection
//!   [`StoreError::Unavailable`](nexus_core::StoreError::Unavailable)
//!   (retryable), a pool without free connections
//!   [`StoreError::PoolExhausted`](nexus_core::StoreError::PoolExhausted).
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
//! events.append(&stream, ExpectedVersion::NoStream, vec![deposited]).await?;
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
//!     .append_fenced(&stream, ExpectedVersion::Any, vec![deposited], guard.fence())
//!     .await
//! {
//!     Ok(_) => {}
//!     Err(StoreError::Fenced { .. }) => { /* another process owns the shard now */ }
//!     Err(other) => return Err(other.into()),
//! }
//! # Ok(())
//! # }
//! ```

mod config;
mod convert;
mod errors;
mod event_store;
mod lease;
mod migrate;
pub mod projection;
mod setup_error;
mod snapshot_store;
mod sql;
mod state_store;
mod wire;

pub use config::{PgStoreConfig, Schema};
pub use event_store::PgEventStore;
pub use lease::{LeaseTiming, PgLease};
pub use setup_error::PgSetupError;
pub use snapshot_store::PgSnapshotStore;
pub use state_store::PgStateStore;
