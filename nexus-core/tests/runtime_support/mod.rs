//! Shared pieces of the runtime tests: an account aggregate with commands
//! that panic, stop or run side effects; an event store that injects
//! faults; a lease that measures how many holders a stream has at once.
#![allow(dead_code, unused_imports, missing_docs)]

pub mod account;
pub mod faulty_store;
pub mod watch_lease;

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::{ActorSystem, Entities, EntitiesBuilder, EventStore, Supervision};

pub use account::*;
pub use faulty_store::{Fault, FaultyStore};
pub use watch_lease::WatchLease;

/// An account entity type on `store` with quick restarts.
pub fn accounts(system: &ActorSystem, store: Arc<dyn EventStore>) -> EntitiesBuilder<Account> {
    Entities::<Account>::builder(system)
        .event_sourced(store, EventCodec::new(Json))
        .supervision(
            Supervision::default()
                .backoff(Duration::from_millis(1), Duration::from_millis(10))
                .max_restarts(1_000, Duration::from_secs(60)),
        )
}
