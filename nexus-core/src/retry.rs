//! Retry policies for optimistic-concurrency conflicts: a few immediate
//! retries, then exponential backoff with jitter, up to a cap.

use std::time::Duration;

/// How an entity retries a command whose append conflicted with another
/// writer: it reloads its state from the store and decides the command again.
///
/// Retry `n` (1-based) happens at once while `n <= immediate`; later retries
/// wait `initial * 2^k` (k counting from 0 for the first delayed retry),
/// capped at `max_delay`, with "equal jitter": half the delay is fixed and
/// the other half random, so that competing writers spread out. After
/// `immediate + delayed` retries the caller gets
/// [`EntityError::Conflict`](crate::EntityError::Conflict).
///
/// ```
/// use std::time::Duration;
/// use nexus_core::RetryPolicy;
/// let policy = RetryPolicy::default()
///     .immediate(2)
///     .delayed(3, Duration::from_millis(10), Duration::from_millis(25));
/// assert_eq!(policy.delay(1), Some(Duration::ZERO));
/// assert_eq!(policy.delay(2), Some(Duration::ZERO));
/// let third = policy.delay(3).unwrap();
/// assert!(third >= Duration::from_millis(5) && third <= Duration::from_millis(10));
/// let fifth = policy.delay(5).unwrap();
/// assert!(fifth >= Duration::from_micros(12_500) && fifth <= Duration::from_millis(25));
/// assert_eq!(policy.delay(6), None);
/// assert_eq!(policy.max_retries(), 5);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    immediate: u32,
    delayed: u32,
    initial_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three immediate retries, then five delayed ones from 10 ms, capped at
    /// one second.
    fn default() -> Self {
        Self {
            immediate: 3,
            delayed: 5,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Never retry: the first conflict goes back to the caller.
    ///
    /// ```
    /// assert_eq!(nexus_core::RetryPolicy::none().delay(1), None);
    /// ```
    pub fn none() -> Self {
        Self {
            immediate: 0,
            delayed: 0,
            ..Self::default()
        }
    }

    /// Retry `n` times at once before backing off.
    #[must_use]
    pub fn immediate(mut self, n: u32) -> Self {
        self.immediate = n;
        self
    }

    /// Then retry `n` more times, waiting from `initial` doubling up to `max`
    /// (each with jitter).
    #[must_use]
    pub fn delayed(mut self, n: u32, initial: Duration, max: Duration) -> Self {
        self.delayed = n;
        self.initial_delay = initial;
        self.max_delay = max.max(initial);
        self
    }

    /// How many retries in all before giving up.
    pub fn max_retries(&self) -> u32 {
        self.immediate.saturating_add(self.delayed)
    }

    /// How long to wait before retry `attempt` (1-based), or `None` when the
    /// policy is exhausted.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt == 0 || attempt > self.max_retries() {
            return None;
        }
        if attempt <= self.immediate {
            return Some(Duration::ZERO);
        }
        let step = attempt - self.immediate - 1;
        let base = self
            .initial_delay
            .saturating_mul(2u32.saturating_pow(step))
            .min(self.max_delay);
        let half = base / 2;
        let jitter = Duration::from_nanos(fastrand::u64(
            0..=u64::try_from(base.saturating_sub(half).as_nanos()).unwrap_or(u64::MAX),
        ));
        Some(half + jitter)
    }
}
