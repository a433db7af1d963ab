//! The in-memory snapshot store.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{check_fence, lock};
use crate::lease::Fence;
use crate::store::{Snapshot, SnapshotStore};
use crate::{StoreError, StreamId};

/// A [`SnapshotStore`] in memory.
///
/// ```
/// let store = nexus_core::store::memory::InMemorySnapshotStore::new();
/// # let _ = store;
/// ```
#[derive(Debug, Default)]
pub struct InMemorySnapshotStore {
    snapshots: Mutex<HashMap<StreamId, BTreeMap<u64, Snapshot>>>,
}

impl InMemorySnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SnapshotStore for InMemorySnapshotStore {
    async fn save(
        &self,
        snapshot: Snapshot,
        keep_last: Option<NonZeroUsize>,
    ) -> Result<(), StoreError> {
        save(&mut lock(&self.snapshots), snapshot, keep_last);
        Ok(())
    }

    async fn save_fenced(
        &self,
        snapshot: Snapshot,
        keep_last: Option<NonZeroUsize>,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        let mut all = lock(&self.snapshots);
        check_fence(&snapshot.stream_id, fence)?;
        save(&mut all, snapshot, keep_last);
        Ok(())
    }

    async fn load_latest(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError> {
        Ok(lock(&self.snapshots)
            .get(stream)
            .and_then(|s| s.last_key_value())
            .map(|(_, snapshot)| snapshot.clone()))
    }

    async fn versions(&self, stream: &StreamId) -> Result<Vec<u64>, StoreError> {
        Ok(lock(&self.snapshots)
            .get(stream)
            .map(|s| s.keys().copied().collect())
            .unwrap_or_default())
    }
}

/// Saves `snapshot` and applies retention; the caller holds the lock.
fn save(
    all: &mut HashMap<StreamId, BTreeMap<u64, Snapshot>>,
    snapshot: Snapshot,
    keep_last: Option<NonZeroUsize>,
) {
    let stream = all.entry(snapshot.stream_id.clone()).or_default();
    stream.insert(snapshot.version, snapshot);
    if let Some(keep) = keep_last {
        while stream.len() > keep.get() {
            stream.pop_first();
        }
    }
}
