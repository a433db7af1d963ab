//! The read side on Postgres: exactly-once projections into tables of the
//! store's schema, checkpoints for at-least-once ones, LISTEN/NOTIFY
//! wake-ups with polling as the fallback, and the lag and horizon probes.
//!
//! - **Exactly-once** ([`PgProjection`], [`PgSink`]): each batch runs in one
//!   transaction that the handler writes its read model in, and that
//!   records the checkpoint. A crash anywhere leaves both as of the last
//!   committed batch.
//! - **At-least-once** ([`PgCheckpoints`] with
//!   [`AtLeastOnce`](nexus_core::projection::AtLeastOnce)): for effects
//!   outside Postgres; handlers deduplicate by event id.
//! - **One instance**: with a [`PgLease`](crate::PgLease) the runner holds
//!   the lease of `projection.<name>`, and every checkpoint statement
//!   checks the lease row's epoch in the same statement; a stale
//!   instance's batch rolls back.
//! - **Wake-up** ([`NotifyingStore`], [`PgReadSide`]): the appender sends an
//!   empty `NOTIFY` after its append committed, outside the append's
//!   transaction (a NOTIFY inside it takes a global lock at commit), coalesced
//!   so a burst of appends sends few; projections `LISTEN` and poll as well,
//!   so a lost notification costs at most one poll interval.
//! - **Rebuild**: the read model is a view over `<table>__g<generation>`; a
//!   rebuild fills generation + 1 from the origin and then swaps the view
//!   and the checkpoint in one transaction, so readers never see a
//!   half-built model.
//! - **Lag** ([`PgLogProbe`]): events after the checkpoint and the age of
//!   the oldest; when committed events wait behind the horizon, the
//!   transaction holding it (backend or prepared transaction) is named.
//!
//! ```no_run
//! use std::time::Duration;
//! use async_trait::async_trait;
//! use nexus_core::codec::{EventCodec, Json};
//! use nexus_core::projection::{Batch, EventVisitor};
//! use nexus_core::{BoxError, DomainEvent};
//! use nexus_store_pg::projection::{PgProjection, PgReadSide};
//! use nexus_store_pg::{PgEventStore, PgStoreConfig};
//! use serde::{Deserialize, Serialize};
//! use sqlx::PgConnection;
//!
//! #[derive(Clone, Serialize, Deserialize, DomainEvent, EventVisitor)]
//! #[event(prefix = "tally")]
//! enum TallyEvent { Added(u64) }
//!
//! struct Totals;
//!
//! #[async_trait]
//! impl PgProjection for Totals {
//!     type Event = TallyEvent;
//!     async fn create(&self, conn: &mut PgConnection, table: &str) -> Result<(), BoxError> {
//!         let ddl = format!("CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, total bigint NOT NULL)");
//!         sqlx::query(&ddl).execute(conn).await?;
//!         Ok(())
//!     }
//!     async fn handle(&self, tx: &mut PgConnection, table: &str, batch: &Batch<TallyEvent>) -> Result<(), BoxError> {
//!         let upsert = format!("INSERT INTO {table} VALUES ($1, $2) \
//!             ON CONFLICT (id) DO UPDATE SET total = {table}.total + excluded.total");
//!         for e in batch {
//!             let TallyEvent::Added(n) = e.event;
//!             sqlx::query(&upsert).bind(e.entity_id()).bind(n as i64).execute(&mut *tx).await?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # async fn run(config: PgStoreConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let read_side = PgReadSide::connect(&config).await?;
//! let store = std::sync::Arc::new(PgEventStore::new(&config));
//! let handle = read_side
//!     .exactly_once("totals", "totals", Totals, store, EventCodec::new(Json))?
//!     .spawn();
//! let status = handle.status().await;
//! println!("{} at {}, {:?} events behind", status.name, status.position, status.lag_events);
//! # Ok(())
//! # }
//! ```

mod checkpoints;
mod notify;
mod probe;
mod sink;
mod sql;

pub use checkpoints::PgCheckpoints;
pub use notify::{NotifyingStore, PgReadSide};
pub use probe::PgLogProbe;
pub use sink::{PgProjection, PgSink};

use nexus_core::LogPosition;
use nexus_core::projection::ProjectionError;

/// The stored form of a position: its serde JSON, compared only for equality.
pub(crate) fn encode(position: LogPosition) -> String {
    serde_json::to_string(&position).expect("a position serialises")
}

pub(crate) fn decode(stored: &str) -> Result<LogPosition, ProjectionError> {
    serde_json::from_str(stored).map_err(|e| {
        ProjectionError::Store(nexus_core::StoreError::Backend {
            source: format!("stored projection position {stored:?} does not decode: {e}").into(),
        })
    })
}
