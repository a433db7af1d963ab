//! Codecs: how payloads become bytes, and how stored events are upcast and
//! decoded.
//!
//! A [`Codec`] is the serialisation format (JSON or bincode here; implement the
//! trait for another). An [`EventCodec`] adds what events need on top: the
//! stable type name and schema version stored beside every payload, and the
//! [`Upcasters`] that turn an old stored shape into the current one before it
//! is decoded.

mod bincode;
mod event_codec;
mod json;
mod upcast;

pub use self::bincode::Bincode;
pub use event_codec::EventCodec;
pub use json::Json;
pub use upcast::{RawEvent, Upcasters};

use serde::{Serialize, de::DeserializeOwned};

use crate::CodecError;

/// A serialisation format.
///
/// ```
/// use nexus_core::codec::{Codec, Json};
/// let bytes = Json.encode(&vec![1, 2, 3], "numbers").unwrap();
/// let back: Vec<i32> = Json.decode(&bytes, "numbers").unwrap();
/// assert_eq!(back, vec![1, 2, 3]);
/// ```
pub trait Codec: Send + Sync + 'static {
    /// A short name for error messages ("json", "bincode").
    fn name(&self) -> &'static str;

    /// Encodes `value`; `what` names it in errors.
    fn encode<T: Serialize + ?Sized>(&self, value: &T, what: &str) -> Result<Vec<u8>, CodecError>;

    /// Encodes `value` at the end of `out`; `what` names it in errors. On
    /// an error `out` may hold part of the value, so the caller truncates.
    ///
    /// The runtime encodes every event into a buffer it keeps, so a format
    /// that writes into `out` (both of this crate's do) encodes a warm
    /// entity's events without allocating. The default encodes with
    /// [`encode`](Self::encode) and copies.
    ///
    /// ```
    /// use nexus_core::codec::{Bincode, Codec, Json};
    /// let mut out = b"[".to_vec();
    /// Json.encode_into(&7_u8, "seven", &mut out).unwrap();
    /// assert_eq!(out, b"[7");
    /// out.clear();
    /// Bincode.encode_into(&7_u8, "seven", &mut out).unwrap();
    /// assert_eq!(out, Bincode.encode(&7_u8, "seven").unwrap());
    /// ```
    fn encode_into<T: Serialize + ?Sized>(
        &self,
        value: &T,
        what: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        out.extend_from_slice(&self.encode(value, what)?);
        Ok(())
    }

    /// Decodes a `T`; `what` names it in errors.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8], what: &str) -> Result<T, CodecError>;
}

/// A codec fixed to one payload type, so it can be shared as a trait object.
///
/// Every [`Codec`] is a `PayloadCodec<T>` for every serde type `T`.
pub trait PayloadCodec<T>: Send + Sync + 'static {
    /// The format's name.
    fn name(&self) -> &'static str;
    /// Encodes `value`.
    fn encode_payload(&self, value: &T, what: &str) -> Result<Vec<u8>, CodecError>;
    /// Encodes `value` at the end of `out` ([`Codec::encode_into`]). The
    /// default encodes with [`encode_payload`](Self::encode_payload) and
    /// copies.
    fn encode_payload_into(
        &self,
        value: &T,
        what: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        out.extend_from_slice(&self.encode_payload(value, what)?);
        Ok(())
    }
    /// Decodes a `T`.
    fn decode_payload(&self, bytes: &[u8], what: &str) -> Result<T, CodecError>;
}

impl<T: Serialize + DeserializeOwned, C: Codec> PayloadCodec<T> for C {
    fn name(&self) -> &'static str {
        Codec::name(self)
    }

    fn encode_payload(&self, value: &T, what: &str) -> Result<Vec<u8>, CodecError> {
        self.encode(value, what)
    }

    fn encode_payload_into(
        &self,
        value: &T,
        what: &str,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        self.encode_into(value, what, out)
    }

    fn decode_payload(&self, bytes: &[u8], what: &str) -> Result<T, CodecError> {
        self.decode(bytes, what)
    }
}
