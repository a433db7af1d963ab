//! The store conformance suite against the in-memory stores.
#![cfg(feature = "conformance")]

use nexus_core::store::memory::{InMemoryEventStore, InMemorySnapshotStore, InMemoryStateStore};

nexus_core::event_store_conformance!(|| async { InMemoryEventStore::new() });

mod snapshots {
    use super::InMemorySnapshotStore;
    nexus_core::snapshot_store_conformance!(|| async { InMemorySnapshotStore::new() });
}

mod state {
    use super::InMemoryStateStore;
    nexus_core::state_store_conformance!(|| async { InMemoryStateStore::new() });
}
