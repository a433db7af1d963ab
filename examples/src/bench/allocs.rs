//! `mem_allocs`: how many allocations the framework makes per persisting
//! ask on a warm entity.
//!
//! The count comes from `nexus-bench`'s counting global allocator
//! (`stats_alloc`, feature `count-allocs`), read before and after a run of
//! sequential asks. The
//! entity persists to [`NullStore`], a store that allocates nothing itself,
//! so every allocation counted is the framework's (and tokio's on its
//! behalf). A binary without the counting allocator counts nothing, and
//! the workload says so instead of printing zero.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::codec::{Bincode, EventCodec};
use nexus_core::{
    ActorSystem, AppendOutcome, Entities, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, StoreError, StreamId,
};
use serde_json::json;

use super::{Add, Tally, Total, emit};

/// Asks counted; the store holds a ready positions buffer for each.
const ASKS: usize = 20_000;
/// Asks before counting: the entity recovers, buffers and pools fill.
const WARM_UP: usize = 1_000;

/// An event store for one stream that keeps only its version: an append
/// checks the expected version, counts the events and drops them. Its
/// positions buffers are made before the count starts, so an append
/// allocates nothing. It keeps no events, so it suits a single entity that
/// never recovers twice (a second recovery would start from nothing and
/// conflict, which the workload would report).
///
/// ```
/// use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use nexus_examples::bench::allocs::NullStore;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = NullStore::new(1);
/// let stream = StreamId::new("tally-a");
/// let event = NewEvent::new("tally.added", 1, vec![1]);
/// let outcome = store.append(&stream, ExpectedVersion::NoStream, &[event]).await.unwrap();
/// assert_eq!((outcome.version, outcome.positions.len()), (1, 1));
/// assert!(store.append(&stream, ExpectedVersion::NoStream, &[]).await.is_err());
/// # });
/// ```
pub struct NullStore {
    version: AtomicU64,
    position: AtomicU64,
    positions: Mutex<Vec<Vec<LogPosition>>>,
}

impl NullStore {
    /// A store ready for `appends` appends of one event without allocating.
    pub fn new(appends: usize) -> Self {
        Self {
            version: AtomicU64::new(0),
            position: AtomicU64::new(0),
            positions: Mutex::new((0..appends).map(|_| Vec::with_capacity(1)).collect()),
        }
    }
}

#[async_trait]
impl EventStore for NullStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        let actual = self.version.load(Ordering::Acquire);
        if !expected.accepts(actual) {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        let count = events.len() as u64;
        let version = actual + count;
        self.version.store(version, Ordering::Release);
        let first = self.position.fetch_add(count, Ordering::AcqRel);
        let mut positions = self
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        positions.extend((1..=count).map(|n| LogPosition {
            epoch: 0,
            commit: first + n,
            sequence: first + n,
        }));
        Ok(AppendOutcome { version, positions })
    }

    async fn read_stream(&self, _: &StreamId, _: u64) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn read_all(&self, _: LogPosition, _: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        Ok(Vec::new())
    }

    async fn stream_version(&self, _: &StreamId) -> Result<u64, StoreError> {
        Ok(self.version.load(Ordering::Acquire))
    }
}

/// Runs `mem_allocs` and prints its line.
pub async fn run() {
    let system = ActorSystem::new();
    let tallies = Entities::<Tally>::builder(&system)
        .event_sourced(
            Arc::new(NullStore::new(ASKS + WARM_UP + 1)),
            EventCodec::new(Bincode),
        )
        .group_commit(1)
        .ask_timeout(Duration::from_secs(30))
        .build()
        .expect("the benchmark's options are valid");
    let tally = tallies.of("allocs");
    tally.ask(Total).await.expect("warm-up");
    for _ in 0..WARM_UP {
        tally.ask(Add(1)).await.expect("a warm-up ask succeeds");
    }
    let before = allocations();
    for _ in 0..ASKS {
        tally
            .ask(Add(1))
            .await
            .expect("an ask to the null store succeeds");
    }
    let counted = allocations().since(before);
    let total = tally.ask(Total).await.expect("an ask succeeds");
    assert_eq!(total, (ASKS + WARM_UP) as u64, "every ask was applied");
    system.shutdown(Duration::from_secs(10)).await;
    if counted.allocations == 0 {
        eprintln!(
            "mem_allocs: no allocation counted; build nexus-bench with --features count-allocs"
        );
        return;
    }
    #[allow(clippy::cast_precision_loss)]
    let per = |n: usize| n as f64 / ASKS as f64;
    emit(
        "mem_allocs",
        json!({
            "allocs_per_cmd": per(counted.allocations + counted.reallocations),
            "reallocs_per_cmd": per(counted.reallocations),
            "bytes_per_cmd": per(counted.bytes_allocated),
            "asks": ASKS,
        }),
    );
}

/// Allocations so far, as the counting allocator saw them.
#[derive(Clone, Copy, Default)]
struct Counted {
    allocations: usize,
    reallocations: usize,
    bytes_allocated: usize,
}

impl Counted {
    fn since(self, before: Self) -> Self {
        Self {
            allocations: self.allocations - before.allocations,
            reallocations: self.reallocations - before.reallocations,
            bytes_allocated: self.bytes_allocated - before.bytes_allocated,
        }
    }
}

#[cfg(feature = "count-allocs")]
fn allocations() -> Counted {
    let stats = stats_alloc::INSTRUMENTED_SYSTEM.stats();
    Counted {
        allocations: stats.allocations,
        reallocations: stats.reallocations,
        bytes_allocated: stats.bytes_allocated,
    }
}

/// Nothing is counted without the counting allocator.
#[cfg(not(feature = "count-allocs"))]
fn allocations() -> Counted {
    Counted::default()
}
