//! Binary wire encodings of the two Postgres types the stores use that sqlx
//! only decodes with extra features: `xid8` (the commit half of a log
//! position) and `timestamptz` (as [`SystemTime`] with microsecond
//! precision).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueFormat, PgValueRef, Postgres,
};
use sqlx::{Decode, Encode, Type};

const XID8: Oid = Oid(5069);
const TIMESTAMPTZ: Oid = Oid(1184);
const TIMESTAMPTZ_ARRAY: Oid = Oid(1185);

/// Microseconds from the Unix epoch to Postgres' epoch, 2000-01-01 UTC.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// A full (epoch-extended) Postgres transaction id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TxId(pub(crate) u64);

impl Type<Postgres> for TxId {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(XID8)
    }
}

impl Encode<'_, Postgres> for TxId {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }

    fn size_hint(&self) -> usize {
        size_of::<u64>()
    }
}

impl Decode<'_, Postgres> for TxId {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        Ok(Self(u64::from_be_bytes(binary(&value)?.try_into()?)))
    }
}

/// A `timestamptz`, exact to the microsecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp(pub(crate) SystemTime);

impl Timestamp {
    fn micros_since_pg_epoch(self) -> Result<i64, BoxDynError> {
        let unix = match self.0.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros())?,
            Err(before) => -i64::try_from(before.duration().as_micros())?,
        };
        Ok(unix - PG_EPOCH_MICROS)
    }
}

impl Type<Postgres> for Timestamp {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(TIMESTAMPTZ)
    }
}

impl PgHasArrayType for Timestamp {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(TIMESTAMPTZ_ARRAY)
    }
}

impl Encode<'_, Postgres> for Timestamp {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.micros_since_pg_epoch()?.to_be_bytes());
        Ok(IsNull::No)
    }

    fn size_hint(&self) -> usize {
        size_of::<i64>()
    }
}

impl Decode<'_, Postgres> for Timestamp {
    fn decode(value: PgValueRef<'_>) -> Result<Self, BoxDynError> {
        let pg = i64::from_be_bytes(binary(&value)?.try_into()?);
        let unix = pg + PG_EPOCH_MICROS;
        let magnitude = Duration::from_micros(unix.unsigned_abs());
        let time = if unix >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        };
        Ok(Self(time))
    }
}

/// The bytes of a value sent in binary format, which is how sqlx receives the
/// results of prepared statements.
fn binary<'r>(value: &PgValueRef<'r>) -> Result<&'r [u8], BoxDynError> {
    match value.format() {
        PgValueFormat::Binary => value.as_bytes(),
        PgValueFormat::Text => Err("expected a binary value".into()),
    }
}
