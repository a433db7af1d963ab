//! Durable state: an entity's current state as one versioned row.

use async_trait::async_trait;

use crate::lease::Fence;
use crate::{ExpectedVersion, StoreError, StreamId};

/// A durable-state row: the encoded state and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState {
    /// Incremented by one on every write; 1 after the first.
    pub version: u64,
    /// The encoded state.
    pub payload: Vec<u8>,
}

/// A durable-state row as [`StateStore::load_versioned`] reads it.
///
/// ```
/// use nexus_core::store::VersionedState;
/// let deleted = VersionedState { version: 3, payload: None };
/// assert!(deleted.payload.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedState {
    /// The row's version: 0 when never written, the tombstone's when
    /// deleted.
    pub version: u64,
    /// The encoded state, `None` when there is no live row.
    pub payload: Option<Vec<u8>>,
}

/// Stores one versioned state per persistence id (Nexus PHP's
/// `EntityBehavior` row).
///
/// A write names the version it read: [`ExpectedVersion::NoStream`] inserts a
/// row that was never written, [`ExpectedVersion::Exact`] updates a row that
/// must be at that version. Anything else is [`StoreError::Conflict`] and
/// changes nothing.
///
/// Versions only grow, across deletes too: [`delete`](Self::delete) leaves a
/// tombstone one version up, which [`load`](Self::load) reads as no row and
/// [`load_versioned`](Self::load_versioned) and [`version`](Self::version)
/// report. So a writer that read the row before it was deleted and
/// re-created can never overwrite the new row (the ABA of a version that
/// restarted at 1); re-creating a deleted row expects the tombstone's
/// version.
///
/// ```
/// use nexus_core::{ExpectedVersion, StreamId};
/// use nexus_core::store::StateStore;
/// use nexus_core::store::memory::InMemoryStateStore;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryStateStore::new();
/// let id = StreamId::new("ledger-alice");
/// assert_eq!(store.save(&id, ExpectedVersion::NoStream, b"1".to_vec()).await.unwrap(), 1);
/// assert_eq!(store.save(&id, ExpectedVersion::Exact(1), b"2".to_vec()).await.unwrap(), 2);
/// assert!(store.save(&id, ExpectedVersion::Exact(1), b"x".to_vec()).await.unwrap_err().is_conflict());
/// assert_eq!(store.load(&id).await.unwrap().unwrap().payload, b"2");
/// # });
/// ```
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// The row of `id`, if any.
    async fn load(&self, id: &StreamId) -> Result<Option<StoredState>, StoreError>;

    /// Writes `payload` if the row is at `expected`; returns the new version.
    async fn save(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
    ) -> Result<u64, StoreError>;

    /// Saves like [`save`](Self::save), only while `fence` is current,
    /// checked in the same atomic step; a stale fence writes nothing and
    /// fails with [`StoreError::Fenced`]. The default refuses with
    /// [`StoreError::FencingUnsupported`].
    async fn save_fenced(
        &self,
        id: &StreamId,
        expected: ExpectedVersion,
        payload: Vec<u8>,
        fence: &Fence,
    ) -> Result<u64, StoreError> {
        let _ = (id, expected, payload, fence);
        Err(StoreError::FencingUnsupported {
            store: std::any::type_name::<Self>(),
        })
    }

    /// The current version of the row of `id`: 0 when it was never
    /// written, the tombstone's when it was deleted. The default uses
    /// [`load_versioned`](Self::load_versioned); a store overrides it to read
    /// only the version.
    async fn version(&self, id: &StreamId) -> Result<u64, StoreError> {
        Ok(self.load_versioned(id).await?.version)
    }

    /// The row of `id` with its version in one read, also when there is no
    /// live row: what a writer must expect next. The default, for stores
    /// without tombstones, reads [`load`](Self::load).
    async fn load_versioned(&self, id: &StreamId) -> Result<VersionedState, StoreError> {
        Ok(match self.load(id).await? {
            Some(row) => VersionedState {
                version: row.version,
                payload: Some(row.payload),
            },
            None => VersionedState {
                version: 0,
                payload: None,
            },
        })
    }

    /// Deletes the row of `id` if it is at `expected`, leaving a tombstone
    /// one version up. Deleting a row that is already deleted (at its
    /// tombstone's version) or was never written changes nothing.
    async fn delete(&self, id: &StreamId, expected: ExpectedVersion) -> Result<(), StoreError>;
}
