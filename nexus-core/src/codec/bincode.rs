//! The binary codec (bincode 2).
//!
//! bincode is pinned to `=2.0.1`: it is the last working release, and 3.0.0
//! on crates.io is an empty crate that only fails to compile. The codec sits
//! behind the [`Codec`] trait so that the format can be replaced without
//! touching stores or aggregates.

use serde::{Serialize, de::DeserializeOwned};

use super::Codec;
use crate::CodecError;

/// Compact binary encoding through bincode 2 (standard configuration).
///
/// Enum variants are encoded by index: reordering the variants of a stored
/// event enum changes what old payloads decode to, so append new variants at
/// the end or upcast.
///
/// ```
/// use nexus_core::codec::{Bincode, Codec};
/// let bytes = Bincode.encode(&(7_u32, "x"), "pair").unwrap();
/// let back: (u32, String) = Bincode.decode(&bytes, "pair").unwrap();
/// assert_eq!(back, (7, "x".to_owned()));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Bincode;

impl Codec for Bincode {
    fn name(&self) -> &'static str {
        "bincode"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T, what: &str) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        self.encode_into(value, what, &mut out)?;
        Ok(out)
    }

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        what: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        bincode::serde::encode_into_std_write(value, out, bincode::config::standard())
            .map(|_| ())
            .map_err(|e| CodecError::Encode {
                what: what.to_owned(),
                codec: "bincode",
                source: Box::new(e),
            })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T, CodecError> {
        let decode_error = |source: crate::BoxError| CodecError::Decode {
            what: what.to_owned(),
            codec: "bincode",
            source,
        };
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| decode_error(Box::new(e)))?;
        if read != bytes.len() {
            return Err(decode_error(
                format!("{} trailing bytes after the value", bytes.len() - read).into(),
            ));
        }
        Ok(value)
    }
}
