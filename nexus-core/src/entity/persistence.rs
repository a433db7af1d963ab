//! The two persistence shapes an entity type can have: an event stream
//! (state is a fold of it) or a durable-state row (state is stored whole).
//!
//! Both load into a fresh `A::default()` and write with the version they
//! loaded, so a second writer turns into a conflict, never a lost update.

use std::sync::Arc;

use crate::codec::{EventCodec, PayloadCodec};
use crate::lease::Fence;
use crate::store::{Snapshot, StateStore};
use crate::{
    Aggregate, CodecError, EventMetadata, EventStore, ExpectedVersion, NewEvent, RecoveryError,
    Snapshots, StoreError, StreamId, recover,
};

/// What an entity does when its stream (or row) does not exist yet.
///
/// ```
/// use nexus_core::ReplayPolicy;
/// assert_eq!(ReplayPolicy::default(), ReplayPolicy::CreateIfMissing);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReplayPolicy {
    /// Start from `A::default()`; the first write creates it.
    #[default]
    CreateIfMissing,
    /// Answer every command with
    /// [`EntityError::NotFound`](crate::EntityError::NotFound) until it
    /// exists (created by someone else).
    RequireExisting,
}

pub(crate) enum Persistence<A: Aggregate> {
    EventSourced {
        store: Arc<dyn EventStore>,
        codec: EventCodec<A::Event>,
        snapshots: Option<Snapshots<A>>,
    },
    DurableState {
        store: Arc<dyn StateStore>,
        codec: Arc<dyn PayloadCodec<A>>,
    },
}

/// An entity's state as loaded, with the version its next write expects.
pub(crate) struct Loaded<A> {
    pub(crate) state: A,
    pub(crate) version: u64,
}

/// A batch's write, encoded.
pub(crate) enum Encoded {
    Events(Vec<NewEvent>),
    State(Vec<u8>),
}

/// Why a write did not commit. Nothing was written in any case, except
/// when an ambiguous store error hides a commit.
pub(crate) enum WriteError {
    Conflict {
        expected: ExpectedVersion,
        actual: u64,
    },
    /// The store refused the write's fence: the lease is someone else's.
    Fenced {
        shard: u32,
        epoch: u64,
    },
    Store(StoreError),
    Encode(CodecError),
}

fn expecting(version: u64) -> ExpectedVersion {
    if version == 0 {
        ExpectedVersion::NoStream
    } else {
        ExpectedVersion::Exact(version)
    }
}

impl<A: Aggregate> Persistence<A> {
    /// Loads the state into a fresh `A::default()`; never onto an old state.
    pub(crate) async fn load(&self, stream: &StreamId) -> Result<Loaded<A>, RecoveryError> {
        match self {
            Self::EventSourced {
                store,
                codec,
                snapshots,
            } => {
                let recovered =
                    recover::<A>(stream, store.as_ref(), codec, snapshots.as_ref()).await?;
                Ok(Loaded {
                    state: recovered.state,
                    version: recovered.version,
                })
            }
            Self::DurableState { store, codec } => {
                let row = store
                    .load(stream)
                    .await
                    .map_err(|source| RecoveryError::Store {
                        stream: stream.clone(),
                        source,
                    })?;
                match row {
                    None => Ok(Loaded {
                        state: A::default(),
                        version: 0,
                    }),
                    Some(row) => Ok(Loaded {
                        state: codec
                            .decode_payload(&row.payload, "state")
                            .map_err(|source| RecoveryError::Codec {
                                stream: stream.clone(),
                                version: row.version,
                                source,
                            })?,
                        version: row.version,
                    }),
                }
            }
        }
    }

    /// Whether the snapshot strategy wants a snapshot after `event` brought
    /// `state` to `version`.
    pub(crate) fn snapshot_due(&self, state: &A, event: &A::Event, version: u64) -> bool {
        match self {
            Self::EventSourced {
                snapshots: Some(snapshots),
                ..
            } => snapshots.strategy().should_snapshot(state, event, version),
            _ => false,
        }
    }

