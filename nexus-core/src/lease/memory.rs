//! A lease table in memory, for tests and single-process programs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{LeaseError, LeaseGuard, OwnershipLease, Tenure};
use crate::StreamId;

/// An [`OwnershipLease`] kept in memory: one holder per stream, released when
/// the guard drops. Each acquisition of a stream gets the next epoch. Clones
/// share the same table.
///
/// [`revoke`](Self::revoke) takes a lease away from its holder, as a lost
/// database lease would: its fence stops being current at once, so the
/// in-memory stores refuse its writes.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::lease::{InMemoryLease, OwnershipLease};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let lease = InMemoryLease::new();
/// let stream = "wallet-alice".into();
/// let first = lease.acquire(&stream).await.unwrap();
/// assert!(lease.revoke(&stream));
/// assert!(!first.is_current());
/// let second = lease.acquire(&stream).await.unwrap();
/// assert!(second.fence().epoch() > first.fence().epoch());
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryLease {
    // Invariant: a stream has a live holding exactly while one guard for it
    // is alive and its tenure was not revoked; epochs per stream only grow.
    // Every change happens under this lock.
    table: Arc<Mutex<HashMap<StreamId, Entry>>>,
}

#[derive(Debug, Default)]
struct Entry {
    epoch: u64,
    held: Option<Arc<Tenure>>,
}

impl InMemoryLease {
    /// An empty lease table.
    pub fn new() -> Self {
        Self::default()
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Entry>> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the lease of `stream` is currently held.
    pub fn is_held(&self, stream: &StreamId) -> bool {
        self.table()
            .get(stream)
            .is_some_and(|entry| entry.held.is_some())
    }

    /// Takes the lease of `stream` away from its holder, if there is one;
    /// the next acquisition gets a new epoch. Returns whether it was held.
    pub fn revoke(&self, stream: &StreamId) -> bool {
        let held = self
            .table()
            .get_mut(stream)
            .and_then(|entry| entry.held.take());
        held.inspect(|tenure| tenure.revoke()).is_some()
    }
}

#[async_trait]
impl OwnershipLease for InMemoryLease {
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        let mut table = self.table();
        let entry = table.entry(stream.clone()).or_default();
        if entry.held.is_some() {
            return Err(LeaseError::Held {
                stream: stream.clone(),
                holder: "another holder in this process".to_owned(),
            });
        }
        entry.epoch += 1;
        let tenure = Tenure::unbounded(0, entry.epoch);
        entry.held = Some(Arc::clone(&tenure));
        let table = Arc::clone(&self.table);
        let stream = stream.clone();
        let ours = Arc::clone(&tenure);
        Ok(LeaseGuard::on_release(tenure, move || {
            let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = table.get_mut(&stream)
                && entry
                    .held
                    .as_ref()
                    .is_some_and(|held| Arc::ptr_eq(held, &ours))
            {
                entry.held = None;
            }
        }))
    }
}
