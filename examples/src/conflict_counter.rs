//! An event store that counts the appends refused with a conflict: how often
//! writers lost a version race and the runtime decided again.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use nexus_core::{
    AppendOutcome, EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, ReplayEvent,
    StoreError, StreamId,
};

/// Wraps an event store and counts its conflicts; everything else passes
/// through unchanged.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::{EventStore, ExpectedVersion, NewEvent, StreamId};
/// use nexus_core::store::memory::InMemoryEventStore;
/// use nexus_examples::conflict_counter::ConflictCounter;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = ConflictCounter::new(Arc::new(InMemoryEventStore::new()));
/// let stream = StreamId::new("s");
/// store.append(&stream, ExpectedVersion::NoStream, vec![NewEvent::new("e", 1, vec![])]).await.unwrap();
/// assert!(store.append(&stream, ExpectedVersion::NoStream, vec![]).await.is_err());
/// assert_eq!(store.conflicts(), 1);
/// # });
/// ```
pub struct ConflictCounter {
    inner: Arc<dyn EventStore>,
    conflicts: AtomicU64,
}

impl ConflictCounter {
    /// Counts the conflicts of `inner`.
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self {
            inner,
            conflicts: AtomicU64::new(0),
        }
    }

    /// How many appends were refused with a conflict so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl EventStore for ConflictCounter {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOutcome, StoreError> {
        let result = self.inner.append(stream, expected, events).await;
        if result.as_ref().is_err_and(StoreError::is_conflict) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
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
