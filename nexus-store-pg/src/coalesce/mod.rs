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
//! - a group the database refuses as a whole (a reused event id, a payload
//!   Postgres rejects, a deadlock with another process) stored nothing, and
//!   each of its appends is then run alone: one bad batch never fails
//!   another;
//! - a group whose outcome is unknown (its connection was lost after the
//!   statement was sent) is [`Ambiguous`](nexus_core::StoreError::Ambiguous)
//!   for every caller, and stored all or nothing: retrying each batch
//!   (idempotent by event id) tells which;
//! - an append waiting alone is sent at once, by itself, with the same
//!   statement as without coalescing: a lone caller waits for no group.
//!
//! Fenced appends are coalesced too: each checks its own lease in the
//! group's statement, as it would in its own, and a stale fence refuses
//! that append only.

mod group;
mod queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nexus_core::lease::Fence;
use nexus_core::{ExpectedVersion, NewEvent, StoreError, StreamId};
use tokio::sync::oneshot;

use crate::PgEventStore;
use queue::{GroupLimits, Outcome, Pending, Queue};

/// How a [`PgEventStore`] coalesces concurrent appends of different streams
/// into one statement (see [`PgStoreConfig::coalesce_appends`](crate::PgStoreConfig::coalesce_appends)).
///
/// On by default: up to half the pool's connections in coalesced
/// statements at once, each with at most 64 streams and 1,024 events.
///
/// More statements in flight overlap more commits (each waits for its WAL
/// flush); fewer make larger groups, which cost the server less per event.
/// Half the pool leaves the other half to reads and to appends of other
/// kinds (snapshots, states, leases).
///
/// ```
/// use nexus_store_pg::AppendCoalescing;
/// let coalescing = AppendCoalescing::new().in_flight(8).max_streams(32);
/// assert!(coalescing.is_on());
/// assert!(!AppendCoalescing::off().is_on());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AppendCoalescing {
    /// `None`: half the pool's connections.
    in_flight: Option<usize>,
    max_streams: usize,
    max_events: usize,
}

impl AppendCoalescing {
    /// The defaults: half the pool's connections in flight, 64 streams
    /// and 1,024 events each.
    pub const fn new() -> Self {
        Self {
            in_flight: None,
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

    fn limits(self) -> GroupLimits {
        GroupLimits {
            streams: self.max_streams,
            events: self.max_events,
        }
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
    settings: AppendCoalescing,
    /// How many workers run: one statement in flight each.
    workers: usize,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("settings", &self.settings)
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
    /// A coalescer with `settings` on a pool of `connections`, or `None`
    /// when they turn it off.
    pub(crate) fn new(settings: AppendCoalescing, connections: u32) -> Option<Arc<Self>> {
        settings.is_on().then(|| {
            Arc::new(Self {
                queue: Arc::default(),
                live: Arc::default(),
                settings,
                workers: settings.statements(connections),
            })
        })
    }

    /// Hands the append to a worker of `store` and waits for its outcome;
    /// gives the events back when no worker can take it (no runtime to run
    /// one on), for the caller to append them itself.
    pub(crate) async fn append(
        &self,
        store: &PgEventStore,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        fence: Option<&Fence>,
    ) -> Result<Outcome, Vec<NewEvent>> {
        if !self.start_workers(store) {
            return Err(events);
        }
        let (reply, outcome) = oneshot::channel();
        let pending = Pending {
            stream: stream.clone(),
            expected,
            events,
            fence: fence.cloned(),
            reply,
        };
        if let Err(pending) = self.queue.push(pending) {
            return Err(pending.events);
        }
        Ok(outcome.await.unwrap_or_else(|_| {
            Err(StoreError::Ambiguous {
                source: Box::new(WorkerStopped),
            })
        }))
    }

    /// Starts workers up to the configured number; false when there is no
    /// runtime to start them on.
    fn start_workers(&self, store: &PgEventStore) -> bool {
        loop {
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
                    limits: self.settings.limits(),
                    _live: Live(Arc::clone(&self.live)),
                };
                runtime.spawn(worker.run());
            }
        }
    }
}

/// Counts a running worker; dropped with the worker's task however it ends.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
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
        while let Some(group) = self.queue.next_group(self.limits).await {
            let streams = InFlight {
                queue: &self.queue,
                streams: group.iter().map(|p| p.stream.clone()).collect(),
            };
            self.store.append_group(group).await;
            drop(streams);
        }
    }
}

/// The streams of a group being written, freed when it is done, or when
/// the worker's task ends mid-group (a panic, a runtime shutting down), so
/// no stream stays blocked.
struct InFlight<'a> {
    queue: &'a Queue,
    streams: Vec<StreamId>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.queue.finish(&self.streams);
    }
}
