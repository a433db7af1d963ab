//! [`EntityError`] as data that crosses the wire, and back.
//!
//! Every variant and every field is kept, so a caller on another node can
//! `match` on the same variants and gets the same answers from
//! [`is_unavailable`](EntityError::is_unavailable),
//! [`outcome_unknown`](EntityError::outcome_unknown) and `Display` as a
//! local caller. The one loss is the boxed driver errors deep inside
//! (`BoxError` sources): they cross as their message and come back as a
//! [`RemoteSource`] with the same `Display`, since a `dyn Error` has no
//! serde form.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::codec::PayloadCodec;
use crate::lease::LeaseError;
use crate::{
    BoxError, CodecError, EntityError, ExpectedVersion, RecoveryError, StoreError, StreamId,
};

/// A boxed error that crossed the wire as its message: what a `BoxError`
/// source (a driver's error on the node that failed) becomes on the node
/// that reads the answer. Its `Display` is the original error's.
///
/// ```
/// use nexus_core::remote::RemoteSource;
/// assert_eq!(RemoteSource::new("connection refused").to_string(), "connection refused");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RemoteSource(String);

impl RemoteSource {
    /// A source with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// The original error's message.
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// The message of a boxed source, which crosses the wire in its place.
fn message(source: &BoxError) -> String {
    source.to_string()
}

fn boxed(message: String) -> BoxError {
    Box::new(RemoteSource(message))
}

/// [`EntityError`] with its rejection encoded by the codec and its nested
/// errors in their wire forms: what an owner node answers for a command that
/// failed. Build it with [`to_wire`], read it with [`from_wire`].
///
/// ```
/// use nexus_core::codec::Json;
/// use nexus_core::remote::{from_wire, to_wire};
/// use nexus_core::{EntityError, StreamId};
/// let full: EntityError<String> = EntityError::MailboxFull { stream: StreamId::new("wallet-a"), capacity: 8 };
/// let back: EntityError<String> = from_wire(to_wire(full, &Json), &Json);
/// assert!(matches!(back, EntityError::MailboxFull { capacity: 8, .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum WireEntityError {
    /// [`EntityError::Rejected`], the aggregate's error encoded by the codec.
    Rejected(Vec<u8>),
    /// A rejection that did not encode on the owner: its `Display` and the
    /// codec's error. Read back as [`EntityError::Undeliverable`].
    RejectionNotEncoded {
        /// The rejection's message.
        rejection: String,
        /// Why it did not encode.
        source: WireCodecError,
    },
    /// [`EntityError::MailboxFull`].
    MailboxFull {
        /// The entity's stream.
        stream: StreamId,
        /// The mailbox capacity.
        capacity: u64,
    },
    /// [`EntityError::Timeout`].
    Timeout {
        /// The entity's stream.
        stream: StreamId,
        /// The ask timeout.
        after: Duration,
    },
    /// [`EntityError::ShuttingDown`].
    ShuttingDown {
        /// The entity's stream.
        stream: StreamId,
    },
    /// [`EntityError::Conflict`].
    Conflict {
        /// The entity's stream.
        stream: StreamId,
        /// The version the last attempt expected.
        expected: ExpectedVersion,
        /// The version the store had.
        actual: u64,
        /// How many times the command was decided.
        attempts: u32,
    },
    /// [`EntityError::Store`].
    Store(WireStoreError),
    /// [`EntityError::OutcomeUnknown`].
    OutcomeUnknown {
        /// The entity's stream.
        stream: StreamId,
        /// How many times the batch was sent.
        attempts: u32,
        /// How long the entity tried.
        waited: Duration,
        /// The last store error.
        source: WireStoreError,
    },
    /// [`EntityError::Recovery`].
    Recovery(WireRecoveryError),
    /// [`EntityError::Encode`].
    Encode {
        /// The entity's stream.
        stream: StreamId,
        /// The codec's error.
        source: WireCodecError,
    },
    /// [`EntityError::NotFound`].
    NotFound {
        /// The entity's stream.
        stream: StreamId,
    },
    /// [`EntityError::Panicked`].
    Panicked {
        /// The entity's stream.
        stream: StreamId,
        /// The panic's message.
        message: String,
    },
    /// [`EntityError::RestartLimit`].
    RestartLimit {
        /// The entity's stream.
        stream: StreamId,
        /// Restarts counted in the window.
        restarts: u32,
        /// The supervision window.
        window: Duration,
    },
    /// [`EntityError::Stopped`].
    Stopped {
        /// The entity's stream.
        stream: StreamId,
    },
    /// [`EntityError::NotOwner`].
    NotOwner {
        /// The entity's stream.
        stream: StreamId,
        /// Why the lease was not granted.
        source: WireLeaseError,
    },
    /// [`EntityError::Unreachable`] (a node that forwarded the command once
    /// more and could not reach the next one).
    Unreachable {
        /// The entity's stream.
        stream: StreamId,
        /// The node that could not be reached.
        node: String,
        /// The transport error's message.
        source: String,
    },
    /// [`EntityError::Interrupted`].
    Interrupted {
        /// The entity's stream.
        stream: StreamId,
        /// The node that did not answer.
        node: String,
        /// The transport error's message.
        source: String,
    },
    /// [`EntityError::Undeliverable`].
    Undeliverable {
        /// The codec's error.
        source: WireCodecError,
    },
}

