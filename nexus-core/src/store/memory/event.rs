//! The in-memory event store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use super::chunked::Chunked;
use super::event_ids::EventIds;
use super::{check_fence, lock};
use crate::lease::Fence;
use crate::store::{ReplayVisitor, StreamHead};
use crate::{
    AppendOutcome, EventMetadata, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, ReplayEventRef, StoreError, StreamId,
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
    // Invariant: `log` is in position order (an event's position is its
    // index + 1), each stream's `events` are the log indexes of its events
    // in version order 1..=n, and `ids` maps each stored event id to its
    // index in the log. One lock keeps them in step, which is what makes an
    // append atomic.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Every stream, in the order it was first appended to.
    streams: Vec<Stream>,
    /// Where each stream is in `streams`.
    by_id: HashMap<StreamId, usize>,
    log: Chunked<Stored>,
    ids: EventIds,
    /// Every event type name stored, once: events name theirs by index.
    types: Vec<Arc<str>>,
    /// Where each type name is in `types`.
    type_at: HashMap<Arc<str>, u32>,
}

#[derive(Debug)]
struct Stream {
    id: StreamId,
    archived: bool,
    /// Log indexes of the stream's events; version n is at n - 1.
    events: Chunked<usize>,
}

/// One stored event, kept compact: its stream and type name by index, its
/// payload shared (an append allocates one payload, a replay copies no
/// bytes), and the metadata most events leave unset out of line.
/// [`RecordedEvent`]s are made when read.
#[derive(Debug)]
struct Stored {
    stream: usize,
    version: u64,
    event_type: u32,
    schema_version: u32,
    payload: Arc<[u8]>,
    event_id: Uuid,
    timestamp: SystemTime,
    /// `None` when the event has no correlation, causation or header.
    extra: Option<Box<Extra>>,
}

/// The metadata of an event beyond its id and time.
#[derive(Debug)]
struct Extra {
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    headers: BTreeMap<String, String>,
}

impl Stored {
    /// The event's metadata, as it was appended.
    fn metadata(&self) -> EventMetadata {
        let (correlation_id, causation_id, headers) = match &self.extra {
            Some(extra) => (
                extra.correlation_id,
                extra.causation_id,
                extra.headers.clone(),
            ),
            None => (None, None, BTreeMap::new()),
        };
        EventMetadata {
            event_id: self.event_id,
            timestamp: self.timestamp,
            correlation_id,
            causation_id,
            headers,
        }
    }
}

