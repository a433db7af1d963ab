//! The in-memory event store.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use uuid::Uuid;

use super::{check_fence, lock};
use crate::lease::Fence;
use crate::store::{ReplayVisitor, StreamHead};
use crate::{
    AppendOutcome, EventStore, ExpectedVersion, LogPosition, NewEvent, RecordedEvent, ReplayEvent,
    StoreError, StreamId,
};

/// Events a replay copies out per turn of the lock: the lock is never held
/// while the visitor runs (user code, an `apply`), and a replay holds at
/// most this many copies at once.
const REPLAY_BATCH: usize = 256;

/// An [`EventStore`] in memory. Cloning is not supported; share it in an
/// `Arc`.
///
/// ```
/// use nexus_core::store::memory::InMemoryEventStore;
/// let store = std::sync::Arc::new(InMemoryEventStore::new());
/// # let _ = store;
/// ```
#[derive(Debug, Default)]
pub struct InMemoryEventStore {
    // Invariant: `log` is in position order, every stream's events are the
    // log's events of that stream in version order 1..=n, and `ids` maps each
    // stored event id to its index in the log (where its stream and version
    // are). One lock keeps all three in step, which is what makes an append
    // atomic.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    streams: HashMap<StreamId, Vec<usize>>,
    log: Vec<RecordedEvent>,
    ids: HashMap<Uuid, usize>,
    archived: HashSet<StreamId>,
}

impl InMemoryEventStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many events the store holds, over all streams.
    pub fn len(&self) -> usize {
        lock(&self.inner).log.len()
    }

    /// Whether the store holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    /// Appends atomically: the caller holds the store's lock.
    fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        // One event cannot repeat an id within its batch: no set to build.
        let mut seen = std::collections::HashSet::new();
        if events.len() > 1
            && let Some(e) = events.iter().find(|e| !seen.insert(e.metadata.event_id))
        {
            return Err(StoreError::DuplicateEventId {
                stream: stream.clone(),
                event_id: e.metadata.event_id,
            });
        }
        if let Some(original) = self.replayed(stream, expected, events)? {
            return Ok(original);
        }
        if self.archived.contains(stream) {
            return Err(StoreError::StreamArchived {
                stream: stream.clone(),
            });
        }
        let actual = self.version(stream);
        if !expected.accepts(actual) {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        let mut positions = Vec::with_capacity(events.len());
        let mut version = actual;
        for event in events {
            version += 1;
            let sequence = self.log.len() as u64 + 1;
            let position = LogPosition::new(sequence, sequence);
            positions.push(position);
            let index = self.log.len();
            self.ids.insert(event.metadata.event_id, index);
            self.log.push(RecordedEvent {
                stream_id: stream.clone(),
                version,
                position,
                event_type: event.event_type.clone(),
                schema_version: event.schema_version,
                payload: event.payload.clone(),
                metadata: event.metadata.clone(),
            });
            // Looked up before `entry`, which would copy the id each time.
            match self.streams.get_mut(stream) {
                Some(indexes) => indexes.push(index),
                None => {
                    self.streams.insert(stream.clone(), vec![index]);
                }
            }
        }
        Ok(AppendOutcome { version, positions })
    }

    /// Up to `limit` events after `after` that `keep` accepts, skipping
    /// archived streams.
    fn log_after(
        &self,
        after: LogPosition,
        limit: usize,
        keep: impl Fn(&RecordedEvent) -> bool,
    ) -> Vec<RecordedEvent> {
        let start = self.log.partition_point(|e| e.position <= after);
        self.log[start..]
            .iter()
            .filter(|e| keep(e) && !self.archived.contains(&e.stream_id))
            .take(limit)
            .cloned()
            .collect()
    }

    fn version(&self, stream: &StreamId) -> u64 {
        self.streams.get(stream).map_or(0, |s| s.len() as u64)
    }

    /// The original outcome if `events` were already appended to `stream` at
    /// consecutive versions (a retry after a lost reply), `None` if none of
    /// their ids is stored, and an error if some are stored elsewhere.
    fn replayed(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<Option<AppendOutcome>, StoreError> {
        let Some(first) = events.first() else {
            return Ok(None);
        };
        // Names a stored id and the stream that holds it.
        let duplicate = |event_id: Uuid| {
            let holder = self
                .ids
                .get(&event_id)
                .map_or(stream, |&index| &self.log[index].stream_id);
            StoreError::DuplicateEventId {
                stream: holder.clone(),
                event_id,
            }
        };
        let first_stored = || {
            events
                .iter()
                .map(|e| e.metadata.event_id)
                .find(|id| self.ids.contains_key(id))
        };
        let Some(&first_index) = self.ids.get(&first.metadata.event_id) else {
            return match first_stored() {
                Some(id) => Err(duplicate(id)),
                None => Ok(None),
            };
        };
        let stored_first = &self.log[first_index];
        let base = stored_first.version - 1;
        if &stored_first.stream_id != stream || expected.pinned().is_some_and(|v| v != base) {
            return Err(duplicate(first.metadata.event_id));
        }
        let indexes = &self.streams[stream];
        let mut positions = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            let stored = indexes
                .get(
                    usize::try_from(base)
                        .unwrap_or(usize::MAX)
                        .saturating_add(offset),
                )
                .map(|&i| &self.log[i])
                .filter(|stored| stored.metadata.event_id == event.metadata.event_id)
                .ok_or_else(|| {
                    // This event is not where a retry would have put it:
                    // name one of the batch's ids that is stored.
                    let stored = if self.ids.contains_key(&event.metadata.event_id) {
                        event.metadata.event_id
                    } else {
                        first.metadata.event_id
                    };
                    duplicate(stored)
                })?;
            positions.push(stored.position);
        }
        Ok(Some(AppendOutcome {
            version: base + events.len() as u64,
            positions,
        }))
    }
}

