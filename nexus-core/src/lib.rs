//! # Nexus core
//!
//! Event sourcing where every aggregate is owned by exactly one actor. This
//! crate holds the model ([`Aggregate`], [`Effect`], [`DomainEvent`]), the
//! store contract ([`EventStore`], [`store::SnapshotStore`],
//! [`store::StateStore`]) with in-memory implementations, codecs with
//! upcasting, snapshot strategies, recovery and the domain [`testkit`], and
//! the runtime that hosts aggregates: an [`ActorSystem`], [`Entities`] (one
//! actor per identity, event-sourced or durable state, with supervision,
//! passivation, conflict retries and group commit), [`EntityRef`], the
//! [`lease`] hook for cross-process ownership, and plain [`Actor`]s. For
//! several nodes, [`remote`] is how commands, replies and errors cross the
//! wire, and `cluster` (feature `cluster`) the HTTP/2 transport between
//! nodes.
//!
//! ```
//! use nexus_core::testkit::given;
//! # use nexus_core::testkit::doc::{Counter, CounterEvent, Add};
//! given::<Counter>([CounterEvent::Added(40)])
//!     .ask(Add(2))
//!     .then_expect_events([CounterEvent::Added(2)])
//!     .then_expect_reply(42);
//! ```
//!
//! The same aggregate served by the runtime:
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use nexus_core::{ActorSystem, Entities, codec::{EventCodec, Json}};
//! use nexus_core::store::memory::InMemoryEventStore;
//! # use nexus_core::testkit::doc::{Counter, Add};
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let system = ActorSystem::new();
//! let counters = Entities::<Counter>::builder(&system)
//!     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
//!     .build()?;
//! assert_eq!(counters.of("c1").ask(Add(40)).await?, 40);
//! assert_eq!(counters.of("c1").ask(Add(2)).await?, 42);
//! system.shutdown(Duration::from_secs(5)).await;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#[doc(hidden)]
pub mod __private;
mod actor;
mod aggregate;
pub mod cache;
#[cfg(feature = "cluster")]
pub mod cluster;
pub mod codec;
mod command;
#[cfg(feature = "conformance")]
pub mod conformance;
mod effect;
mod entity;
mod envelope;
mod error;
mod event;
#[cfg(feature = "macros")]
pub mod guide;
pub mod lease;
pub mod projection;
mod recovery;
pub mod remote;
mod retry;
mod snapshots;
mod stamp;
pub mod store;
mod stream;
pub mod telemetry;
pub mod testkit;

pub use actor::{
    Actor, ActorOptions, ActorRef, ActorSystem, ActorSystemBuilder, AskError, ReplyTo,
    ShutdownReport, WhenFull,
};
pub use aggregate::{Aggregate, CommandContext, Handles, fold};
pub use command::CommandOf;
pub use effect::Effect;
pub use entity::{
    CommandOptions, ConfigError, Entities, EntitiesBuilder, EntityError, EntityRef, Outcome,
    ReplayPolicy, SendError, Supervision,
};
pub use envelope::{
    AppendOutcome, EventMetadata, NewEvent, RecordedEvent, ReplayEvent, ReplayEventRef,
};
pub use error::{BoxError, CodecError, StoreError};
pub use event::DomainEvent;
/// Derives [`DomainEvent`]: stable stored names and schema versions; see [`guide`].
#[cfg(feature = "macros")]
pub use nexus_macros::DomainEvent;
/// Generates an aggregate's sealed command enum and its dispatch; see [`guide`].
#[cfg(feature = "macros")]
pub use nexus_macros::aggregate;
pub use recovery::{Recovered, RecoveryError, recover};
pub use retry::RetryPolicy;
pub use snapshots::{SnapshotError, SnapshotStrategy, Snapshots};
pub use store::EventStore;
pub use stream::{ExpectedVersion, LogPosition, StreamId};

/// The README's code blocks, compiled and run as doctests so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
