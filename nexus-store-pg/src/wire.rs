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

const JSONB: Oid = Oid(3802);
const JSONB_ARRAY: Oid = Oid(3807);

/// Text known to be JSON, sent as `jsonb` without re-serialising it (the
/// binary format is a version byte and the text).
#[derive(Clone, Copy, Debug)]
pub(crate) struct JsonText<'a>(pub(crate) &'a [u8]);

impl Type<Postgres> for JsonText<'_> {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSONB)
    }
}

impl PgHasArrayType for JsonText<'_> {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(JSONB_ARRAY)
    }
}

impl Encode<'_, Postgres> for JsonText<'_> {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.push(1);
        buf.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn size_hint(&self) -> usize {
        1 + self.0.len()
    }
}

/// Whether `payload` can be stored as `jsonb` and read back as the same
/// JSON value: valid JSON, and none of the escapes `jsonb` refuses (`\u0000`)
/// or may refuse (a lone surrogate), which a JSON codec never writes for
/// ordinary text.
pub(crate) fn is_jsonb_safe(payload: &[u8]) -> bool {
    let refused = |w: &[u8]| {
        let nul = w[2..6] == *b"0000";
        let surrogate =
            matches!(w[2], b'd' | b'D') && matches!(w[3], b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F');
        w[0] == b'\\' && w[1] == b'u' && (nul || surrogate)
    };
    !payload.windows(6).any(refused)
        && serde_json::from_slice::<serde::de::IgnoredAny>(payload).is_ok()
}
