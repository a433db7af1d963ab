//! Encoding events with their names and versions, decoding them with upcasting.

use std::fmt;
use std::sync::Arc;

use super::{Codec, PayloadCodec, RawEvent, Upcasters};
use crate::{CodecError, DomainEvent, EventMetadata, NewEvent, RecordedEvent};

/// Chains of upcasters longer than this are treated as a cycle.
const MAX_UPCAST_STEPS: usize = 64;

/// Encodes events of type `E` to [`NewEvent`]s and decodes [`RecordedEvent`]s
/// back, upcasting old shapes first.
///
/// ```
/// use nexus_core::codec::{EventCodec, Json};
/// # use nexus_core::DomainEvent;
/// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// # enum Ev { Opened }
/// # impl DomainEvent for Ev {
/// #     const EVENT_TYPES: &'static [&'static str] = &["opened"];
/// #     fn event_type(&self) -> &'static str { "opened" }
/// # }
/// let codec = EventCodec::<Ev>::new(Json);
/// let new = codec.encode(&Ev::Opened, nexus_core::EventMetadata::new()).unwrap();
/// assert_eq!((new.event_type.as_str(), new.schema_version), ("opened", 1));
/// ```
pub struct EventCodec<E> {
    payload: Arc<dyn PayloadCodec<E>>,
    upcasters: Arc<Upcasters>,
}

impl<E> Clone for EventCodec<E> {
    fn clone(&self) -> Self {
        Self {
            payload: Arc::clone(&self.payload),
            upcasters: Arc::clone(&self.upcasters),
        }
    }
}

impl<E: 'static> fmt::Debug for EventCodec<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCodec")
            .field("codec", &self.payload.name())
            .field("upcasters", &self.upcasters)
            .finish()
    }
}

impl<E: DomainEvent> EventCodec<E> {
    /// A codec in the given format, without upcasters.
    pub fn new(codec: impl Codec) -> Self {
        Self {
            payload: Arc::new(codec),
            upcasters: Arc::new(Upcasters::new()),
        }
    }

    /// The same codec with these upcasters.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Self {
        self.upcasters = Arc::new(upcasters);
        self
    }

    /// The format's name.
    pub fn format(&self) -> &'static str {
        self.payload.name()
    }

    /// Encodes one event with the given metadata.
    pub fn encode(&self, event: &E, metadata: EventMetadata) -> Result<NewEvent, CodecError> {
        let event_type = event.event_type();
        Ok(NewEvent {
            event_type: event_type.to_owned(),
            schema_version: event.schema_version(),
            payload: self.payload.encode_payload(event, event_type)?,
            metadata,
        })
    }

    /// Encodes one event with the given metadata into `into`, reusing its
    /// type name's and payload's buffers: how the runtime encodes, so that
    /// a warm entity's events are encoded without allocating. On an error
    /// `into` holds no payload.
    ///
    /// ```
    /// use nexus_core::codec::{EventCodec, Json};
    /// use nexus_core::{EventMetadata, NewEvent};
    /// # use nexus_core::DomainEvent;
    /// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    /// # enum Ev { Opened }
    /// # impl DomainEvent for Ev {
    /// #     const EVENT_TYPES: &'static [&'static str] = &["opened"];
    /// #     fn event_type(&self) -> &'static str { "opened" }
    /// # }
    /// let codec = EventCodec::<Ev>::new(Json);
    /// let mut event = NewEvent::new("an old type", 3, b"an old payload".to_vec());
    /// codec.encode_into(&Ev::Opened, EventMetadata::new(), &mut event).unwrap();
    /// assert_eq!(event.event_type, "opened");
    /// assert_eq!((event.schema_version, event.payload.as_slice()), (1, &b"\"Opened\""[..]));
    /// ```
    pub fn encode_into(
        &self,
        event: &E,
        metadata: EventMetadata,
        into: &mut NewEvent,
    ) -> Result<(), CodecError> {
        let event_type = event.event_type();
        into.payload.clear();
        if let Err(error) = self
            .payload
            .encode_payload_into(event, event_type, &mut into.payload)
        {
            into.payload.clear();
            return Err(error);
        }
        into.event_type.clear();
        into.event_type.push_str(event_type);
        into.schema_version = event.schema_version();
        into.metadata = metadata;
        Ok(())
    }

    /// Decodes a stored event, upcasting it first when its shape is old.
    ///
    /// An unknown type name, a schema version with no way forward, or a
    /// payload that does not decode is an error; nothing is guessed.
    pub fn decode(&self, recorded: &RecordedEvent) -> Result<E, CodecError> {
        self.decode_parts(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        )
    }

    /// Decodes a stored event given as its name, schema version and payload
    /// (what [`ReplayEvent`](crate::ReplayEvent) holds), upcasting it first
    /// when its shape is old.
    pub fn decode_parts(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<E, CodecError> {
        // The current shape decodes as it is, whatever upcasters exist for
        // older ones; only an old or unknown shape is copied to be upcast.
        if E::EVENT_TYPES.contains(&event_type)
            && schema_version == E::schema_version_of(event_type)
        {
            return self.decode_current(event_type, payload);
        }
        let mut raw = RawEvent {
            event_type: event_type.to_owned(),
            schema_version,
            payload: payload.to_vec(),
        };
        for _ in 0..MAX_UPCAST_STEPS {
            let known = E::EVENT_TYPES.contains(&raw.event_type.as_str());
            if known && raw.schema_version == E::schema_version_of(&raw.event_type) {
                return self.decode_current(&raw.event_type, &raw.payload);
            }
            match self.upcasters.step(raw.clone())? {
                Some(next) => raw = next,
                None if known => {
                    return Err(CodecError::UnsupportedSchemaVersion {
                        current: E::schema_version_of(&raw.event_type),
                        event_type: raw.event_type,
                        found: raw.schema_version,
                    });
                }
                None => {
                    return Err(CodecError::UnknownEventType {
                        event_type: raw.event_type,
                        schema_version: raw.schema_version,
                        known: E::EVENT_TYPES.join(", "),
                    });
                }
            }
        }
        Err(CodecError::Upcast {
            event_type: event_type.to_owned(),
            from: schema_version,
            reason: format!("more than {MAX_UPCAST_STEPS} steps; the upcasters form a cycle"),
        })
    }

    fn decode_current(&self, event_type: &str, payload: &[u8]) -> Result<E, CodecError> {
        let event = self.payload.decode_payload(payload, event_type)?;
        let decoded_type = event.event_type();
        if decoded_type != event_type {
            return Err(CodecError::Decode {
                what: event_type.to_owned(),
                codec: self.payload.name(),
                source: format!("the payload decodes as `{decoded_type}`, not `{event_type}`")
                    .into(),
            });
        }
        Ok(event)
    }
}
