//! Coalesced appends: concurrent appends of *different* streams written by
//! one statement in one transaction, Postgres's group commit moved to the
//! client.
//!
//! Under load the cost of an append is its commit (the WAL flush) and its
//! round trip, not its rows. The store's callers hand their appends to a
//! few workers; a worker takes every append waiting for it (one per
//! stream, up to [`AppendCoalescing::max_streams`]) and writes them with
//! one statement, so many streams share one commit. What each caller is
//! told does not change:
//!
//! - each stream keeps its own expected-version check: a stale version,
//!   "no stream" for an existing stream or an archived stream refuses that
//!   stream only, and its caller gets the same error an append alone would
//!   give, while the group's other streams are stored;
//! - a group the database refuses or cancels as a whole (a reused event
//!   id, a value Postgres rejects, a deadlock with another process, a lock
//!   or statement timeout) stored nothing, and each of its appends is then
//!   run alone: one bad or blocked batch never fails another;
//! - a group whose outcome is unknown (its connection was lost after the
//!   statement was sent) is [`Ambiguous`](nexus_core::StoreError::Ambiguous)
//!   for every caller, and stored all or nothing: retrying each batch
//!   (idempotent by event id) tells which;
//! - an append that waits for a statement longer than the pool's acquire
//!   timeout is [`PoolExhausted`](nexus_core::StoreError::PoolExhausted),
//!   unsent, as an append alone that found no free connection; one whose
//!   caller has gone is never sent;
//! - the appends of one stream are written one at a time, in the order
//!   they were made;
//! - an append that finds fewer than [`AppendCoalescing::eager`]
//!   statements in flight and a worker idle is sent at once, by itself,
//!   with the same statement as without coalescing: a lone caller waits
//!   for no group. Under load an append waits for a statement to finish,
//!   which is what makes the groups, and at most
//!   [`AppendCoalescing::patience`] from its arrival before a further
//!   statement takes it (up to [`AppendCoalescing::in_flight`]), so slow
//!   statements hold it back no longer than that.
//!
//! Fenced appends are coalesced too: each checks its own lease in the
//! group's statement, as it would in its own, and a stale fence refuses
//! that append only.

mod group;
mod held;
mod queue;

use held::Held;
pub(crate) use held::Via;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nexus_core::lease::Fence;
use nexus_core::{ExpectedVersion, NewEvent, StoreError, StreamId};
use sqlx::Postgres;
use sqlx::pool::PoolOptions;
use tokio::sync::{Notify, oneshot};

use crate::PgEventStore;
use crate::convert::FenceKey;
use queue::{GroupLimits, Outcome, Pending, Queue};

/// How a [`PgEventStore`] coalesces concurrent appends of different streams
/// into one statement (see [`PgStoreConfig::coalesce_appends`](crate::PgStoreConfig::coalesce_appends)).
///
/// On by default: two statements sent as soon as appends wait, up to half
/// the pool's connections in flight when those are slow, each statement
/// with at most 64 streams and 1,024 events.
///
/// More statements in flight overlap more commits (each waits for its WAL
/// flush); fewer make larger groups, which cost the server less per event.
/// So a few go out at once ([`eager`](Self::eager)), and the appends that
/// arrive meanwhile wait for one of them to finish, which takes them all
/// in one group. Only when none finishes within
/// [`patience`](Self::patience) of an append's arrival (a lock wait, a
/// slow flush) does another statement take it, up to
/// [`in_flight`](Self::in_flight). Half the
/// pool leaves the other half to reads and to appends of other kinds
/// (snapshots, states, leases).
///
/// ```
/// use std::time::Duration;
/// use nexus_store_pg::AppendCoalescing;
/// let coalescing = AppendCoalescing::new()
///     .in_flight(8)
///     .eager(2)
///     .patience(Duration::from_millis(1))
///     .max_streams(32);
/// assert!(coalescing.is_on());
/// assert!(!AppendCoalescing::off().is_on());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendCoalescing {
    /// `None`: half the pool's connections.
    in_flight: Option<usize>,
    eager: usize,
    patience: Duration,
    max_streams: usize,
    max_events: usize,
}

