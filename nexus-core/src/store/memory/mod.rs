//! In-memory stores: the embedded default, for tests, examples and single
//! process programs that can lose their data on exit.
//!
//! Each store keeps its data behind one mutex that is never held across an
//! `.await`, so every operation is atomic with respect to the others and the
//! stores are safe to share between any number of tasks.

mod chunked;
mod event;
mod event_ids;
mod snapshot;
mod state;

pub use event::InMemoryEventStore;
pub use snapshot::InMemorySnapshotStore;
pub use state::InMemoryStateStore;

use std::sync::{Mutex, MutexGuard};

use crate::lease::Fence;
use crate::{StoreError, StreamId};

/// Locks `mutex`, ignoring poisoning: no code panics while holding these
/// locks between two writes, so the data behind a poisoned lock is whole.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Refuses a write under a stale fence. Called while the store's lock is
/// held, so that the check and the write are one atomic step: a lease taken
/// over after the check is taken over after the write, and the new owner's
/// recovery, which needs the same lock, sees it.
fn check_fence(stream: &StreamId, fence: &Fence) -> Result<(), StoreError> {
    if fence.is_current() {
        Ok(())
    } else {
        Err(StoreError::Fenced {
            stream: stream.clone(),
            shard: fence.shard(),
            epoch: fence.epoch(),
        })
    }
}
