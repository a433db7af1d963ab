//! The fencing token a write for an owned entity carries.

use std::fmt;
use std::sync::Arc;

use super::Tenure;

/// What a write for a leased entity carries so that the store can refuse it
/// when the lease is no longer the writer's (Kleppmann's fencing token).
///
/// A store checks the fence *in the same atomic step* as the write: a
/// database store compares the shard's epoch and expiry in the write's own
/// statement; an in-memory store checks [`is_current`](Self::is_current)
/// under the lock that makes the write atomic. A refused write stores
/// nothing and fails with [`StoreError::Fenced`](crate::StoreError::Fenced).
///
/// ```
/// use nexus_core::lease::{Fence, Tenure};
/// let tenure = Tenure::unbounded(4, 9);
/// let fence = Fence::new(tenure.clone());
/// assert_eq!((fence.shard(), fence.epoch()), (4, 9));
/// assert!(fence.is_current());
/// tenure.revoke();
/// assert!(!fence.is_current());
/// ```
#[derive(Clone)]
pub struct Fence {
    tenure: Arc<Tenure>,
}

impl Fence {
    /// The fence of `tenure`.
    pub fn new(tenure: Arc<Tenure>) -> Self {
        Self { tenure }
    }

    /// The shard whose lease the write relies on.
    pub fn shard(&self) -> u32 {
        self.tenure.shard()
    }

    /// The epoch under which the writer holds the shard.
    pub fn epoch(&self) -> u64 {
        self.tenure.epoch()
    }

    /// Whether the writer's own view still holds the lease (not revoked,
    /// deadline not passed). A database store checks the database's view
    /// in its statement as well.
    pub fn is_current(&self) -> bool {
        self.tenure.is_current()
    }

    /// The tenure behind the fence.
    pub fn tenure(&self) -> &Arc<Tenure> {
        &self.tenure
    }
}

impl fmt::Debug for Fence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fence")
            .field("shard", &self.shard())
            .field("epoch", &self.epoch())
            .finish()
    }
}
