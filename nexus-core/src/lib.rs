//! # Nexus core
//!
//! Event sourcing where every aggregate is owned by exactly one actor. This
//! crate holds the model ([`Aggregate`], [`Effect`], [`DomainEvent`]), the
//! store contract ([`EventStore`], [`store::SnapshotStore`],
//! [`store::StateStore`]) with in-memory implementations, codecs with
//! upcasting, snapshot strategies, recovery and the domain [`testkit`].
//!
//! ```
//! use nexus_core::testkit::given;
//! # use nexus_core::testkit::doc::{Counter, CounterEvent, Add};
//! given::<Counter>([CounterEvent::Added(40)])
//!     .ask(Add(2))
//!     .then_expect_events([CounterEvent::Added(2)])
//!     .then_expect_reply(42);
//! ```

#[doc(hidden)]
pub mod __private;
mod actor;
mod aggregate;
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
mod recovery;
mod retry;
mod snapshots;
pub mod store;
mod stream;
pub mod testkit;

pub use actor::{
    Actor, ActorOptions, ActorRef, ActorSystem, ActorSystemBuilder, AskError, ReplyTo,
    ShutdownReport, WhenFull,
};
pub use aggregate::{Aggregate, Handles, fold};
pub use command::CommandOf;
pub use effect::Effect;
pub use entity::{
    ConfigError, Entities, EntitiesBuilder, EntityError, EntityRef, ReplayPolicy, SendError,
    Supervision,
};
pub use envelope::{AppendOutcome, EventMetadata, NewEvent, RecordedEvent};
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
