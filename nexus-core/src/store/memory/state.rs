//! The in-memory durable-state store.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::store::{StateStore, StoredState};
use crate::{ExpectedVersion, StoreError, StreamId};

/// A [`StateStore`] in memory.
///
/// ```
/// let store = nexus_core::store::memory::InMemoryStateStore::new();
/// # let _ = store;
/// ```
#[derive(Debug, Default)]
pub struct InMemoryStateStore {
    rows: Mutex<HashMap<StreamId, StoredState>>,
}

impl InMemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl StateStore for InMemoryStateStore {
    async fn load(&self, id: &StreamId) -> Result<Option<StoredState>, StoreError> {
        Ok(lock(&self.rows).get(id).cloned())
    }

    async fn save(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
    ) -> Result<u64, StoreError> {
        let mut rows = lock(&self.rows);
        let actual = rows.get(id).map_or(0, |row| row.version);
        if !expected.accepts(actual) {
            return Err(StoreError::Conflict {
                stream: id.clone(),
                expected,
                actual,
            });
        }
        let version = actual + 1;
        rows.insert(id.clone(), StoredState { version, payload });
        Ok(version)
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
        rows.remove(id);
        Ok(())
    }
}
