//! One failure answered to every caller of a batch.
//!
//! Store, codec and lease errors carry boxed driver errors and are not
//! `Clone`. When a group-committed batch fails, each caller still gets the
//! same variant with the same fields (so `is_retryable` and friends answer
//! the same); a boxed source is carried as its message.

use crate::lease::LeaseError;
use crate::{BoxError, CodecError, RecoveryError, StoreError};

fn message(source: &BoxError) -> BoxError {
    source.to_string().into()
}

pub(crate) fn store_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => StoreError::Conflict {
            stream: stream.clone(),
            expected: *expected,
            actual: *actual,
        },
        StoreError::DuplicateEventId { stream, event_id } => StoreError::DuplicateEventId {
            stream: stream.clone(),
            event_id: *event_id,
        },
        StoreError::Fenced {
            stream,
            shard,
            epoch,
        } => StoreError::Fenced {
            stream: stream.clone(),
            shard: *shard,
            epoch: *epoch,
        },
        StoreError::StreamArchived { stream } => StoreError::StreamArchived {
            stream: stream.clone(),
        },
        StoreError::Timeout { source } => StoreError::Timeout {
            source: message(source),
        },
        StoreError::FencingUnsupported { store } => StoreError::FencingUnsupported { store },
        StoreError::InvalidRequest(what) => StoreError::InvalidRequest(what.clone()),
        StoreError::Unavailable { source } => StoreError::Unavailable {
            source: message(source),
        },
        StoreError::Ambiguous { source } => StoreError::Ambiguous {
            source: message(source),
        },
        StoreError::PoolExhausted { waited_ms } => StoreError::PoolExhausted {
            waited_ms: *waited_ms,
        },
        StoreError::Backend { source } => StoreError::Backend {
            source: message(source),
        },
    }
}

pub(crate) fn codec_error(error: &CodecError) -> CodecError {
    match error {
        CodecError::UnknownEventType {
            event_type,
            schema_version,
            known,
        } => CodecError::UnknownEventType {
            event_type: event_type.clone(),
            schema_version: *schema_version,
            known: known.clone(),
        },
        CodecError::UnsupportedSchemaVersion {
            event_type,
            found,
            current,
        } => CodecError::UnsupportedSchemaVersion {
            event_type: event_type.clone(),
            found: *found,
            current: *current,
        },
        CodecError::Decode {
            what,
            codec,
            source,
        } => CodecError::Decode {
            what: what.clone(),
            codec,
            source: message(source),
        },
        CodecError::Encode {
            what,
            codec,
            source,
        } => CodecError::Encode {
            what: what.clone(),
            codec,
            source: message(source),
        },
        CodecError::Upcast {
            event_type,
            from,
            reason,
        } => CodecError::Upcast {
            event_type: event_type.clone(),
            from: *from,
            reason: reason.clone(),
        },
    }
}

pub(crate) fn recovery_error(error: &RecoveryError) -> RecoveryError {
    match error {
        RecoveryError::Store { stream, source } => RecoveryError::Store {
            stream: stream.clone(),
            source: store_error(source),
        },
        RecoveryError::Codec {
            stream,
            version,
            source,
        } => RecoveryError::Codec {
            stream: stream.clone(),
            version: *version,
            source: codec_error(source),
        },
        RecoveryError::Gap {
            stream,
            expected,
            found,
        } => RecoveryError::Gap {
            stream: stream.clone(),
            expected: *expected,
            found: *found,
        },
    }
}

pub(crate) fn lease_error(error: &LeaseError) -> LeaseError {
    match error {
        LeaseError::Held { stream, holder } => LeaseError::Held {
            stream: stream.clone(),
            holder: holder.clone(),
        },
        LeaseError::Lost {
            stream,
            shard,
            epoch,
        } => LeaseError::Lost {
            stream: stream.clone(),
            shard: *shard,
            epoch: *epoch,
        },
        LeaseError::Backend { stream, source } => LeaseError::Backend {
            stream: stream.clone(),
            source: message(source),
        },
    }
}