impl AppendCoalescing {
    /// The defaults: two statements eager, up to half the pool's
    /// connections in flight after 5 ms of patience, 64 streams and 1,024
    /// events each.
    pub const fn new() -> Self {
        Self {
            in_flight: None,
            eager: 2,
            patience: Duration::from_millis(5),
            max_streams: 64,
            max_events: 1_024,
        }
    }

    /// No coalescing: every append is its own statement and transaction.
    pub const fn off() -> Self {
        Self {
            in_flight: Some(0),
            ..Self::new()
        }
    }

    /// How many coalesced statements may run at once (each holds one
    /// connection of the pool while it runs; default half the pool's
    /// connections); 0 turns coalescing off.
    #[must_use]
    pub const fn in_flight(mut self, statements: usize) -> Self {
        self.in_flight = Some(statements);
        self
    }

    /// How many statements are sent as soon as appends wait for one
    /// (default 2, at least 1, at most [`in_flight`](Self::in_flight)).
    #[must_use]
    pub const fn eager(mut self, statements: usize) -> Self {
        self.eager = if statements == 0 { 1 } else { statements };
        self
    }

    /// How long an append waits, with [`eager`](Self::eager) statements
    /// in flight, for one of them to finish before a further statement
    /// takes it (default 5 ms; at most half the pool's acquire timeout, so
    /// a held-back append is never told the pool was exhausted). While
    /// `eager` statements stay stuck (lock waits), every append waits this
    /// long.
    #[must_use]
    pub const fn patience(mut self, patience: Duration) -> Self {
        self.patience = patience;
        self
    }

    /// The most streams one statement writes (at least 1).
    #[must_use]
    pub const fn max_streams(mut self, streams: usize) -> Self {
        self.max_streams = if streams == 0 { 1 } else { streams };
        self
    }

    /// The most events one statement writes; a single append of more is
    /// still written, alone (at least 1).
    #[must_use]
    pub const fn max_events(mut self, events: usize) -> Self {
        self.max_events = if events == 0 { 1 } else { events };
        self
    }

    /// Whether appends are coalesced at all.
    pub const fn is_on(&self) -> bool {
        !matches!(self.in_flight, Some(0))
    }

    /// The statements in flight on a pool of `connections`.
    fn statements(self, connections: u32) -> usize {
        self.in_flight
            .unwrap_or_else(|| usize::try_from(connections / 2).unwrap_or(1).max(1))
    }
}

impl Default for AppendCoalescing {
    fn default() -> Self {
        Self::new()
    }
}

/// A coalescing worker answered nobody: it panicked, or the runtime it ran
/// on shut down, after it took the append.
#[derive(Debug, thiserror::Error)]
#[error("the append's coalescing worker stopped before it answered")]
struct WorkerStopped;