/// [`StoreError`] as data: the same variants and fields, boxed sources as
/// their messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant and field is the `StoreError` one of the same name.
pub enum WireStoreError {
    Conflict {
        stream: StreamId,
        expected: ExpectedVersion,
        actual: u64,
    },
    DuplicateEventId {
        stream: StreamId,
        event_id: uuid::Uuid,
    },
    StreamArchived {
        stream: StreamId,
    },
    Timeout {
        source: String,
    },
    Fenced {
        stream: StreamId,
        shard: u32,
        epoch: u64,
    },
    FencingUnsupported {
        store: String,
    },
    InvalidRequest(String),
    Unavailable {
        source: String,
    },
    Ambiguous {
        source: String,
    },
    PoolExhausted {
        waited_ms: u64,
    },
    Backend {
        source: String,
    },
}

/// [`CodecError`] as data: the same variants and fields, boxed sources as
/// their messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant and field is the `CodecError` one of the same name.
pub enum WireCodecError {
    UnknownEventType {
        event_type: String,
        schema_version: u32,
        known: String,
    },
    UnsupportedSchemaVersion {
        event_type: String,
        found: u32,
        current: u32,
    },
    Decode {
        what: String,
        codec: String,
        source: String,
    },
    Encode {
        what: String,
        codec: String,
        source: String,
    },
    Upcast {
        event_type: String,
        from: u32,
        reason: String,
    },
}

/// [`RecoveryError`] as data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant and field is the `RecoveryError` one of the same name.
pub enum WireRecoveryError {
    Store {
        stream: StreamId,
        source: WireStoreError,
    },
    Codec {
        stream: StreamId,
        version: u64,
        source: WireCodecError,
    },
    Gap {
        stream: StreamId,
        expected: u64,
        found: u64,
    },
}

/// [`LeaseError`] as data: the same variants and fields, boxed sources as
/// their messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant and field is the `LeaseError` one of the same name.
pub enum WireLeaseError {
    Held {
        stream: StreamId,
        holder: String,
    },
    Lost {
        stream: StreamId,
        shard: u32,
        epoch: u64,
    },
    Backend {
        stream: StreamId,
        source: String,
    },
}

