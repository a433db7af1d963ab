//! The store conformance suite: one set of checks that every
//! [`EventStore`](crate::EventStore), [`SnapshotStore`](crate::store::SnapshotStore)
//! and [`StateStore`](crate::store::StateStore) implementation runs against
//! itself.
//!
//! Each check takes a fresh, empty store. The macros expand to one
//! `#[tokio::test]` per check, so a store crate gets the whole suite with one
//! line per store kind; the crate needs `tokio` (with `macros` and
//! `rt-multi-thread`) as a dev-dependency:
//!
//! ```ignore
//! async fn fresh() -> nexus_core::store::memory::InMemoryEventStore {
//!     nexus_core::store::memory::InMemoryEventStore::new()
//! }
//! nexus_core::event_store_conformance!(fresh);
//! ```

pub mod events;
pub mod snapshots;
pub mod state;

use crate::{EventMetadata, NewEvent};

/// An event with a recognisable payload.
pub fn event(label: &str) -> NewEvent {
    NewEvent {
        event_type: "conformance.happened".to_owned(),
        schema_version: 1,
        payload: label.as_bytes().to_vec(),
        metadata: EventMetadata::new(),
    }
}

/// `n` events labelled `{prefix}-0`, `{prefix}-1`, ….
pub fn events(prefix: &str, n: usize) -> Vec<NewEvent> {
    (0..n).map(|i| event(&format!("{prefix}-{i}"))).collect()
}

/// Expands to one test per event-store check. `$make` is an async fn (or a
/// closure returning a future) that returns a fresh, empty store.
#[macro_export]
macro_rules! event_store_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!($make, events:
            expected_version_semantics,
            atomic_batches,
            gapless_versions,
            global_order_and_paging,
            idempotent_retry,
            round_trip,
            concurrent_appenders_one_winner_per_version,
            concurrent_streams_keep_their_own_checks,
            reading_while_writing_skips_nothing,
            stream_heads,
            archiving,
            category_reads,
            duplicate_names_the_holder,
            streaming_replay,
            streaming_replay_of_archived_stream,
        );
    };
}

/// Expands to one test per snapshot-store check.
#[macro_export]
macro_rules! snapshot_store_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!($make, snapshots:
            latest_wins,
            same_version_replaces,
            keep_last_retention,
            streams_are_isolated,
        );
    };
}

/// Expands to one test per durable-state-store check.
#[macro_export]
macro_rules! state_store_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!($make, state:
            insert_update_and_conflict,
            delete_checks_version,
            deletes_keep_versions_increasing,
            concurrent_writers_one_winner_per_version,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($make:expr, $module:ident: $($check:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let store = ::std::sync::Arc::new(($make)().await);
                $crate::conformance::$module::$check(store).await;
            }
        )+
    };
}