/// The appends of one store (shared by its clones) and its workers.
///
/// Workers start with the first append, on its runtime, and stop when the
/// store's last clone is dropped; one that stops otherwise (its runtime
/// shut down) is started again by the next append.
pub(crate) struct Coalescer {
    queue: Arc<Queue>,
    live: Arc<AtomicUsize>,
    /// Woken when a worker stops.
    stopped: Arc<Notify>,
    limits: GroupLimits,
    /// How many workers run: one statement in flight each.
    workers: usize,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("limits", &self.limits)
            .field("workers", &self.workers)
            .field("live", &self.live.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Drop for Coalescer {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl Coalescer {
    /// A coalescer with `settings` on `pool`, or `None` when they turn it
    /// off.
    pub(crate) fn new(
        settings: AppendCoalescing,
        pool: &PoolOptions<Postgres>,
    ) -> Option<Arc<Self>> {
        settings.is_on().then(|| {
            Arc::new(Self {
                queue: Arc::default(),
                live: Arc::default(),
                stopped: Arc::default(),
                limits: GroupLimits {
                    streams: settings.max_streams,
                    events: settings.max_events,
                    wait: pool.get_acquire_timeout(),
                    eager: settings.eager,
                    // Held back no longer than half of what it may wait.
                    patience: settings.patience.min(pool.get_acquire_timeout() / 2),
                },
                workers: settings.statements(pool.get_max_connections()),
            })
        })
    }

    /// Hands a copy of the append to a worker of `store` and waits for its
    /// outcome; `None` when no worker can take it (no runtime to run one
    /// on, or the queue is closed), for the caller to append them itself. `expected_column` is
    /// `expected` as bound, and a fenced append's fence comes with its
    /// columns, both already checked.
    pub(crate) async fn append(
        &self,
        store: &PgEventStore,
        stream: &StreamId,
        (expected, expected_column): (ExpectedVersion, Option<i64>),
        events: &[NewEvent],
        fence: Option<(Fence, FenceKey)>,
    ) -> Option<Outcome> {
        if !self.start_workers(store) {
            return None;
        }
        let (reply, mut outcome) = oneshot::channel();
        let pending = Pending {
            stream: stream.clone(),
            expected,
            expected_column,
            // Owned: the worker that writes it runs on another task.
            events: events.to_vec(),
            fence,
            queued: Instant::now(),
            deadline: Instant::now() + self.limits.wait,
            reply,
        };
        if self.queue.push(pending, self.limits).is_err() {
            return None;
        }
        loop {
            let stopped = self.stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            tokio::select! {
                biased;
                answer = &mut outcome => {
                    return Some(answer.unwrap_or_else(|_| {
                        Err(StoreError::Ambiguous {
                            source: Box::new(WorkerStopped),
                        })
                    }));
                }
                // A worker stopped (its runtime shut down, or it panicked):
                // start others on this caller's runtime, so the appends
                // still queued are written.
                () = &mut stopped => {
                    self.start_workers(store);
                }
            }
        }
    }

    /// Starts workers up to the configured number; false when none runs
    /// and there is no runtime to start one on. Each missing worker is
    /// tried once: a runtime shutting down drops a spawned task at once.
    fn start_workers(&self, store: &PgEventStore) -> bool {
        for _ in 0..self.workers {
            let live = self.live.load(Ordering::Acquire);
            if live >= self.workers {
                return true;
            }
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return live > 0;
            };
            if self
                .live
                .compare_exchange(live, live + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let worker = Worker {
                    queue: Arc::clone(&self.queue),
                    store: store.direct(),
                    limits: self.limits,
                    _live: Live {
                        live: Arc::clone(&self.live),
                        stopped: Arc::clone(&self.stopped),
                    },
                };
                runtime.spawn(worker.run());
            }
        }
        self.live.load(Ordering::Acquire) > 0
    }
}

/// Counts a running worker; dropped with the worker's task however it
/// ends, waking the callers that wait so they can start another.
struct Live {
    live: Arc<AtomicUsize>,
    stopped: Arc<Notify>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.stopped.notify_waiters();
    }
}

/// One worker: takes groups and writes them, one at a time.
struct Worker {
    queue: Arc<Queue>,
    /// The store without coalescing, for the statements themselves.
    store: PgEventStore,
    limits: GroupLimits,
    _live: Live,
}

impl Worker {
    async fn run(self) {
        let mut held = Held::default();
        let mut next = None;
        loop {
            let group = if let Some(group) = next.take() {
                group
            } else {
                // Nothing to write: an idle worker holds no connection.
                held.release();
                let Some(group) = self.queue.next_group(self.limits).await else {
                    return;
                };
                group
            };
            let streams = InFlight {
                queue: &self.queue,
                streams: group.iter().map(|p| p.stream.clone()).collect(),
                done: false,
            };
            self.store.append_group(group, &mut held, &self.queue).await;
            // The appends that waited for this statement go in this
            // worker's next one, on the connection it holds.
            next = streams.finish_and_take(self.limits);
        }
    }
}

/// The streams of a group being written, freed when it is done, or when
/// the worker's task ends mid-group (a panic, a runtime shutting down), so
/// no stream stays blocked.
struct InFlight<'a> {
    queue: &'a Queue,
    streams: Vec<StreamId>,
    /// Freed by its worker, which takes the next group itself.
    done: bool,
}

impl InFlight<'_> {
    /// Frees the streams and takes the next group, if one may go now.
    fn finish_and_take(mut self, limits: GroupLimits) -> Option<Vec<Pending>> {
        self.done = true;
        self.queue.finish_and_take(&self.streams, limits)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.queue.finish(&self.streams);
        }
    }
}
