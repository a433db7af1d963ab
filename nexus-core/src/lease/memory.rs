//! A lease table in memory, for tests and single-process programs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{LeaseError, LeaseGuard, OwnershipLease};
use crate::StreamId;

/// An [`OwnershipLease`] kept in memory: one holder per stream, released when
/// the guard drops. Clones share the same table.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::lease::{InMemoryLease, OwnershipLease};
/// let lease: Arc<dyn OwnershipLease> = Arc::new(InMemoryLease::new());
/// # let _ = lease;
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryLease {
    // Invariant: a stream is in the set exactly while one guard for it is
    // alive; insert and remove happen under this lock.
    held: Arc<Mutex<HashSet<StreamId>>>,
}

impl InMemoryLease {
    /// An empty lease table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the lease of `stream` is currently held.
    pub fn is_held(&self, stream: &StreamId) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(stream)
    }
}

#[async_trait]
impl OwnershipLease for InMemoryLease {
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if !held.insert(stream.clone()) {
            return Err(LeaseError::Held {
                stream: stream.clone(),
                holder: "another holder in this process".to_owned(),
            });
        }
        let table = Arc::clone(&self.held);
        let stream = stream.clone();
        Ok(LeaseGuard::on_release(move || {
            table
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&stream);
        }))
    }
}
