//! The core store conformance suite against Postgres, each test in its own
//! freshly migrated schema.

mod common;

use nexus_store_pg::{AppendCoalescing, PgEventStore, PgSnapshotStore, PgStateStore};

/// The default store: concurrent appends of different streams coalesced.
mod events {
    use super::{PgEventStore, common};
    async fn fresh() -> PgEventStore {
        PgEventStore::new(&common::fresh_config().await)
    }
    nexus_core::event_store_conformance!(fresh);
}

/// Every append its own statement: writers of one stream race at the
/// database itself (a coalescing store writes one stream's appends one at
/// a time, as writers in other processes do not).
mod events_uncoalesced {
    use super::{AppendCoalescing, PgEventStore, common};
    async fn fresh() -> PgEventStore {
        let config = common::fresh_config().await;
        PgEventStore::new(&config.coalesce_appends(AppendCoalescing::off()))
    }
    nexus_core::event_store_conformance!(fresh);
}

mod snapshots {
    use super::{PgSnapshotStore, common};
    async fn fresh() -> PgSnapshotStore {
        PgSnapshotStore::new(&common::fresh_config().await)
    }
    nexus_core::snapshot_store_conformance!(fresh);
}

mod states {
    use super::{PgStateStore, common};
    async fn fresh() -> PgStateStore {
        PgStateStore::new(&common::fresh_config().await)
    }
    nexus_core::state_store_conformance!(fresh);
}
