//! Reusable timers for ask deadlines.
//!
//! Guarantee: a [`Deadline`] completes at, and never before, the instant
//! it was set to, like `tokio::time::sleep_until`.
//!
//! Why reuse them: a fresh tokio timer is inserted into the runtime's timer
//! wheel on its first poll, and when it is due before everything the wheel
//! held as the timer's worker last parked (an ask's 30 s deadline against
//! an entity's two-minute receive timeout, say), tokio wakes that worker to
//! recompute how long to sleep. That is one cross-thread wake-up per ask,
//! on a worker that then finds nothing to run and parks again: on a small
//! machine it takes a core from the caller or the entity, and the ask's
//! latency doubles or worse depending on which worker held the driver. A
//! registered timer moved *later* only has its deadline updated (tokio
//! re-files it when the old one comes due), so a timer taken from the pool
//! and set to now + timeout costs neither a wheel lock nor a wake-up.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Id};
use tokio::time::{Instant, Sleep};

/// Idle timers kept at most; more concurrent asks than this allocate and
/// drop their own.
const MAX_IDLE: usize = 1_024;

/// A pool of timers of one registry.
#[derive(Default)]
pub(crate) struct Deadlines {
    // Each timer belongs to the runtime that made it, and is handed out
    // only within that runtime: there it is alive, while another may
    // already be shut down (its timers would panic when polled).
    idle: Mutex<Vec<(Id, Pin<Box<Sleep>>)>>,
}

impl Deadlines {
    /// A deadline at `at`. Must be called within a tokio runtime with
    /// timers enabled, like `tokio::time::sleep_until`.
    pub(crate) fn until(&self, at: Instant) -> Deadline<'_> {
        let runtime = Handle::current().id();
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            match idle.last() {
                Some((made_in, _)) if *made_in == runtime => idle.pop(),
                // Timers of another runtime: that runtime is not the one in
                // use any more (or not the one asking); they are dropped.
                Some(_) => {
                    idle.clear();
                    None
                }
                None => None,
            }
        };
        let timer = match reused {
            Some((_, mut timer)) => {
                timer.as_mut().reset(at);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(at)),
        };
        Deadline {
            pool: self,
            runtime,
            timer: Some(timer),
        }
    }
}

/// A timer taken from [`Deadlines`]; it goes back when dropped.
pub(crate) struct Deadline<'p> {
    pool: &'p Deadlines,
    runtime: Id,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Future for Deadline<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.timer.as_mut() {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Ready(()),
        }
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        if let Some(timer) = self.timer.take() {
            let mut idle = self
                .pool
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push((self.runtime, timer));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_reused_timer_completes_at_its_new_deadline_not_its_old_one() {
        let deadlines = Deadlines::default();
        let start = Instant::now();
        deadlines
            .until(Instant::now() + Duration::from_secs(10))
            .await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        // The pooled timer already fired; it is reused for a later deadline.
        let first = deadlines.until(Instant::now() + Duration::from_secs(30));
        drop(first);
        let again = Instant::now();
        deadlines
            .until(Instant::now() + Duration::from_secs(30))
            .await;
        assert_eq!(again.elapsed(), Duration::from_secs(30));
        assert_eq!(deadlines.idle.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_moved_later_does_not_fire_at_the_earlier_one() {
        let deadlines = Deadlines::default();
        // Registered at +5 s, then given back unfired.
        let mut early = deadlines.until(Instant::now() + Duration::from_secs(5));
        assert!(futures_poll_once(&mut early).await.is_pending());
        drop(early);
        let start = Instant::now();
        let late = deadlines.until(Instant::now() + Duration::from_secs(60));
        let fired = tokio::time::timeout(Duration::from_secs(59), late).await;
        assert!(fired.is_err(), "the reused timer kept its old deadline");
        assert_eq!(start.elapsed(), Duration::from_secs(59));
    }

    async fn futures_poll_once(deadline: &mut Deadline<'_>) -> Poll<()> {
        std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *deadline).poll(cx))).await
    }
}
