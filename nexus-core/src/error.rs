//! The errors of the store contract and of the codecs.

use crate::{ExpectedVersion, StreamId};

/// A boxed error from a store's driver, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a store operation failed. A failed operation changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The stream (or durable-state row) was not at the expected version.
    #[error("stream {stream}: expected version {expected}, found {actual}")]
    Conflict {
        /// The stream that was written.
        stream: StreamId,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The version the stream is actually at.
        actual: u64,
    },
    /// An event id in the batch is already stored at a different place (or
    /// repeated within the batch), so the append is neither new nor an
    /// idempotent retry. Nothing was written.
    #[error("event id {event_id} is already stored in stream {stream} at another place")]
    DuplicateEventId {
        /// The stream that holds the id (the written stream when the batch
        /// itself repeats it).
        stream: StreamId,
        /// The reused id, one that is stored (or repeated in the batch).
        event_id: uuid::Uuid,
    },
    /// The stream is archived (soft-deleted): it refuses appends, and reads
    /// skip it. Nothing was written.
    #[error("stream {stream} is archived")]
    StreamArchived {
        /// The archived stream.
        stream: StreamId,
    },
    /// The store gave up on the request after its statement or lock timeout:
    /// the statement was cancelled and rolled back, so nothing was written,
    /// and trying again later may succeed.
    #[error("store timed out: {source}")]
    Timeout {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The write carried a fence whose epoch is no longer current: another
    /// holder took the shard's lease, or the lease expired. Nothing was
    /// written; the writer must stop acting as the owner.
    #[error(
        "stream {stream}: fenced off: the lease of shard {shard} is no longer at epoch {epoch}"
    )]
    Fenced {
        /// The stream that was written.
        stream: StreamId,
        /// The shard of the fence.
        shard: u32,
        /// The epoch the write carried.
        epoch: u64,
    },
    /// The store cannot check fences, so it refuses fenced writes rather
    /// than accept them unchecked. Use a store that implements the
    /// `*_fenced` methods with the lease, or no lease.
    #[error("{store} does not check fencing tokens; it cannot be used with an ownership lease")]
    FencingUnsupported {
        /// The store's type name.
        store: &'static str,
    },
    /// The request itself is malformed (for example a limit of zero).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The store could not be reached, or the connection broke before the
    /// request was sent: nothing happened, and trying again later may
    /// succeed.
    #[error("store unavailable: {source}")]
    Unavailable {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// The request was sent and its answer lost (the connection broke, or a
    /// timeout fired, while the store was working on it): it may or may not
    /// have taken effect. Sending the very same write again is how to learn
    /// which; the idempotent append makes that safe. Every other error of a
    /// write means it changed nothing.
    #[error("outcome unknown: {source}")]
    Ambiguous {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
    /// Every connection of the pool is in use.
    #[error("connection pool exhausted after waiting {waited_ms} ms")]
    PoolExhausted {
        /// How long the request waited for a connection.
        waited_ms: u64,
    },
    /// Any other failure of the store.
    #[error("store failure: {source}")]
    Backend {
        /// The driver's error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Whether the same operation may succeed if tried again as it is
    /// (a connection fault or an exhausted pool). A conflict is not retryable
    /// as it is: the writer must re-read and decide again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. }
                | Self::PoolExhausted { .. }
                | Self::Ambiguous { .. }
                | Self::Timeout { .. }
        )
    }

    /// Whether the operation may have taken effect although it failed
    /// ([`StoreError::Ambiguous`]).
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Ambiguous { .. })
    }

    /// Whether the store refused the write because its fence is stale.
    pub fn is_fenced(&self) -> bool {
        matches!(self, Self::Fenced { .. })
    }

    /// Whether the stream is archived ([`StoreError::StreamArchived`]).
    pub fn is_archived(&self) -> bool {
        matches!(self, Self::StreamArchived { .. })
    }

    /// Whether this is an optimistic-concurrency conflict.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

/// Why an event, a snapshot or a state could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The stored type name is not one of the event enum's names, even after
    /// upcasting.
    #[error(
        "unknown event type `{event_type}` (schema version {schema_version}); known types: {known}"
    )]
    UnknownEventType {
        /// The stored name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The names the event type declares, comma separated.
        known: String,
    },
    /// The stored schema version is newer than this program knows, or older
    /// with no upcaster registered for it.
    #[error("event type `{event_type}`: no upcaster from schema version {found} to {current}")]
    UnsupportedSchemaVersion {
        /// The stored name.
        event_type: String,
        /// The stored schema version.
        found: u32,
        /// The version this program decodes.
        current: u32,
    },
    /// The payload does not decode as the expected type.
    #[error("cannot decode `{what}` with the {codec} codec: {source}")]
    Decode {
        /// What was decoded (an event type name, "snapshot", "state").
        what: String,
        /// The codec's name.
        codec: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },
    /// The value does not encode.
    #[error("cannot encode `{what}` with the {codec} codec: {source}")]
    Encode {
        /// What was encoded.
        what: String,
        /// The codec's name.
        codec: &'static str,
        /// The codec's error.
        #[source]
        source: BoxError,
    },
    /// An upcaster failed.
    #[error("upcasting `{event_type}` from schema version {from}: {reason}")]
    Upcast {
        /// The stored name.
        event_type: String,
        /// The version the upcaster started from.
        from: u32,
        /// What the upcaster reported.
        reason: String,
    },
}