/// What of `metadata` goes out of line, if any.
fn extra_of(metadata: &EventMetadata) -> Option<Box<Extra>> {
    let unset = metadata.correlation_id.is_none()
        && metadata.causation_id.is_none()
        && metadata.headers.is_empty();
    (!unset).then(|| {
        Box::new(Extra {
            correlation_id: metadata.correlation_id,
            causation_id: metadata.causation_id,
            headers: metadata.headers.clone(),
        })
    })
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

/// An event id that occurs twice in `events`, if any. Fresh ids are made
/// in increasing order, so a batch of them is checked by one pass, without
/// a set; one event cannot repeat an id, so it is not checked at all.
fn repeated_id(events: &[NewEvent]) -> Option<Uuid> {
    let ids = || events.iter().map(|e| e.metadata.event_id);
    if ids().zip(ids().skip(1)).all(|(id, next)| id < next) {
        return None;
    }
    let mut seen = std::collections::HashSet::new();
    ids().find(|id| !seen.insert(*id))
}

/// The position of the event at `index` of the log.
fn position_of(index: usize) -> LogPosition {
    let sequence = index as u64 + 1;
    LogPosition::new(sequence, sequence)
}

impl Inner {
    /// Appends atomically: the caller holds the store's lock.
    fn append(
        &mut self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        if let Some(event_id) = repeated_id(events) {
            return Err(StoreError::DuplicateEventId {
                stream: stream.clone(),
                event_id,
            });
        }
        let found = self.by_id.get(stream).copied();
        if let Some(original) = self.replayed(stream, found, expected, events)? {
            return Ok(original);
        }
        let existing = found.map(|index| &self.streams[index]);
        if existing.is_some_and(|s| s.archived) {
            return Err(StoreError::StreamArchived {
                stream: stream.clone(),
            });
        }
        let actual = existing.map_or(0, |s| s.events.len() as u64);
        if !expected.accepts(actual) {
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        if events.is_empty() {
            // Checked, and nothing to store: no stream is made for it.
            return Ok(AppendOutcome {
                version: actual,
                positions: Vec::new(),
            });
        }
        let at = found.unwrap_or_else(|| self.new_stream(stream));
        let mut positions = Vec::with_capacity(events.len());
        let mut version = actual;
        let mut last_type = None;
        for event in events {
            version += 1;
            let index = self.log.len();
            positions.push(position_of(index));
            self.ids.insert(event.metadata.event_id, index);
            // A batch's events mostly share one type: its name is looked up
            // once.
            let type_at = match last_type {
                Some(at) if *self.types[at as usize] == *event.event_type => at,
                _ => self.type_at(&event.event_type),
            };
            last_type = Some(type_at);
            self.log.push(Stored {
                stream: at,
                version,
                event_type: type_at,
                schema_version: event.schema_version,
                payload: Arc::from(event.payload.as_slice()),
                event_id: event.metadata.event_id,
                timestamp: event.metadata.timestamp,
                extra: extra_of(&event.metadata),
            });
            self.streams[at].events.push(index);
        }
        Ok(AppendOutcome { version, positions })
    }

    /// Registers `stream`, about to get its first events.
    fn new_stream(&mut self, stream: &StreamId) -> usize {
        let index = self.streams.len();
        self.streams.push(Stream {
            id: stream.clone(),
            archived: false,
            events: Chunked::default(),
        });
        self.by_id.insert(stream.clone(), index);
        index
    }

    /// Where the type name `name` is in `types`, added if it is new.
    fn type_at(&mut self, name: &str) -> u32 {
        if let Some(&at) = self.type_at.get(name) {
            return at;
        }
        let at = u32::try_from(self.types.len()).expect("fewer than 2^32 event types");
        let shared: Arc<str> = Arc::from(name);
        self.types.push(Arc::clone(&shared));
        self.type_at.insert(shared, at);
        at
    }

    /// The stored event at `index` of the log as a reader gets it.
    fn recorded(&self, index: usize) -> RecordedEvent {
        let stored = &self.log[index];
        RecordedEvent {
            stream_id: self.streams[stored.stream].id.clone(),
            version: stored.version,
            position: position_of(index),
            event_type: self.types[stored.event_type as usize].to_string(),
            schema_version: stored.schema_version,
            payload: stored.payload.to_vec(),
            metadata: stored.metadata(),
        }
    }

    /// `stream`'s place in `streams` if it is there and not archived.
    fn readable(&self, stream: &StreamId) -> Option<&Stream> {
        let found = &self.streams[*self.by_id.get(stream)?];
        (!found.archived).then_some(found)
    }

    /// Up to `limit` events after `after` of streams that `keep` accepts,
    /// skipping archived streams.
    fn log_after(
        &self,
        after: LogPosition,
        limit: usize,
        keep: impl Fn(&StreamId) -> bool,
    ) -> Vec<RecordedEvent> {
        (self.count_through(after)..self.log.len())
            .filter(|&index| {
                let stream = &self.streams[self.log[index].stream];
                !stream.archived && keep(&stream.id)
            })
            .take(limit)
            .map(|index| self.recorded(index))
            .collect()
    }

    /// How many events of the log are positioned at or before `after`: a
    /// binary search, positions rising with the index.
    fn count_through(&self, after: LogPosition) -> usize {
        let (mut low, mut high) = (0, self.log.len());
        while low < high {
            let middle = low + (high - low) / 2;
            if position_of(middle) <= after {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }

    fn version(&self, stream: &StreamId) -> u64 {
        self.by_id
            .get(stream)
            .map_or(0, |&index| self.streams[index].events.len() as u64)
    }

    /// The original outcome if `events` were already appended to `stream`
    /// (at `found` in `streams`) at consecutive versions (a retry after a
    /// lost reply), `None` if none of their ids is stored, and an error if
    /// some are stored elsewhere.
    fn replayed(
        &self,
        stream: &StreamId,
        found: Option<usize>,
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
                .map_or(stream, |index| &self.streams[self.log[index].stream].id);
            StoreError::DuplicateEventId {
                stream: holder.clone(),
                event_id,
            }
        };
        let first_stored = || {
            events
                .iter()
                .map(|e| e.metadata.event_id)
                .find(|id| self.ids.contains(id))
        };
        let Some(first_index) = self.ids.get(&first.metadata.event_id) else {
            return match first_stored() {
                Some(id) => Err(duplicate(id)),
                None => Ok(None),
            };
        };
        let stored_first = &self.log[first_index];
        let base = stored_first.version - 1;
        let Some(at) = found.filter(|&at| at == stored_first.stream) else {
            return Err(duplicate(first.metadata.event_id));
        };
        if expected.pinned().is_some_and(|v| v != base) {
            return Err(duplicate(first.metadata.event_id));
        }
        let indexes = &self.streams[at].events;
        let mut positions = Vec::with_capacity(events.len());
        for (offset, event) in events.iter().enumerate() {
            let index = indexes
                .get(
                    usize::try_from(base)
                        .unwrap_or(usize::MAX)
                        .saturating_add(offset),
                )
                .copied()
                .filter(|&i| self.log[i].event_id == event.metadata.event_id)
                .ok_or_else(|| {
                    // This event is not where a retry would have put it:
                    // name one of the batch's ids that is stored.
                    let stored = if self.ids.contains(&event.metadata.event_id) {
                        event.metadata.event_id
                    } else {
                        first.metadata.event_id
                    };
                    duplicate(stored)
                })?;
            positions.push(position_of(index));
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
        let Some(found) = inner.readable(stream) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        let mut read = Vec::with_capacity(found.events.len().saturating_sub(skip));
        read.extend(
            found
                .events
                .iter_from(skip)
                .map(|&index| inner.recorded(index)),
        );
        Ok(read)
    }

    /// Takes the stream's events out in batches of 256 (`REPLAY_BATCH`),
    /// their type names and payloads shared rather than copied, and visits
    /// each batch outside the lock, up to the head the replay started at:
    /// what one read of the whole stream at that moment would have returned.
    async fn replay(
        &self,
        stream: &StreamId,
        from_version: u64,
        visit: &mut ReplayVisitor<'_>,
    ) -> Result<(), StoreError> {
        let (at, head) = {
            let inner = lock(&self.inner);
            let Some(&at) = inner.by_id.get(stream) else {
                return Ok(());
            };
            let found = &inner.streams[at];
            if found.archived {
                return Ok(());
            }
            (at, found.events.len())
        };
        let mut next = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        let mut batch = Vec::with_capacity(REPLAY_BATCH.min(head.saturating_sub(next)));
        while next < head {
            let end = head.min(next + REPLAY_BATCH);
            {
                let inner = lock(&self.inner);
                let events = inner.streams[at].events.iter_from(next).take(end - next);
                batch.extend(events.map(|&index| {
                    let stored = &inner.log[index];
                    (
                        stored.version,
                        Arc::clone(&inner.types[stored.event_type as usize]),
                        stored.schema_version,
                        Arc::clone(&stored.payload),
                    )
                }));
            }
            for (version, event_type, schema_version, payload) in batch.drain(..) {
                let event = ReplayEventRef {
                    version,
                    event_type: &event_type,
                    schema_version,
                    payload: &payload,
                };
                if visit(event).is_break() {
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
        Ok(inner.by_id.get(stream).map(|&at| {
            let found = &inner.streams[at];
            StreamHead {
                version: found.events.len() as u64,
                archived: found.archived,
            }
        }))
    }

    async fn archive_stream(&self, stream: &StreamId) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let Some(&at) = inner.by_id.get(stream) else {
            return Err(StoreError::InvalidRequest(format!(
                "stream {stream} has no events to archive"
            )));
        };
        inner.streams[at].archived = true;
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
        Ok(inner.log_after(after, limit, |stream| stream.category() == category))
    }
}

#[cfg(test)]
mod tests {
    use std::ops::ControlFlow;

    use super::{InMemoryEventStore, repeated_id};
    use crate::{EventStore, ExpectedVersion, NewEvent, StoreError, StreamId};

    /// `count` events of `stream`'s versions `first..`, each payload naming
    /// its stream and version.
    fn batch(stream: &str, first: u64, count: u64) -> Vec<NewEvent> {
        (first..first + count)
            .map(|v| NewEvent::new("Added", 1, format!("{stream}-{v}").into_bytes()))
            .collect()
    }

    #[tokio::test]
    async fn a_log_of_several_chunks_reads_replays_retries_and_finds_its_ids() {
        // Two streams interleaved, 5,000 events each: a log of 10,000
        // events (three chunks), each stream's index two chunks.
        let store = InMemoryEventStore::new();
        let (a, b) = (StreamId::new("t-a"), StreamId::new("t-b"));
        let mut a_batches = Vec::new();
        let mut a_outcomes = Vec::new();
        let mut b_batches = Vec::new();
        for round in 0..50 {
            let first = round * 100 + 1;
            let events = batch("a", first, 100);
            let expected = ExpectedVersion::Exact(first - 1);
            a_outcomes.push(store.append(&a, expected, &events).await.unwrap());
            a_batches.push(events);
            let events = batch("b", first, 100);
            store.append(&b, expected, &events).await.unwrap();
            b_batches.push(events);
        }
        assert_eq!(store.len(), 10_000);
        let read = store.read_stream(&a, 4_090).await.unwrap();
        assert_eq!(read.len(), 911);
        for (event, version) in read.iter().zip(4_090..) {
            assert_eq!(event.version, version);
            assert_eq!(event.payload, format!("a-{version}").into_bytes());
        }
        let mut replayed = Vec::new();
        store
            .replay(&b, 4_000, &mut |event| {
                replayed.push((event.version, event.payload.to_vec()));
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(replayed.len(), 1_001);
        for ((version, payload), expected) in replayed.iter().zip(4_000..) {
            assert_eq!(*version, expected);
            assert_eq!(*payload, format!("b-{expected}").into_bytes());
        }
        // A retry of a batch of the second chunk answers its first outcome.
        let again = store
            .append(&a, ExpectedVersion::Exact(4_000), &a_batches[40])
            .await
            .unwrap();
        assert_eq!(again.version, a_outcomes[40].version);
        assert_eq!(again.positions, a_outcomes[40].positions);
        // An id of the other stream, stored in a later chunk, is found there.
        let mut reused = batch("a", 5_001, 1);
        reused[0].metadata.event_id = b_batches[45][7].metadata.event_id;
        let error = store
            .append(&a, ExpectedVersion::Exact(5_000), &reused)
            .await
            .unwrap_err();
        assert!(
            matches!(&error, StoreError::DuplicateEventId { stream, .. } if *stream == b),
            "{error:?}"
        );
        assert_eq!(store.len(), 10_000, "the refused batch stored nothing");
    }

    #[tokio::test]
    async fn metadata_comes_back_as_appended_whichever_parts_are_set() {
        let store = InMemoryEventStore::new();
        let stream = StreamId::new("t-meta");
        let id = uuid::Uuid::now_v7();
        let mut events = batch("meta", 1, 4);
        events[1].metadata.correlation_id = Some(id);
        events[2].metadata.causation_id = Some(id);
        events[3]
            .metadata
            .headers
            .insert("tenant".to_owned(), "acme".to_owned());
        store
            .append(&stream, ExpectedVersion::NoStream, &events)
            .await
            .unwrap();
        let read = store.read_stream(&stream, 1).await.unwrap();
        let metadata: Vec<_> = read.into_iter().map(|e| e.metadata).collect();
        let appended: Vec<_> = events.into_iter().map(|e| e.metadata).collect();
        assert_eq!(metadata, appended);
    }

    #[test]
    fn a_repeated_id_is_found_wherever_it_is_and_ascending_ids_pass() {
        let event = |id: uuid::Uuid| {
            let mut event = NewEvent::new("Added", 1, Vec::new());
            event.metadata.event_id = id;
            event
        };
        let fresh: Vec<NewEvent> = (0..5)
            .map(|_| NewEvent::new("Added", 1, Vec::new()))
            .collect();
        assert_eq!(repeated_id(&fresh), None, "fresh ids ascend");
        assert_eq!(repeated_id(&fresh[..1]), None);
        assert_eq!(repeated_id(&[]), None);
        let (a, b, c) = (
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
        );
        assert_eq!(repeated_id(&[event(a), event(b), event(c)]), None);
        assert_eq!(repeated_id(&[event(a), event(b), event(a)]), Some(a));
        assert_eq!(repeated_id(&[event(c), event(c)]), Some(c));
    }
}
