//! Ownership leases: at most one process writes an entity at a time, and a
//! process that lost the lease writes nothing and answers nothing.
//!
//! Within one [`ActorSystem`](crate::ActorSystem) the entity registry already
//! keeps one actor per id. A lease extends that across processes: before an
//! entity recovers, it acquires the lease of its stream's shard, and it holds
//! the [`LeaseGuard`] until it stops or passivates. When the lease cannot be
//! taken, the entity writes nothing and answers
//! [`EntityError::NotOwner`](crate::EntityError::NotOwner).
//!
//! Every acquisition has an epoch that only grows ([`Tenure`]), and every
//! write the entity makes carries it as a [`Fence`]: the store refuses a
//! write whose epoch is no longer current in the same statement that would
//! store it. The holder's own monotonic clock ends the tenure before the
//! lease can expire at the database, so a process paused past its lease
//! wakes up fenced: it answers neither writes nor reads from its old state.
//! [`guide::ownership`](crate::guide::ownership) describes the whole model.

mod fence;
mod memory;
mod tenure;

pub use fence::Fence;
pub use memory::InMemoryLease;
pub use tenure::Tenure;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::{BoxError, StreamId};

/// The shard of `stream` among `shards`: FNV-1a of the stream id modulo the
/// shard count, the same in every process and build (std's hasher is
/// randomly keyed), so that every node of a cluster and every lease agree.
///
/// ```
/// use nexus_core::{StreamId, lease::shard_of};
/// let shard = shard_of(&StreamId::new("wallet-alice"), 64);
/// assert!(shard < 64);
/// assert_eq!(shard, shard_of(&StreamId::new("wallet-alice"), 64));
/// ```
pub fn shard_of(stream: &StreamId, shards: u32) -> u32 {
    let hash = fnv1a(stream.as_str().as_bytes());
    u32::try_from(hash % u64::from(shards.max(1))).expect("a remainder of a u32 fits a u32")
}

/// 64-bit FNV-1a: small, stable across processes and builds.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod hash_tests {
    #[test]
    fn the_shard_hash_is_the_published_fnv1a() {
        assert_eq!(super::fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(super::fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}

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
/// The guard carries the [`Fence`] every write must present, and tells
/// whether the lease is still current by the holder's clock.
///
/// ```
/// use std::sync::{Arc, atomic::{AtomicBool, Ordering}};
/// use nexus_core::lease::{LeaseGuard, Tenure};
/// let released = Arc::new(AtomicBool::new(false));
/// let flag = Arc::clone(&released);
/// let tenure = Tenure::unbounded(0, 1);
/// let guard = LeaseGuard::on_release(tenure, move || flag.store(true, Ordering::SeqCst));
/// assert!(guard.is_current());
/// drop(guard);
/// assert!(released.load(Ordering::SeqCst));
/// ```
#[must_use = "the lease is released as soon as the guard is dropped"]
pub struct LeaseGuard {
    fence: Fence,
    // Dropping the held value is what releases the lease.
    _held: Box<dyn Send + Sync>,
}

impl LeaseGuard {
    /// A guard of `tenure` that keeps `held` alive; the value's own `Drop`
    /// releases the lease.
    pub fn new(tenure: Arc<Tenure>, held: impl Send + Sync + 'static) -> Self {
        Self {
            fence: Fence::new(tenure),
            _held: Box::new(held),
        }
    }

    /// A guard of `tenure` that calls `release` when dropped.
    pub fn on_release(tenure: Arc<Tenure>, release: impl FnOnce() + Send + 'static) -> Self {
        Self::new(
            tenure,
            OnRelease(std::sync::Mutex::new(Some(Box::new(release)))),
        )
    }

    /// The fence the holder's writes carry.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Whether the lease is still the holder's, by its own clock.
    pub fn is_current(&self) -> bool {
        self.fence.is_current()
    }

    /// Resolves once the lease is no longer current (revoked or past its
    /// deadline).
    pub async fn lost(&self) {
        self.fence.tenure().lost().await;
    }
}

impl fmt::Debug for LeaseGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaseGuard")
            .field("fence", &self.fence)
            .finish_non_exhaustive()
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
    /// The lease was held, and is no longer: revoked, expired by the
    /// holder's clock, or refused by the store's fence. Another process may
    /// own the stream now; nothing was written under the old epoch since.
    #[error("the lease of {stream} (shard {shard}, epoch {epoch}) was lost")]
    Lost {
        /// The stream of the entity.
        stream: StreamId,
        /// The shard whose lease was lost.
        shard: u32,
        /// The epoch that is no longer current.
        epoch: u64,
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
