//! The core store conformance suite against Postgres, each test in its own
//! freshly migrated schema.

mod common;

use nexus_store_pg::{PgEventStore, PgSnapshotStore, PgStateStore};

mod events {
    use super::{PgEventStore, common};
    async fn fresh() -> PgEventStore {
        PgEventStore::new(&common::fresh_config().await)
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
