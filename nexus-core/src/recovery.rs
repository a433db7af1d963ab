//! Recovery: the newest usable snapshot, then the tail of the stream.

use std::ops::ControlFlow;

use crate::codec::EventCodec;
use crate::{Aggregate, CodecError, EventStore, ReplayEventRef, Snapshots, StoreError, StreamId};

/// An aggregate's state as recovered from the stores.
#[derive(Debug)]
pub struct Recovered<A> {
    /// The state after every stored event.
    pub state: A,
    /// The stream version the state includes (0 for an empty stream).
    pub version: u64,
    /// The snapshot version recovery started from, if one was used.
    pub snapshot_version: Option<u64>,
    /// How many events were replayed on top.
    pub replayed: u64,
}

/// Why an aggregate could not be recovered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// Reading the stream or the snapshot failed.
    #[error("recovering {stream}: {source}")]
    Store {
        /// The stream being recovered.
        stream: StreamId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// A stored event did not decode.
    #[error("recovering {stream}: event at version {version}: {source}")]
    Codec {
        /// The stream being recovered.
        stream: StreamId,
        /// The event's version.
        version: u64,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
    /// The stream read back with a gap in its versions.
    #[error("recovering {stream}: expected version {expected}, read {found}")]
    Gap {
        /// The stream being recovered.
        stream: StreamId,
        /// The version that should have come next.
        expected: u64,
        /// The version that did.
        found: u64,
    },
}

/// Recovers `stream` into a fresh `A::default()`: from the newest snapshot
/// when `snapshots` is given and its snapshot decodes, then by replaying the
/// events after it.
///
/// A snapshot that no longer decodes is skipped with a warning and the
/// stream is replayed from the start: its version is never kept with a
/// default state.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::{EventStore, ExpectedVersion, EventMetadata, StreamId, recover};
/// use nexus_core::codec::{EventCodec, Json};
/// use nexus_core::store::memory::InMemoryEventStore;
/// # use nexus_core::testkit::doc::{Counter, CounterEvent};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = InMemoryEventStore::new();
/// let codec = EventCodec::<CounterEvent>::new(Json);
/// let stream = StreamId::for_entity("counter", "c1");
/// let events: Vec<_> = [CounterEvent::Added(2), CounterEvent::Added(3)]
///     .iter()
///     .map(|e| codec.encode(e, EventMetadata::new()).unwrap())
///     .collect();
/// store.append(&stream, ExpectedVersion::NoStream, &events).await.unwrap();
///
/// let recovered = recover::<Counter>(&stream, &store, &codec, None).await.unwrap();
/// assert_eq!((recovered.state.value, recovered.version), (5, 2));
/// # });
/// ```
pub async fn recover<A: Aggregate>(
    stream: &StreamId,
    events: &dyn EventStore,
    codec: &EventCodec<A::Event>,
    snapshots: Option<&Snapshots<A>>,
) -> Result<Recovered<A>, RecoveryError> {
    let store_error = |source| RecoveryError::Store {
        stream: stream.clone(),
        source,
    };
    let mut start = None;
    if let Some(snapshots) = snapshots
        && let Some(snapshot) = snapshots
            .store()
            .load_latest(stream)
            .await
            .map_err(store_error)?
    {
        match snapshots.decode(&snapshot) {
            Ok(state) => start = Some((state, snapshot.version)),
            Err(error) => tracing::warn!(
                %stream,
                snapshot_version = snapshot.version,
                %error,
                "snapshot does not decode; replaying the whole stream"
            ),
        }
    }
    let snapshot_version = start.as_ref().map(|(_, v)| *v);
    let (mut state, mut version) = start.unwrap_or_else(|| (A::default(), 0));
    // Each event is decoded and applied as the store reads it, so no
    // whole-tail buffer exists: memory stays bounded by the store's batch.
    // The visitor cannot return an error through the store, so it keeps the
    // first one here and breaks the read.
    let mut failure = None;
    let mut replayed = 0;
    events
        .replay(stream, version + 1, &mut |recorded| match replay_one(
            stream, codec, &mut state, version, recorded,
        ) {
            Ok(()) => {
                version = recorded.version;
                replayed += 1;
                ControlFlow::Continue(())
            }
            Err(error) => {
                failure = Some(error);
                ControlFlow::Break(())
            }
        })
        .await
        .map_err(store_error)?;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(Recovered {
        state,
        version,
        snapshot_version,
        replayed,
    })
}

/// Applies one replayed event to `state`, which includes every event up to
/// `version`: the event must be the next one and must decode.
fn replay_one<A: Aggregate>(
    stream: &StreamId,
    codec: &EventCodec<A::Event>,
    state: &mut A,
    version: u64,
    recorded: ReplayEventRef<'_>,
) -> Result<(), RecoveryError> {
    if recorded.version != version + 1 {
        return Err(RecoveryError::Gap {
            stream: stream.clone(),
            expected: version + 1,
            found: recorded.version,
        });
    }
    let event = codec
        .decode_parts(
            recorded.event_type,
            recorded.schema_version,
            recorded.payload,
        )
        .map_err(|source| RecoveryError::Codec {
            stream: stream.clone(),
            version: recorded.version,
            source,
        })?;
    state.apply(&event);
    Ok(())
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::codec::Json;
    use crate::store::memory::InMemoryEventStore;
    use crate::testkit::doc::{Counter, CounterEvent};
    use crate::{
        AppendOutcome, EventMetadata, ExpectedVersion, LogPosition, NewEvent, RecordedEvent,
        ReplayEvent,
    };

    /// A store whose replay read loses version 3: what recovery must
    /// refuse rather than fold into a state that skipped an event. It does
    /// not override [`EventStore::replay`], so the default one is used.
    struct LosesVersionThree(InMemoryEventStore);

    #[async_trait]
    impl EventStore for LosesVersionThree {
        async fn append(
            &self,
            stream: &StreamId,
            expected: ExpectedVersion,
            events: &[NewEvent],
        ) -> Result<AppendOutcome, StoreError> {
            self.0.append(stream, expected, events).await
        }
        async fn read_stream(
            &self,
            stream: &StreamId,
            from_version: u64,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            let mut events = self.0.read_stream(stream, from_version).await?;
            events.retain(|e| e.version != 3);
            Ok(events)
        }
        async fn read_all(
            &self,
            after: LogPosition,
            limit: usize,
        ) -> Result<Vec<RecordedEvent>, StoreError> {
            self.0.read_all(after, limit).await
        }
        async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
            self.0.stream_version(stream).await
        }
    }

    fn added(codec: &EventCodec<CounterEvent>, n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|_| {
                codec
                    .encode(&CounterEvent::Added(1), EventMetadata::new())
                    .unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_gap_in_the_replay_is_refused() {
        let codec = EventCodec::<CounterEvent>::new(Json);
        let store = LosesVersionThree(InMemoryEventStore::new());
        let stream = StreamId::for_entity("counter", "gappy");
        store
            .append(&stream, ExpectedVersion::NoStream, &added(&codec, 5))
            .await
            .unwrap();
        let error = recover::<Counter>(&stream, &store, &codec, None)
            .await
            .expect_err("a gap is refused");
        assert!(
            matches!(
                error,
                RecoveryError::Gap {
                    expected: 3,
                    found: 4,
                    ..
                }
            ),
            "got {error:?}"
        );
    }

    #[tokio::test]
    async fn an_event_that_does_not_decode_stops_the_replay_at_its_version() {
        let codec = EventCodec::<CounterEvent>::new(Json);
        let store = InMemoryEventStore::new();
        let stream = StreamId::for_entity("counter", "undecodable");
        let mut events = added(&codec, 600);
        events[299].payload = b"not json".to_vec();
        store
            .append(&stream, ExpectedVersion::NoStream, &events)
            .await
            .unwrap();
        let error = recover::<Counter>(&stream, &store, &codec, None)
            .await
            .expect_err("an undecodable event is refused");
        assert!(
            matches!(error, RecoveryError::Codec { version: 300, .. }),
            "got {error:?}"
        );
        // The replay read handed over the same events as the streaming one.
        let mut streamed = Vec::new();
        store
            .replay(&stream, 1, &mut |e| {
                streamed.push(ReplayEvent::from(e));
                ControlFlow::Continue(())
            })
            .await
            .unwrap();
        assert_eq!(
            streamed,
            store.read_stream_for_replay(&stream, 1).await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_long_stream_recovers_across_replay_batches() {
        let codec = EventCodec::<CounterEvent>::new(Json);
        let store = InMemoryEventStore::new();
        let stream = StreamId::for_entity("counter", "long");
        store
            .append(&stream, ExpectedVersion::NoStream, &added(&codec, 1_000))
            .await
            .unwrap();
        let recovered = recover::<Counter>(&stream, &store, &codec, None)
            .await
            .unwrap();
        assert_eq!(
            (recovered.state.value, recovered.version, recovered.replayed),
            (1_000, 1_000, 1_000)
        );
    }
}
