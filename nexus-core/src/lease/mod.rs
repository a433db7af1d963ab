//! Ownership leases: at most one process writes an entity at a time.
//!
//! Within one [`ActorSystem`](crate::ActorSystem) the entity registry already
//! keeps one actor per id. A lease extends that across processes: before an
//! entity recovers, it acquires the lease of its stream, and it holds the
//! [`LeaseGuard`] until it stops or passivates. When the lease cannot be
//! taken, the entity writes nothing and answers
//! [`EntityError::NotOwner`](crate::EntityError::NotOwner).
//!
//! A lease is an optimisation of ownership, not the arbiter of correctness:
//! the store's versioned append still turns a second writer into a conflict.

mod memory;

pub use memory::InMemoryLease;

use std::fmt;

use async_trait::async_trait;

use crate::{BoxError, StreamId};

/// Grants one holder at a time the right to write a stream.
///
/// Implementations may lease whole shards rather than single streams; the
/// runtime only asks for the stream it is about to own and drops the guard
/// when it no longer does.
///
/// ```
/// use nexus_core::lease::{InMemoryLease, OwnershipLease};
/// use nexus_core::StreamId;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let lease = InMemoryLease::new();
/// let stream = StreamId::new("wallet-alice");
/// let guard = lease.acquire(&stream).await.unwrap();
/// assert!(lease.acquire(&stream).await.is_err());
/// drop(guard);
/// assert!(lease.acquire(&stream).await.is_ok());
/// # });
/// ```
#[async_trait]
pub trait OwnershipLease: Send + Sync + 'static {
    /// Takes the lease of `stream`, or says why it cannot.
    ///
    /// The lease is held until the returned guard is dropped.
    async fn acquire(&self, stream: &StreamId) -> Result<LeaseGuard, LeaseError>;
}

/// Proof that a lease is held; dropping it releases the lease.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// use nexus_core::lease::LeaseGuard;
/// let released = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&released);
/// let guard = LeaseGuard::on_release(move || flag.store(true, Ordering::SeqCst));
/// drop(guard);
/// assert!(released.load(Ordering::SeqCst));
/// ```
#[must_use = "the lease is released as soon as the guard is dropped"]
pub struct LeaseGuard {
    // Dropping the held value is what releases the lease.
    _held: Box<dyn Send + Sync>,
}

impl LeaseGuard {
    /// A guard that keeps `held` alive; the value's own `Drop` releases the
    /// lease (a connection holding an advisory lock, for example).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        Self {
            _held: Box::new(held),
        }
    }

    /// A guard that calls `release` when dropped.
    pub fn on_release(release: impl FnOnce() + Send + 'static) -> Self {
        Self::new(OnRelease(std::sync::Mutex::new(Some(Box::new(release)))))
    }
}

impl fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseGuard").finish_non_exhaustive()
    }
}

type ReleaseFn = Box<dyn FnOnce() + Send>;

/// Runs its function once, on drop. The mutex only makes it `Sync`.
struct OnRelease(std::sync::Mutex<Option<ReleaseFn>>);

impl Drop for OnRelease {
    fn drop(&mut self) {
        let release = self
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(release) = release {
            release();
        }
    }
}

/// Why a lease could not be taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LeaseError {
    /// Another holder has the lease.
    #[error("the lease of {stream} is held by {holder}")]
    Held {
        /// The stream asked for.
        stream: StreamId,
        /// Who holds it, as far as the lease knows ("another holder" if not).
        holder: String,
    },
    /// The lease's backend failed; ownership is unknown.
    #[error("the lease of {stream} could not be checked: {source}")]
    Backend {
        /// The stream asked for.
        stream: StreamId,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}
