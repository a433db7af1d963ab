//! An event store that counts what passes through it: committed appends, the
//! time they took, and the appends refused with a conflict (how often a
//! writer lost a version race and the runtime decided again).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nexus_core::{
    AppendOutcome, EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, ReplayEvent,
    StoreError, StreamId,
};

/// Wraps an event store and counts its appends and conflicts; everything
/// else passes through unchanged.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use nexus_core::store::memory::InMemoryEventStore;
/// use nexus_examples::counting_store::CountingStore;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = CountingStore::new(Arc::new(InMemoryEventStore::new()));
/// let stream = StreamId::new("s");
/// store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("e", 1, vec![])]).await.unwrap();
/// assert!(store.append(&stream, ExpectedVersion::NoStream, vec![]).await.is_err());
/// assert_eq!((store.appends(), store.conflicts()), (1, 1));
/// # });
/// ```
pub struct CountingStore {
    inner: Arc<dyn EventStore>,
    appends: AtomicU64,
    append_micros: AtomicU64,
    conflicts: AtomicU64,
}

impl CountingStore {
    /// Counts what passes through `inner`.
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self {
            inner,
            appends: AtomicU64::new(0),
            append_micros: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
        }
    }

    /// How many appends committed so far.
    pub fn appends(&self) -> u64 {
        self.appends.load(Ordering::Relaxed)
    }

    /// The time spent in the appends that committed, in total.
    pub fn append_time(&self) -> Duration {
        Duration::from_micros(self.append_micros.load(Ordering::Relaxed))
    }

    /// How many appends were refused with a conflict so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventStore for CountingStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let started = Instant::now();
        let result = self.inner.append(stream, expected, events).await;
        match &result {
            Ok(_) => {
                let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.append_micros.fetch_add(micros, Ordering::Relaxed);
                self.appends.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) if error.is_conflict() => {
                self.conflicts.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {}
        }
        result
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from).await
    }

    async fn read_stream_for_replay(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<ReplayEvent>, StoreError> {
        self.inner.read_stream_for_replay(stream, from).await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_all(after, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }
}