#[async_trait]
impl EventStore for InMemoryEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        lock(&self.inner).append(stream, expected, events)
    }

    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: &Fence,
    ) -> Result<AppendOutcome, StoreError> {
        let mut inner = lock(&self.inner);
        check_fence(stream, fence)?;
        inner.append(stream, expected, events)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let inner = lock(&self.inner);
        let Some(indexes) = inner.streams.get(stream) else {
            return Ok(Vec::new());
        };
        if inner.archived.contains(stream) {
            return Ok(Vec::new());
        }
        let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(indexes
            .iter()
            .skip(skip)
            .map(|&i| inner.log[i].clone())
            .collect())
    }

    /// Copies the stream out in batches of 256 events (`REPLAY_BATCH`) and visits each
    /// batch outside the lock, up to the head the replay started at: what
    /// one read of the whole stream at that moment would have returned.
    async fn replay(
        &self,
        stream: &StreamId,
        from_version: u64,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), StoreError> {
        let head = {
            let inner = lock(&self.inner);
            if inner.archived.contains(stream) {
                return Ok(());
            }
            inner.streams.get(stream).map_or(0, Vec::len)
        };
        let mut next = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        let mut batch = Vec::with_capacity(REPLAY_BATCH.min(head.saturating_sub(next)));
        while next < head {
            let end = head.min(next + REPLAY_BATCH);
            {
                let inner = lock(&self.inner);
                let indexes = &inner.streams[stream][next..end];
                batch.extend(indexes.iter().map(|&i| {
                    let event = &inner.log[i];
                    ReplayEvent {
                        version: event.version,
                        event_type: event.event_type.clone(),
                        schema_version: event.schema_version,
                        payload: event.payload.clone(),
                    }
                }));
            }
            for event in batch.drain(..) {
                if visit(event.borrowed()).is_break() {
                    return Ok(());
                }
            }
            next = end;
        }
        Ok(())
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Err(StoreError::InvalidRequest(
                "read_all: limit must be at least 1".to_owned(),
            ));
        }
        let inner = lock(&self.inner);
        Ok(inner.log_after(after, limit, |_| true))
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        Ok(lock(&self.inner).version(stream))
    }

    async fn stream_head(&self, stream: &StreamId) -> Result<Option<StreamHead>, StoreError> {
        let inner = lock(&self.inner);
        let version = inner.version(stream);
        Ok((version > 0).then(|| StreamHead {
            version,
            archived: inner.archived.contains(stream),
        }))
    }

    async fn archive_stream(&self, stream: &StreamId) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        if inner.version(stream) == 0 {
            return Err(StoreError::InvalidRequest(format!(
                "stream {stream} has no events to archive"
            )));
        }
        inner.archived.insert(stream.clone());
        Ok(())
    }

    async fn read_category(
        &self,
        category: &str,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Err(StoreError::InvalidRequest(
                "read_category: limit must be at least 1".to_owned(),
            ));
        }
        let inner = lock(&self.inner);
        Ok(inner.log_after(after, limit, |e| e.stream_id.category() == category))
    }
}