/// `error` as data that crosses the wire, its rejection encoded by `codec`.
///
/// A rejection that does not encode crosses as its message
/// ([`WireEntityError::RejectionNotEncoded`]): nothing of the command was
/// written, and the caller learns why its answer is missing.
///
/// ```
/// use nexus_core::codec::Bincode;
/// use nexus_core::remote::{WireEntityError, to_wire};
/// use nexus_core::EntityError;
/// let wire = to_wire(EntityError::Rejected("no funds".to_owned()), &Bincode);
/// assert!(matches!(wire, WireEntityError::Rejected(_)));
/// ```
pub fn to_wire<W, E>(error: EntityError<E>, codec: &W) -> WireEntityError
where
    W: PayloadCodec<E>,
    E: std::fmt::Display,
{
    match error {
        EntityError::Rejected(rejection) => match codec.encode_payload(&rejection, "rejection") {
            Ok(bytes) => WireEntityError::Rejected(bytes),
            Err(source) => WireEntityError::RejectionNotEncoded {
                rejection: rejection.to_string(),
                source: WireCodecError::from(&source),
            },
        },
        EntityError::MailboxFull { stream, capacity } => WireEntityError::MailboxFull {
            stream,
            capacity: capacity as u64,
        },
        EntityError::Timeout { stream, after } => WireEntityError::Timeout { stream, after },
        EntityError::ShuttingDown { stream } => WireEntityError::ShuttingDown { stream },
        EntityError::Conflict {
            stream,
            expected,
            actual,
            attempts,
        } => WireEntityError::Conflict {
            stream,
            expected,
            actual,
            attempts,
        },
        EntityError::Store(source) => WireEntityError::Store((&source).into()),
        EntityError::OutcomeUnknown {
            stream,
            attempts,
            waited,
            source,
        } => WireEntityError::OutcomeUnknown {
            stream,
            attempts,
            waited,
            source: (&source).into(),
        },
        EntityError::Recovery(source) => WireEntityError::Recovery((&source).into()),
        EntityError::Encode { stream, source } => WireEntityError::Encode {
            stream,
            source: (&source).into(),
        },
        EntityError::NotFound { stream } => WireEntityError::NotFound { stream },
        EntityError::Panicked { stream, message } => WireEntityError::Panicked { stream, message },
        EntityError::RestartLimit {
            stream,
            restarts,
            window,
        } => WireEntityError::RestartLimit {
            stream,
            restarts,
            window,
        },
        EntityError::Stopped { stream } => WireEntityError::Stopped { stream },
        EntityError::NotOwner { stream, source } => WireEntityError::NotOwner {
            stream,
            source: (&source).into(),
        },
        EntityError::Unreachable {
            stream,
            node,
            source,
        } => WireEntityError::Unreachable {
            stream,
            node,
            source: message(&source),
        },
        EntityError::Interrupted {
            stream,
            node,
            source,
        } => WireEntityError::Interrupted {
            stream,
            node,
            source: message(&source),
        },
        EntityError::Undeliverable { source } => WireEntityError::Undeliverable {
            source: (&source).into(),
        },
    }
}

/// The [`EntityError`] that `wire` stands for, its rejection decoded by
/// `codec`. A rejection that does not decode here (the nodes run different
/// versions of the error type) becomes [`EntityError::Undeliverable`].
///
/// ```
/// use nexus_core::codec::Json;
/// use nexus_core::remote::{from_wire, to_wire};
/// use nexus_core::EntityError;
/// let wire = to_wire(EntityError::Rejected("no funds".to_owned()), &Json);
/// let back: EntityError<String> = from_wire(wire, &Json);
/// assert_eq!(back.rejection().map(String::as_str), Some("no funds"));
/// ```
pub fn from_wire<W, E>(wire: WireEntityError, codec: &W) -> EntityError<E>
where
    W: PayloadCodec<E>,
{
    match wire {
        WireEntityError::Rejected(bytes) => match codec.decode_payload(&bytes, "rejection") {
            Ok(rejection) => EntityError::Rejected(rejection),
            Err(source) => EntityError::Undeliverable { source },
        },
        WireEntityError::RejectionNotEncoded { rejection, source } => {
            let source = CodecError::from(source);
            EntityError::Undeliverable {
                source: CodecError::Encode {
                    what: format!("rejection `{rejection}`"),
                    codec: codec.name(),
                    source: Box::new(source),
                },
            }
        }
        WireEntityError::MailboxFull { stream, capacity } => EntityError::MailboxFull {
            stream,
            // A capacity beyond this node's `usize` is clamped: it only
            // informs the message.
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
        },
        WireEntityError::Timeout { stream, after } => EntityError::Timeout { stream, after },
        WireEntityError::ShuttingDown { stream } => EntityError::ShuttingDown { stream },
        WireEntityError::Conflict {
            stream,
            expected,
            actual,
            attempts,
        } => EntityError::Conflict {
            stream,
            expected,
            actual,
            attempts,
        },
        WireEntityError::Store(source) => EntityError::Store(source.into()),
        WireEntityError::OutcomeUnknown {
            stream,
            attempts,
            waited,
            source,
        } => EntityError::OutcomeUnknown {
            stream,
            attempts,
            waited,
            source: source.into(),
        },
        WireEntityError::Recovery(source) => EntityError::Recovery(source.into()),
        WireEntityError::Encode { stream, source } => EntityError::Encode {
            stream,
            source: source.into(),
        },
        WireEntityError::NotFound { stream } => EntityError::NotFound { stream },
        WireEntityError::Panicked { stream, message } => EntityError::Panicked { stream, message },
        WireEntityError::RestartLimit {
            stream,
            restarts,
            window,
        } => EntityError::RestartLimit {
            stream,
            restarts,
            window,
        },
        WireEntityError::Stopped { stream } => EntityError::Stopped { stream },
        WireEntityError::NotOwner { stream, source } => EntityError::NotOwner {
            stream,
            source: source.into(),
        },
        WireEntityError::Unreachable {
            stream,
            node,
            source,
        } => EntityError::Unreachable {
            stream,
            node,
            source: boxed(source),
        },
        WireEntityError::Interrupted {
            stream,
            node,
            source,
        } => EntityError::Interrupted {
            stream,
            node,
            source: boxed(source),
        },
        WireEntityError::Undeliverable { source } => EntityError::Undeliverable {
            source: source.into(),
        },
    }
}

