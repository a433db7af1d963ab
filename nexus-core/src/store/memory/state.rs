//! The in-memory durable-state store.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{check_fence, lock};
use crate::lease::Fence;
use crate::store::{StateStore, StoredState, VersionedState};
use crate::{ExpectedVersion, StoreError, StreamId};

/// A [`StateStore`] in memory.
///
/// ```
/// let store = nexus_core::store::memory::InMemoryStateStore::new();
/// # let _ = store;
/// ```
#[derive(Debug, Default)]
pub struct InMemoryStateStore {
    // Invariant: a deleted row stays as a tombstone (`payload: None`) whose
    // version is one above the deleted row's, so versions only grow.
    rows: Mutex<HashMap<StreamId, VersionedState>>,
}

impl InMemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every row, in id order: what a query over the state table reads.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use nexus_core::{ExpectedVersion, store::StateStore};
    /// let store = nexus_core::store::memory::InMemoryStateStore::new();
    /// store.save(&"b".into(), ExpectedVersion::NoStream, vec![2]).await.unwrap();
    /// store.save(&"a".into(), ExpectedVersion::NoStream, vec![1]).await.unwrap();
    /// let ids: Vec<_> = store.rows().into_iter().map(|(id, _)| id.to_string()).collect();
    /// assert_eq!(ids, ["a", "b"]);
    /// # });
    /// ```
    pub fn rows(&self) -> Vec<(StreamId, StoredState)> {
        let mut rows: Vec<_> = lock(&self.rows)
            .iter()
            .filter_map(|(id, row)| {
                let payload = row.payload.clone()?;
                Some((
                    id.clone(),
                    StoredState {
                        version: row.version,
                        payload,
                    },
                ))
            })
            .collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    async fn load(&self, id: &StreamId) -> Result<Option<StoredState>, StoreError> {
        Ok(lock(&self.rows).get(id).and_then(|row| {
            Some(StoredState {
                version: row.version,
                payload: row.payload.clone()?,
            })
        }))
    }

    async fn load_versioned(&self, id: &StreamId) -> Result<VersionedState, StoreError> {
        Ok(lock(&self.rows).get(id).cloned().unwrap_or(VersionedState {
            version: 0,
            payload: None,
        }))
    }

    async fn save(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
    ) -> Result<u64, StoreError> {
        save(&mut lock(&self.rows), id, expected, payload)
    }

    async fn save_fenced(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let mut rows = lock(&self.rows);
        check_fence(id, fence)?;
        save(&mut rows, id, expected, payload)
    }

    async fn delete(&self, id: &StreamId, expected: ExpectedVersion) -> Result<(), StoreError> {
        let mut rows = lock(&self.rows);
        let actual = rows.get(id).map_or(0, |row| row.version);
        if !expected.accepts(actual) {
            return Err(StoreError::Conflict {
                stream: id.clone(),
                expected,
                actual,
            });
        }
        if let Some(row) = rows.get_mut(id)
            && row.payload.take().is_some()
        {
            row.version += 1;
        }
        Ok(())
    }
}

/// Writes `payload` if the row is at `expected`; the caller holds the lock.
fn save(
    rows: &mut HashMap<StreamId, VersionedState>,
    id: &StreamId,
    expected: ExpectedVersion,
    payload: Vec<u8>,
) -> Result<u64, StoreError> {
    let actual = rows.get(id).map_or(0, |row| row.version);
    if !expected.accepts(actual) {
        return Err(StoreError::Conflict {
            stream: id.clone(),
            expected,
            actual,
        });
    }
    let version = actual + 1;
    rows.insert(
        id.clone(),
        VersionedState {
            version,
            payload: Some(payload),
        },
    );
    Ok(version)
}
