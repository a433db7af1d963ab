//! Values between Rust and Postgres: row columns, versions, conflicts.

use nexus_core::lease::Fence;
use nexus_core::{ExpectedVersion, StoreError, StreamId};
use sqlx::Row;
use sqlx::postgres::PgRow;

/// Column `index` of `row`; a value that does not decode is a backend
/// failure (the schema is not what the store wrote).
pub(crate) fn get<'r, T>(row: &'r PgRow, index: usize) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(index).map_err(|e| StoreError::Backend {
        source: Box::new(e),
    })
}

/// A stored version or sequence, which the schema keeps non-negative.
pub(crate) fn to_u64(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(format!("negative stored number {value}")))
}

/// A version asked for by a caller, as Postgres' `bigint`.
pub(crate) fn to_i64(version: u64) -> Result<i64, StoreError> {
    i64::try_from(version).map_err(|_| {
        StoreError::InvalidRequest(format!("version {version} exceeds the largest bigint"))
    })
}

/// A stored value the store cannot have written.
pub(crate) fn corrupt(what: String) -> StoreError {
    StoreError::Backend {
        source: what.into(),
    }
}

/// The conflict error of the store contract.
pub(crate) fn conflict(stream: &StreamId, expected: ExpectedVersion, actual: u64) -> StoreError {
    StoreError::Conflict {
        stream: stream.clone(),
        expected,
        actual,
    }
}

/// Column `index` of `row` of a statement of this crate, without sqlx's
/// per-value type check. For the event read path only, where the check cost
/// about 2 ms of a 10,000-row stream read: the column types are fixed by
/// the crate's own migrations and statements, and a value of the wrong
/// width still fails to decode (an error, not a wrong value).
pub(crate) fn get_trusted<'r, T>(row: &'r PgRow, index: usize) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get_unchecked(index)
        .map_err(|e| StoreError::Backend {
            source: Box::new(e),
        })
}

/// A fence as the lease table's columns: `shard` (`integer`) and `epoch`
/// (`bigint`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FenceKey {
    pub(crate) shard: i32,
    pub(crate) epoch: i64,
}

impl FenceKey {
    /// The columns of `fence` for a write of `stream`. A fence that its
    /// holder's own clock already ended is refused before any round trip
    /// ([`StoreError::Fenced`]), so writes stop at the holder's deadline,
    /// ahead of the database's expiry; a shard or epoch no lease of this
    /// crate hands out is refused too.
    pub(crate) fn of(stream: &StreamId, fence: &Fence) -> Result<Self, StoreError> {
        if !fence.is_current() {
            return Err(fenced(stream, fence));
        }
        let shard = i32::try_from(fence.shard()).map_err(|_| {
            StoreError::InvalidRequest(format!("fence shard {} exceeds an integer", fence.shard()))
        })?;
        let epoch = to_i64(fence.epoch())?;
        Ok(Self { shard, epoch })
    }
}

/// The error of a write that `fence` no longer allowed.
pub(crate) fn fenced(stream: &StreamId, fence: &Fence) -> StoreError {
    StoreError::Fenced {
        stream: stream.clone(),
        shard: fence.shard(),
        epoch: fence.epoch(),
    }
}