impl From<&StoreError> for WireStoreError {
    fn from(error: &StoreError) -> Self {
        match error {
            StoreError::Conflict {
                stream,
                expected,
                actual,
            } => Self::Conflict {
                stream: stream.clone(),
                expected: *expected,
                actual: *actual,
            },
            StoreError::DuplicateEventId { stream, event_id } => Self::DuplicateEventId {
                stream: stream.clone(),
                event_id: *event_id,
            },
            StoreError::StreamArchived { stream } => Self::StreamArchived {
                stream: stream.clone(),
            },
            StoreError::Timeout { source } => Self::Timeout {
                source: message(source),
            },
            StoreError::Fenced {
                stream,
                shard,
                epoch,
            } => Self::Fenced {
                stream: stream.clone(),
                shard: *shard,
                epoch: *epoch,
            },
            StoreError::FencingUnsupported { store } => Self::FencingUnsupported {
                store: (*store).to_owned(),
            },
            StoreError::InvalidRequest(reason) => Self::InvalidRequest(reason.clone()),
            StoreError::Unavailable { source } => Self::Unavailable {
                source: message(source),
            },
            StoreError::Ambiguous { source } => Self::Ambiguous {
                source: message(source),
            },
            StoreError::PoolExhausted { waited_ms } => Self::PoolExhausted {
                waited_ms: *waited_ms,
            },
            StoreError::Backend { source } => Self::Backend {
                source: message(source),
            },
        }
    }
}

impl From<WireStoreError> for StoreError {
    fn from(error: WireStoreError) -> Self {
        match error {
            WireStoreError::Conflict {
                stream,
                expected,
                actual,
            } => Self::Conflict {
                stream,
                expected,
                actual,
            },
            WireStoreError::DuplicateEventId { stream, event_id } => {
                Self::DuplicateEventId { stream, event_id }
            }
            WireStoreError::StreamArchived { stream } => Self::StreamArchived { stream },
            WireStoreError::Timeout { source } => Self::Timeout {
                source: boxed(source),
            },
            WireStoreError::Fenced {
                stream,
                shard,
                epoch,
            } => Self::Fenced {
                stream,
                shard,
                epoch,
            },
            WireStoreError::FencingUnsupported { store } => Self::FencingUnsupported {
                store: intern(store),
            },
            WireStoreError::InvalidRequest(reason) => Self::InvalidRequest(reason),
            WireStoreError::Unavailable { source } => Self::Unavailable {
                source: boxed(source),
            },
            WireStoreError::Ambiguous { source } => Self::Ambiguous {
                source: boxed(source),
            },
            WireStoreError::PoolExhausted { waited_ms } => Self::PoolExhausted { waited_ms },
            WireStoreError::Backend { source } => Self::Backend {
                source: boxed(source),
            },
        }
    }
}

impl From<&CodecError> for WireCodecError {
    fn from(error: &CodecError) -> Self {
        match error {
            CodecError::UnknownEventType {
                event_type,
                schema_version,
                known,
            } => Self::UnknownEventType {
                event_type: event_type.clone(),
                schema_version: *schema_version,
                known: known.clone(),
            },
            CodecError::UnsupportedSchemaVersion {
                event_type,
                found,
                current,
            } => Self::UnsupportedSchemaVersion {
                event_type: event_type.clone(),
                found: *found,
                current: *current,
            },
            CodecError::Decode {
                what,
                codec,
                source,
            } => Self::Decode {
                what: what.clone(),
                codec: (*codec).to_owned(),
                source: message(source),
            },
            CodecError::Encode {
                what,
                codec,
                source,
            } => Self::Encode {
                what: what.clone(),
                codec: (*codec).to_owned(),
                source: message(source),
            },
            CodecError::Upcast {
                event_type,
                from,
                reason,
            } => Self::Upcast {
                event_type: event_type.clone(),
                from: *from,
                reason: reason.clone(),
            },
        }
    }
}

