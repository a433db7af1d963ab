//! An event store that fails, conflicts or stalls on chosen appends.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::lease::Fence;
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{
    AppendOutcome, EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, StoreError,
    StreamId,
};

/// What happens to one append.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Fails as unavailable; nothing is written.
    Unavailable,
    /// Another writer appends one event to the stream first, so the append
    /// genuinely conflicts.
    ForeignWrite,
    /// Waits this long, then appends.
    Delay(Duration),
    /// Appends, then loses the answer: the caller sees an ambiguous error
    /// although the batch committed (a connection cut after the commit).
    CommitThenLost,
    /// The store's code panics before appending.
    Panic,
}

#[derive(Default)]
pub struct FaultyStore {
    pub inner: InMemoryEventStore,
    appends: AtomicUsize,
    // By 1-based append number.
    faults: Mutex<HashMap<usize, Fault>>,
    // Applied to every append (after the numbered faults).
    always: Mutex<Option<Fault>>,
    // Probability in percent that an append fails as unavailable.
    fail_percent: AtomicUsize,
    // Sizes of the committed appends, in order.
    committed: Mutex<Vec<usize>>,
    // The event ids of every append that reached the inner store, in order.
    sent_ids: Mutex<Vec<Vec<uuid::Uuid>>>,
}

impl FaultyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The `nth` append (1-based, counting every call) suffers `fault`.
    pub fn on_append(&self, nth: usize, fault: Fault) {
        self.faults.lock().unwrap().insert(nth, fault);
    }

    /// Every append suffers `fault` (or none).
    pub fn always(&self, fault: Option<Fault>) {
        *self.always.lock().unwrap() = fault;
    }

    /// Each append fails as unavailable with this probability.
    pub fn fail_randomly(&self, percent: usize) {
        self.fail_percent.store(percent, Ordering::SeqCst);
    }

    /// How many appends were attempted.
    pub fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }

    /// The event counts of the appends that committed, in order.
    pub fn committed(&self) -> Vec<usize> {
        self.committed.lock().unwrap().clone()
    }

    /// The event ids of every append that reached the store, in order.
    pub fn sent_ids(&self) -> Vec<Vec<uuid::Uuid>> {
        self.sent_ids.lock().unwrap().clone()
    }

    /// Appends as another process would.
    pub async fn foreign_write(&self, stream: &StreamId, amount: u64) {
        let payload = serde_json::to_vec(&super::AccountEvent::Deposited(amount)).unwrap();
        let event = NewEvent::new("account.deposited", 1, payload);
        self.inner
            .append(stream, ExpectedVersion::Any, &[event])
            .await
            .unwrap();
    }
}

impl FaultyStore {
    /// An append with the injected faults, fenced or not.
    async fn faulty_append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: Option<&Fence>,
    ) -> Result<AppendOutcome, StoreError> {
        let nth = self.appends.fetch_add(1, Ordering::SeqCst) + 1;
        let numbered = self.faults.lock().unwrap().remove(&nth);
        let always = *self.always.lock().unwrap();
        let mut lose_answer = false;
        for fault in numbered.into_iter().chain(always) {
            match fault {
                Fault::CommitThenLost => lose_answer = true,
                Fault::Panic => panic!("injected panic in append {nth}"),
                Fault::Unavailable => {
                    return Err(StoreError::Unavailable {
                        source: format!("injected fault on append {nth}").into(),
                    });
                }
                Fault::ForeignWrite => self.foreign_write(stream, 1_000).await,
                Fault::Delay(delay) => tokio::time::sleep(delay).await,
            }
        }
        let percent = self.fail_percent.load(Ordering::SeqCst);
        if percent > 0 && fastrand::usize(0..100) < percent {
            return Err(StoreError::Unavailable {
                source: format!("random fault on append {nth}").into(),
            });
        }
        let size = events.len();
        let ids: Vec<_> = events.iter().map(|e| e.metadata.event_id).collect();
        self.sent_ids.lock().unwrap().push(ids);
        let outcome = match fence {
            None => self.inner.append(stream, expected, events).await?,
            Some(fence) => {
                self.inner
                    .append_fenced(stream, expected, events, fence)
                    .await?
            }
        };
        self.committed.lock().unwrap().push(size);
        if lose_answer {
            return Err(StoreError::Ambiguous {
                source: format!("injected: append {nth} committed, its answer was lost").into(),
            });
        }
        Ok(outcome)
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        self.faulty_append(stream, expected, events, None).await
    }

    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: &Fence,
    ) -> Result<AppendOutcome, StoreError> {
        self.faulty_append(stream, expected, events, Some(fence))
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version).await
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