    /// Encodes what a batch decided: its events, or the whole new state.
    /// Synchronous, so that the state is not held across the write.
    pub(crate) fn encode(&self, events: &[A::Event], state: &A) -> Result<Encoded, CodecError> {
        match self {
            Self::EventSourced { codec, .. } => events
                .iter()
                .map(|event| codec.encode(event, EventMetadata::new()))
                .collect::<Result<Vec<_>, _>>()
                .map(Encoded::Events),
            Self::DurableState { codec, .. } => {
                codec.encode_payload(state, "state").map(Encoded::State)
            }
        }
    }

    /// Writes an encoded batch if the stream (row) is still at
    /// `loaded_version`, and, with a fence, only while the fence is current.
    /// Returns the version after the write.
    pub(crate) async fn write(
        &self,
        stream: &StreamId,
        loaded_version: u64,
        encoded: Encoded,
        fence: Option<&Fence>,
    ) -> Result<u64, WriteError> {
        let expected = expecting(loaded_version);
        let written = match (self, encoded, fence) {
            (Self::EventSourced { store, .. }, Encoded::Events(events), None) => store
                .append(stream, expected, events)
                .await
                .map(|outcome| outcome.version),
            (Self::EventSourced { store, .. }, Encoded::Events(events), Some(fence)) => store
                .append_fenced(stream, expected, events, fence)
                .await
                .map(|outcome| outcome.version),
            (Self::DurableState { store, .. }, Encoded::State(payload), None) => {
                store.save(stream, expected, payload).await
            }
            (Self::DurableState { store, .. }, Encoded::State(payload), Some(fence)) => {
                store.save_fenced(stream, expected, payload, fence).await
            }
            (_, _, _) => unreachable!("`encode` of the same persistence made it"),
        };
        written.map_err(|error| match error {
            StoreError::Conflict {
                expected, actual, ..
            } => WriteError::Conflict { expected, actual },
            StoreError::Fenced { shard, epoch, .. } => WriteError::Fenced { shard, epoch },
            other => WriteError::Store(other),
        })
    }

    /// The version of the stream (row) in the store now, to confirm that a
    /// reply which did not write reflects every committed write.
    pub(crate) async fn head(&self, stream: &StreamId) -> Result<u64, StoreError> {
        match self {
            Self::EventSourced { store, .. } => store.stream_version(stream).await,
            Self::DurableState { store, .. } => store.version(stream).await,
        }
    }

    /// Encodes a snapshot of `state` if this entity type takes snapshots.
    pub(crate) fn snapshot_of(
        &self,
        stream: &StreamId,
        state: &A,
        version: u64,
    ) -> Option<Snapshot> {
        let Self::EventSourced {
            snapshots: Some(snapshots),
            ..
        } = self
        else {
            return None;
        };
        snapshots
            .encode(stream, state, version)
            .inspect_err(
                |error| tracing::warn!(%stream, version, %error, "encoding a snapshot failed"),
            )
            .ok()
    }

    /// Saves a snapshot after a commit, under `fence` when leased. A failed
    /// snapshot only makes the next recovery longer, so it is logged, not
    /// reported to the caller. Returns whether the store refused the fence.
    pub(crate) async fn save_snapshot(&self, snapshot: Snapshot, fence: Option<&Fence>) -> bool {
        let Self::EventSourced {
            snapshots: Some(snapshots),
            ..
        } = self
        else {
            return false;
        };
        let (stream, version) = (snapshot.stream_id.clone(), snapshot.version);
        let saved = match fence {
            None => snapshots.save_encoded(snapshot).await,
            Some(fence) => snapshots.save_encoded_fenced(snapshot, fence).await,
        };
        match saved {
            Ok(()) => false,
            Err(error) => {
                tracing::warn!(%stream, version, %error, "saving a snapshot failed");
                error.is_fenced()
            }
        }
    }
}
