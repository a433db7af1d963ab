//! The JSON codec (`serde_json`).

use serde::{Serialize, de::DeserializeOwned};

use super::Codec;
use crate::CodecError;

/// JSON through `serde_json`: readable in the database, tolerant of added
/// optional fields.
///
/// ```
/// use nexus_core::codec::{Codec, Json};
/// assert_eq!(Json.encode(&5_u8, "five").unwrap(), b"5");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl Codec for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T, what: &str) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(128);
        self.encode_into(value, what, &mut out)?;
        Ok(out)
    }

    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        what: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        serde_json::to_writer(out, value).map_err(|e| CodecError::Encode {
            what: what.to_owned(),
            codec: "json",
            source: Box::new(e),
        })
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Decode {
            what: what.to_owned(),
            codec: "json",
            source: Box::new(e),
        })
    }
}
