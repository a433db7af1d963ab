//! Recovery: the newest usable snapshot, then the tail of the stream.

use crate::codec::EventCodec;
use crate::{Aggregate, CodecError, EventStore, Snapshots, StoreError, StreamId};

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
/// let events = [CounterEvent::Added(2), CounterEvent::Added(3)]
///     .iter()
///     .map(|e| codec.encode(e, EventMetadata::new()).unwrap())
///     .collect();
/// store.append(&stream, ExpectedVersion::NoStream, events).await.unwrap();
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
    let tail = events
        .read_stream_for_replay(stream, version + 1)
        .await
        .map_err(store_error)?;
    let mut replayed = 0;
    for recorded in &tail {
        if recorded.version != version + 1 {
            return Err(RecoveryError::Gap {
                stream: stream.clone(),
                expected: version + 1,
                found: recorded.version,
            });
        }
        let event = codec
            .decode_parts(
                &recorded.event_type,
                recorded.schema_version,
                &recorded.payload,
            )
            .map_err(|source| RecoveryError::Codec {
                stream: stream.clone(),
                version: recorded.version,
                source,
            })?;
        state.apply(&event);
        version = recorded.version;
        replayed += 1;
    }
    Ok(Recovered {
        state,
        version,
        snapshot_version,
        replayed,
    })
}
