//! Projections: read models fed from the global log, in position order, from
//! a checkpoint.
//!
//! What a projection guarantees:
//! - **Order, no skips.** It reads [`EventStore::read_all`](crate::EventStore::read_all),
//!   which hands out committed events in [`LogPosition`](crate::LogPosition)
//!   order and never one that a late commit could still precede: a
//!   transaction that commits late causes lag, never a skip.
//! - **Exhaustive dispatch.** `#[derive(EventVisitor)]` gives an event enum a
//!   visitor trait with one required method per variant and a `match`
//!   without a wildcard ([`Visit`]): a new variant fails the build of every
//!   projection that did not decide what to do with it.
//! - **Delivery.** A [`Sink`] applies each batch and records the position
//!   the log was read through. An exactly-once sink (nexus-store-pg's
//!   `PgProjection`) does both in one transaction; an at-least-once sink
//!   ([`AtLeastOnce`]) records the position every N events or T, so after a
//!   crash handlers see some events again and deduplicate them by
//!   [`Projected::event_id`].
//! - **One instance.** Given an [`OwnershipLease`](crate::lease::OwnershipLease),
//!   the runner holds the lease of `projection.<name>` while it runs and
//!   hands its [`Fence`](crate::lease::Fence) to every checkpoint write; a
//!   sink refuses a write under a stale fence.
//! - **Management.** [`ProjectionHandle`] reports [`ProjectionStatus`]
//!   (position, lag in events and seconds, a horizon held back and by whom),
//!   pauses, resumes, rebuilds, and waits until the projection has passed a
//!   position ([`ProjectionHandle::wait_for`], for read-your-writes with
//!   [`Outcome::position`](crate::Outcome)).
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use nexus_core::codec::{EventCodec, Json};
//! use nexus_core::projection::{AtLeastOnce, Batch, EventVisitor, InMemoryCheckpoints, Projection};
//! use nexus_core::store::memory::InMemoryEventStore;
//! use nexus_core::{DomainEvent, EventMetadata, EventStore, ExpectedVersion, StreamId};
//! use serde::{Deserialize, Serialize};
//! use std::sync::Mutex;
//!
//! #[derive(Clone, Serialize, Deserialize, DomainEvent, EventVisitor)]
//! #[event(prefix = "tally")]
//! enum TallyEvent { Added(u64) }
//!
//! #[derive(Default)]
//! struct Sum(u64);
//! impl TallyEventVisitor for Sum {
//!     type Output = ();
//!     fn added(&mut self, n: &u64) { self.0 += n; }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let store = Arc::new(InMemoryEventStore::new());
//! let codec = EventCodec::<TallyEvent>::new(Json);
//! let added = codec.encode(&TallyEvent::Added(5), EventMetadata::new()).unwrap();
//! let out = store.append(&StreamId::new("tally-a"), ExpectedVersion::Any, &[added]).await.unwrap();
//!
//! let sum = Arc::new(Mutex::new(Sum::default()));
//! let shared = Arc::clone(&sum);
//! let sink = AtLeastOnce::new("sum", Arc::new(InMemoryCheckpoints::new()), move |batch: Batch<TallyEvent>| {
//!     let shared = Arc::clone(&shared);
//!     async move {
//!         let mut sum = shared.lock().unwrap();
//!         for e in &batch { e.event.visit(&mut *sum); }
//!         Ok(())
//!     }
//! });
//! let handle = Projection::new("sum", store, codec, sink).spawn();
//! handle.wait_for(out.positions[0], Duration::from_secs(5)).await.unwrap();
//! assert_eq!(sum.lock().unwrap().0, 5);
//! handle.stop().await;
//! # });
//! ```

mod at_least_once;
mod handle;
mod position;
mod projected;
mod runner;
mod sink;

pub use at_least_once::{AtLeastOnce, CheckpointPolicy, CheckpointStore, InMemoryCheckpoints};
pub use handle::{ProjectionHandle, ProjectionStatus, RunState, WaitError};
pub use position::{PositionToken, PositionTokenError};
pub use projected::{Batch, Projected, Visit};
pub use runner::{LogProbe, Projection, Start, Wakeup};
pub use sink::{ProjectionError, Sink};

/// Derives exhaustive dispatch for an event enum; see [`Visit`].
#[cfg(feature = "macros")]
pub use nexus_macros::EventVisitor;