impl From<WireCodecError> for CodecError {
    fn from(error: WireCodecError) -> Self {
        match error {
            WireCodecError::UnknownEventType {
                event_type,
                schema_version,
                known,
            } => Self::UnknownEventType {
                event_type,
                schema_version,
                known,
            },
            WireCodecError::UnsupportedSchemaVersion {
                event_type,
                found,
                current,
            } => Self::UnsupportedSchemaVersion {
                event_type,
                found,
                current,
            },
            WireCodecError::Decode {
                what,
                codec,
                source,
            } => Self::Decode {
                what,
                codec: intern(codec),
                source: boxed(source),
            },
            WireCodecError::Encode {
                what,
                codec,
                source,
            } => Self::Encode {
                what,
                codec: intern(codec),
                source: boxed(source),
            },
            WireCodecError::Upcast {
                event_type,
                from,
                reason,
            } => Self::Upcast {
                event_type,
                from,
                reason,
            },
        }
    }
}

impl From<&RecoveryError> for WireRecoveryError {
    fn from(error: &RecoveryError) -> Self {
        match error {
            RecoveryError::Store { stream, source } => Self::Store {
                stream: stream.clone(),
                source: source.into(),
            },
            RecoveryError::Codec {
                stream,
                version,
                source,
            } => Self::Codec {
                stream: stream.clone(),
                version: *version,
                source: source.into(),
            },
            RecoveryError::Gap {
                stream,
                expected,
                found,
            } => Self::Gap {
                stream: stream.clone(),
                expected: *expected,
                found: *found,
            },
        }
    }
}

impl From<WireRecoveryError> for RecoveryError {
    fn from(error: WireRecoveryError) -> Self {
        match error {
            WireRecoveryError::Store { stream, source } => Self::Store {
                stream,
                source: source.into(),
            },
            WireRecoveryError::Codec {
                stream,
                version,
                source,
            } => Self::Codec {
                stream,
                version,
                source: source.into(),
            },
            WireRecoveryError::Gap {
                stream,
                expected,
                found,
            } => Self::Gap {
                stream,
                expected,
                found,
            },
        }
    }
}

impl From<&LeaseError> for WireLeaseError {
    fn from(error: &LeaseError) -> Self {
        match error {
            LeaseError::Held { stream, holder } => Self::Held {
                stream: stream.clone(),
                holder: holder.clone(),
            },
            LeaseError::Lost {
                stream,
                shard,
                epoch,
            } => Self::Lost {
                stream: stream.clone(),
                shard: *shard,
                epoch: *epoch,
            },
            LeaseError::Backend { stream, source } => Self::Backend {
                stream: stream.clone(),
                source: message(source),
            },
        }
    }
}

impl From<WireLeaseError> for LeaseError {
    fn from(error: WireLeaseError) -> Self {
        match error {
            WireLeaseError::Held { stream, holder } => Self::Held { stream, holder },
            WireLeaseError::Lost {
                stream,
                shard,
                epoch,
            } => Self::Lost {
                stream,
                shard,
                epoch,
            },
            WireLeaseError::Backend { stream, source } => Self::Backend {
                stream,
                source: boxed(source),
            },
        }
    }
}

/// How many distinct names [`intern`] keeps before it answers `"unknown"`:
/// names of codecs and stores are a handful per program, so a peer cannot
/// grow this node's memory by sending new ones.
const MAX_INTERNED: usize = 64;

/// A `&'static str` equal to `name`, for the fields of the local errors that
/// hold one (a codec's or a store's name, normally a literal). Known names
/// are leaked once each, up to [`MAX_INTERNED`].
fn intern(name: String) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(|| Mutex::new(HashSet::from(["json", "bincode"])));
    let mut names = names
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(known) = names.get(name.as_str()) {
        return known;
    }
    if names.len() >= MAX_INTERNED {
        return "unknown";
    }
    let leaked: &'static str = Box::leak(name.into_boxed_str());
    names.insert(leaked);
    leaked
}
