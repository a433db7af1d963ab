//! Snapshots: a stream's folded state at a version, to shorten recovery.

use std::num::NonZeroUsize;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::lease::Fence;
use crate::{StoreError, StreamId};

/// A stream's state, encoded, as of `version`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream the state was folded from.
    pub stream_id: StreamId,
    /// The version of the last event folded into the state.
    pub version: u64,
    /// The encoded state.
    pub payload: Vec<u8>,
    /// When the snapshot was taken.
    pub taken_at: SystemTime,
}

/// Stores snapshots per stream.
///
/// ```
/// use std::num::NonZeroUsize;
/// use nexus_core::store::{Snapshot, SnapshotStore};
/// use nexus_core::store::memory::InMemorySnapshotStore;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemorySnapshotStore::new();
/// let snap = |version| Snapshot {
///     stream_id: "wallet-alice".into(),
///     version,
///     payload: vec![],
///     taken_at: std::time::SystemTime::now(),
/// };
/// store.save(snap(10), NonZeroUsize::new(1)).await.unwrap();
/// store.save(snap(20), NonZeroUsize::new(1)).await.unwrap();
/// let latest = store.load_latest(&"wallet-alice".into()).await.unwrap().unwrap();
/// assert_eq!(latest.version, 20);
/// assert_eq!(store.versions(&"wallet-alice".into()).await.unwrap(), vec![20]);
/// # });
/// ```
#[async_trait]
pub trait SnapshotStore: Send + Sync + 'static {
    /// Saves `snapshot`, replacing one at the same version, then keeps only
    /// the newest `keep_last` snapshots of the stream (all when `None`).
    async fn save(
        &self,
        snapshot: Snapshot,
        keep_last: Option<NonZeroUsize>,
    ) -> Result<(), StoreError>;

    /// Saves like [`save`](Self::save), only while `fence` is current,
    /// checked in the same atomic step; a stale fence saves nothing and fails
    /// with [`StoreError::Fenced`]. The default refuses with
    /// [`StoreError::FencingUnsupported`].
    async fn save_fenced(
        &self,
        snapshot: Snapshot,
        keep_last: Option<NonZeroUsize>,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        let _ = (snapshot, keep_last, fence);
        Err(StoreError::FencingUnsupported {
            store: std::any::type_name::<Self>(),
        })
    }

    /// The snapshot with the highest version, if any.
    async fn load_latest(&self, stream: &StreamId) -> Result<Option<Snapshot>, StoreError>;

    /// The versions of the stored snapshots of `stream`, ascending.
    async fn versions(&self, stream: &StreamId) -> Result<Vec<u64>, StoreError>;
}
