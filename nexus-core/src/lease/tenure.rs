//! One holding of a lease: its fencing epoch, and until when the holder
//! may act on it by its own monotonic clock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The holder's side of one lease acquisition.
///
/// A lease implementation creates one `Tenure` per acquisition of a shard,
/// with the shard's new epoch, and shares it with every
/// [`LeaseGuard`](super::LeaseGuard) of that shard. It
/// [`extend`](Self::extend)s the tenure on every renewal and
/// [`revoke`](Self::revoke)s it when the lease is lost. The tenure is
/// current while it is not revoked and its deadline, measured on the
/// holder's monotonic clock, has not passed: a process that was paused past
/// its deadline wakes up no longer current, before any message tells it so.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::lease::Tenure;
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// let tenure = Tenure::until(3, 7, tokio::time::Instant::now() + Duration::from_secs(1));
/// assert!(tenure.is_current());
/// tokio::time::sleep(Duration::from_secs(2)).await;
/// assert!(!tenure.is_current());
/// tenure.lost().await; // already lost: returns at once
/// # });
/// ```
#[derive(Debug)]
pub struct Tenure {
    shard: u32,
    epoch: u64,
    /// The clock reading the deadline is counted from.
    origin: Instant,
    /// Nanoseconds after `origin`; `u64::MAX` for no deadline. Only grows.
    deadline: AtomicU64,
    revoked: AtomicBool,
    changed: Notify,
}

const NO_DEADLINE: u64 = u64::MAX;

impl Tenure {
    /// A tenure of `shard` under `epoch` that holds until revoked, for
    /// leases without expiry (in-process ones).
    pub fn unbounded(shard: u32, epoch: u64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            shard,
            epoch,
            origin: Instant::now(),
            deadline: AtomicU64::new(NO_DEADLINE),
            revoked: AtomicBool::new(false),
            changed: Notify::new(),
        })
    }

    /// A tenure of `shard` under `epoch` that holds until `deadline`
    /// unless extended.
    pub fn until(shard: u32, epoch: u64, deadline: Instant) -> std::sync::Arc<Self> {
        let tenure = Self::unbounded(shard, epoch);
        tenure
            .deadline
            .store(tenure.nanos_after_origin(deadline), Ordering::Release);
        tenure
    }

    fn nanos_after_origin(&self, at: Instant) -> u64 {
        let nanos = at.saturating_duration_since(self.origin).as_nanos();
        u64::try_from(nanos).unwrap_or(NO_DEADLINE - 1)
    }

    /// The shard the tenure is of.
    pub fn shard(&self) -> u32 {
        self.shard
    }

    /// The fencing epoch: it only grows from one acquisition of the shard
    /// to the next, so a write carrying an older one can be refused.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves the deadline to `deadline` if that is later. A revoked tenure
    /// stays revoked.
    pub fn extend(&self, deadline: Instant) {
        let nanos = self.nanos_after_origin(deadline);
        self.deadline.fetch_max(nanos, Ordering::AcqRel);
    }

    /// Ends the tenure now, for every guard sharing it.
    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// The deadline, if the tenure has one.
    pub fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Acquire) {
            NO_DEADLINE => None,
            nanos => Some(self.origin + Duration::from_nanos(nanos)),
        }
    }

    /// Whether the holder may still act on the lease: not revoked, and the
    /// deadline not reached.
    pub fn is_current(&self) -> bool {
        !self.revoked.load(Ordering::Acquire) && self.deadline().is_none_or(|d| Instant::now() < d)
    }

    /// Resolves once the tenure is no longer current.
    pub async fn lost(&self) {
        loop {
            let revoked = self.changed.notified();
            tokio::pin!(revoked);
            // Registered before the check, so a revocation in between is
            // not missed.
            revoked.as_mut().enable();
            if !self.is_current() {
                return;
            }
            match self.deadline() {
                Some(deadline) => {
                    tokio::select! {
                        () = revoked => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => revoked.await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_extension_moves_the_deadline_and_never_back() {
        let start = Instant::now();
        let tenure = Tenure::until(0, 1, start + Duration::from_secs(1));
        tenure.extend(start + Duration::from_secs(5));
        tenure.extend(start + Duration::from_secs(2));
        assert_eq!(tenure.deadline(), Some(start + Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(tenure.is_current());
        tenure.lost().await;
        assert!(Instant::now() >= start + Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_revocation_wakes_every_waiter() {
        let tenure = Tenure::unbounded(0, 1);
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let tenure = std::sync::Arc::clone(&tenure);
                tokio::spawn(async move { tenure.lost().await })
            })
            .collect();
        tokio::task::yield_now().await;
        tenure.revoke();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        assert!(!tenure.is_current());
        tenure.extend(Instant::now() + Duration::from_secs(60));
        assert!(!tenure.is_current(), "a revoked tenure stays revoked");
    }
}
