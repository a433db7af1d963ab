//! The two persistence shapes an entity type can have: an event stream
//! (state is a fold of it) or a durable-state row (state is stored whole).
//!
//! Both load into a fresh `A::default()` and write with the version they
//! loaded, so a second writer turns into a conflict, never a lost update.

use std::sync::Arc;

use super::command_options::{CommandOptions, derived_event_id};
use crate::codec::{EventCodec, PayloadCodec};
use crate::lease::Fence;
use crate::stamp::Stamp;
use crate::store::{Snapshot, StateStore};
use crate::{
    Aggregate, CodecError, EventStore, ExpectedVersion, LogPosition, NewEvent, RecoveryError,
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
    /// Whether the stream has events, or the row is live (not deleted).
    pub(crate) exists: bool,
    /// How many events recovery replayed, and whether it started from a
    /// snapshot (for the `nexus.recovery` span and metrics).
    pub(crate) replayed: u64,
    pub(crate) from_snapshot: bool,
}

/// A committed command found in the stream: the state before it and its
/// events with their versions and positions.
pub(crate) struct RecordedCommand<A: Aggregate> {
    pub(crate) before: A,
    pub(crate) version_before: u64,
    pub(crate) events: Vec<(A::Event, u64, LogPosition)>,
}

/// A batch's write, encoded.
pub(crate) enum Encoded<'a> {
    Events(&'a [NewEvent]),
    State(Vec<u8>),
}

/// What a committed write reports: the version after it and, for events,
/// each event's position in the global log.
pub(crate) struct Committed {
    pub(crate) version: u64,
    pub(crate) positions: Vec<LogPosition>,
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
    /// Every send of the batch lost its answer until the deadline: it may
    /// have committed.
    Unknown {
        sends: u32,
        waited: std::time::Duration,
        source: StoreError,
    },
    /// The store panicked while writing: the outcome is unknown.
    Panicked(String),
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
                    exists: recovered.version > 0,
                    replayed: recovered.replayed,
                    from_snapshot: recovered.snapshot_version.is_some(),
                })
            }
            Self::DurableState { store, codec } => {
                // With its version even when deleted, so that the next write
                // expects the tombstone's version.
                let row =
                    store
                        .load_versioned(stream)
                        .await
                        .map_err(|source| RecoveryError::Store {
                            stream: stream.clone(),
                            source,
                        })?;
                let state = match &row.payload {
                    None => A::default(),
                    Some(payload) => codec.decode_payload(payload, "state").map_err(|source| {
                        RecoveryError::Codec {
                            stream: stream.clone(),
                            version: row.version,
                            source,
                        }
                    })?,
                };
                Ok(Loaded {
                    state,
                    version: row.version,
                    exists: row.payload.is_some(),
                    replayed: 0,
                    from_snapshot: false,
                })
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

    /// Whether a command's events are written as events (and so can carry
    /// ids derived from a command id).
    pub(crate) fn writes_events(&self) -> bool {
        matches!(self, Self::EventSourced { .. })
    }

    /// Encodes one command's events with its metadata, before they are
    /// applied, so that an event that does not encode fails its own command
    /// only; each is made at `stamp`, its batch's time. Each is encoded into
    /// a `spare` event's buffers when one is left.
    /// Durable state encodes the whole state instead
    /// ([`encode_state`](Self::encode_state)), so this encodes nothing there.
    pub(crate) fn encode_events(
        &self,
        events: &[A::Event],
        options: &CommandOptions,
        stamp: &Stamp,
        into: &mut Vec<NewEvent>,
        spare: &mut Vec<NewEvent>,
    ) -> Result<(), CodecError> {
        let Self::EventSourced { codec, .. } = self else {
            return Ok(());
        };
        let start = into.len();
        for (index, event) in events.iter().enumerate() {
            let metadata = options.event_metadata(index, stamp);
            let encoded = match spare.pop() {
                Some(mut reused) => codec
                    .encode_into(event, metadata, &mut reused)
                    .map(|()| reused),
                None => codec.encode(event, metadata),
            };
            match encoded {
                Ok(encoded) => into.push(encoded),
                Err(error) => {
                    super::decision::keep_spares(spare, into.drain(start..));
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Encodes the whole state of a durable-state entity.
    pub(crate) fn encode_state(&self, state: &A) -> Result<Option<Vec<u8>>, CodecError> {
        match self {
            Self::EventSourced { .. } => Ok(None),
            Self::DurableState { codec, .. } => codec.encode_payload(state, "state").map(Some),
        }
    }

    /// The events of the command with `options` as recorded in `stream`, and
    /// the state before them: what a retry of a committed command answers
    /// from. `None` when the stream holds none of its events.
    pub(crate) async fn recorded_command(
        &self,
        stream: &StreamId,
        options: &CommandOptions,
    ) -> Result<Option<RecordedCommand<A>>, RecoveryError> {
        let (Self::EventSourced { store, codec, .. }, Some(command)) = (self, options.id()) else {
            return Ok(None);
        };
        let failed = |source| RecoveryError::Store {
            stream: stream.clone(),
            source,
        };
        let events = store.read_stream(stream, 1).await.map_err(failed)?;
        let Some(first) = events
            .iter()
            .position(|e| e.metadata.event_id == derived_event_id(command, 0))
        else {
            return Ok(None);
        };
        let decode = |recorded: &crate::RecordedEvent| {
            codec
                .decode(recorded)
                .map_err(|source| RecoveryError::Codec {
                    stream: stream.clone(),
                    version: recorded.version,
                    source,
                })
        };
        let mut before = A::default();
        for recorded in &events[..first] {
            before.apply(&decode(recorded)?);
        }
        let mut own = Vec::new();
        for (index, recorded) in events[first..].iter().enumerate() {
            if recorded.metadata.event_id != derived_event_id(command, index) {
                break;
            }
            own.push((decode(recorded)?, recorded.version, recorded.position));
        }
        Ok(Some(RecordedCommand {
            before,
            version_before: events[first].version - 1,
            events: own,
        }))
    }

    /// Writes an encoded batch if the stream (row) is still at
    /// `loaded_version`, and, with a fence, only while the fence is current.
    /// Returns the version after the write.
    pub(crate) async fn write(
        &self,
        stream: &StreamId,
        loaded_version: u64,
        encoded: Encoded<'_>,
        fence: Option<&Fence>,
    ) -> Result<Committed, WriteError> {
        let expected = expecting(loaded_version);
        let events = |outcome: crate::AppendOutcome| Committed {
            version: outcome.version,
            positions: outcome.positions,
        };
        let row = |version| Committed {
            version,
            positions: Vec::new(),
        };
        let written = match (self, encoded, fence) {
            (Self::EventSourced { store, .. }, Encoded::Events(batch), None) => {
                store.append(stream, expected, batch).await.map(events)
            }
            (Self::EventSourced { store, .. }, Encoded::Events(batch), Some(fence)) => store
                .append_fenced(stream, expected, batch, fence)
                .await
                .map(events),
            (Self::DurableState { store, .. }, Encoded::State(payload), None) => {
                store.save(stream, expected, payload).await.map(row)
            }
            (Self::DurableState { store, .. }, Encoded::State(payload), Some(fence)) => store
                .save_fenced(stream, expected, payload, fence)
                .await
                .map(row),
            (_, _, _) => unreachable!("the runner encodes for its own persistence"),
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
