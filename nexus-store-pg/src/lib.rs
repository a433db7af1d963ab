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
//! - [`PgLease`] makes one process the writer of a shard of streams, on an
//!   advisory lock that Postgres releases when that process dies.
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

mod config;
mod convert;
mod errors;
mod event_store;
mod lease;
mod migrate;
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
