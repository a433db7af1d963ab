//! One failure answered to every caller of a batch.
//!
//! Store, codec and lease errors carry boxed driver errors and are not
//! `Clone`. When a group-committed batch fails, each caller still gets the
//! same variant with the same fields (so `is_retryable` and friends answer
//! the same); a boxed source is carried as its message. That is exactly
//! what crossing the wire keeps, so a copy goes through the wire forms.

use crate::lease::LeaseError;
use crate::remote::{WireCodecError, WireLeaseError, WireRecoveryError, WireStoreError};
use crate::{CodecError, RecoveryError, StoreError};

pub(crate) fn store_error(error: &StoreError) -> StoreError {
    WireStoreError::from(error).into()
}

pub(crate) fn codec_error(error: &CodecError) -> CodecError {
    WireCodecError::from(error).into()
}

pub(crate) fn recovery_error(error: &RecoveryError) -> RecoveryError {
    WireRecoveryError::from(error).into()
}

pub(crate) fn lease_error(error: &LeaseError) -> LeaseError {
    WireLeaseError::from(error).into()
}
