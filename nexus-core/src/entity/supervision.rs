//! Supervision: what happens when a handler panics or the store fails.
//!
//! The entity restarts: its state is dropped, it waits a backoff, and it
//! recovers from the store into a fresh `A::default()` before the next
//! command. Its mailbox survives. Too many restarts within a window stop the
//! entity: what is queued is answered with
//! [`EntityError::RestartLimit`](crate::EntityError::RestartLimit), and the
//! next message for the id starts a fresh entity.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The restart policy of an entity type.
///
/// ```
/// use std::time::Duration;
/// use nexus_core::Supervision;
/// let policy = Supervision::default()
///     .backoff(Duration::from_millis(50), Duration::from_secs(2))
///     .max_restarts(5, Duration::from_secs(30));
/// assert_eq!(policy.backoff_for(1), Duration::from_millis(50));
/// assert_eq!(policy.backoff_for(3), Duration::from_millis(200));
/// assert_eq!(policy.backoff_for(20), Duration::from_secs(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Supervision {
    min_backoff: Duration,
    max_backoff: Duration,
    max_restarts: u32,
    within: Duration,
}

impl Default for Supervision {
    /// Backoff from 10 ms doubling to 1 s; at most 10 restarts within a
    /// minute.
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(1),
            max_restarts: 10,
            within: Duration::from_secs(60),
        }
    }
}

impl Supervision {
    /// Wait `min` before the first restart in a window, doubling up to `max`.
    #[must_use]
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.min_backoff = min;
        self.max_backoff = max.max(min);
        self
    }

    /// Stop restarting when the entity would restart more than `n` times
    /// within `within`: every command is then answered
    /// [`RestartLimit`](crate::EntityError::RestartLimit) for a cooldown of
    /// the longest backoff, after which the next command recovers the
    /// entity again.
    #[must_use]
    pub fn max_restarts(mut self, n: u32, within: Duration) -> Self {
        self.max_restarts = n;
        self.within = within;
        self
    }

    /// The backoff before the `nth` restart (1-based) of a window.
    pub fn backoff_for(&self, nth: u32) -> Duration {
        let doublings = nth.saturating_sub(1).min(31);
        self.min_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }

    /// The restart limit and its window.
    pub fn limit(&self) -> (u32, Duration) {
        (self.max_restarts, self.within)
    }

    /// How long an entity past its restart limit refuses commands.
    pub fn cooldown(&self) -> Duration {
        self.max_backoff
    }
}

/// The restarts of one entity within the sliding window.
#[derive(Debug, Default)]
pub(crate) struct RestartWindow {
    restarts: VecDeque<Instant>,
}

impl RestartWindow {
    /// Records a restart now. Returns the backoff to wait, or `None` when the
    /// limit is exceeded and the entity must stop.
    pub(crate) fn record(&mut self, policy: &Supervision) -> Option<Duration> {
        let now = Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|at| now.duration_since(*at) >= policy.within)
        {
            self.restarts.pop_front();
        }
        self.restarts.push_back(now);
        let count = u32::try_from(self.restarts.len()).unwrap_or(u32::MAX);
        (count <= policy.max_restarts).then(|| policy.backoff_for(count))
    }

    /// How many restarts the window currently holds.
    pub(crate) fn count(&self) -> u32 {
        u32::try_from(self.restarts.len()).unwrap_or(u32::MAX)
    }
}
