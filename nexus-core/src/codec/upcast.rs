//! Upcasters: functions that turn an old stored event into a newer shape.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::CodecError;

/// A stored event before decoding: its name, schema version and payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// Stored type name.
    pub event_type: String,
    /// Stored schema version.
    pub schema_version: u32,
    /// Encoded payload.
    pub payload: Vec<u8>,
}

type UpcastFn = Arc<dyn Fn(RawEvent) -> Result<RawEvent, String> + Send + Sync>;

/// Upcasters keyed by the (type name, schema version) they start from.
///
/// Each step must return a newer schema version or another type name; steps
/// are chained until the event is in the shape this program decodes.
///
/// ```
/// use nexus_core::codec::{RawEvent, Upcasters};
/// // v1 stored `{"Deposited":{"cents":5}}`; v2 calls the field `amount`.
/// let upcasters = Upcasters::new().json("wallet.deposited", 1, |mut v| {
///     let body = &mut v["Deposited"];
///     body["amount"] = body["cents"].take();
///     v
/// });
/// let old = RawEvent {
///     event_type: "wallet.deposited".into(),
///     schema_version: 1,
///     payload: br#"{"Deposited":{"cents":5}}"#.to_vec(),
/// };
/// let new = upcasters.step(old).unwrap().unwrap();
/// assert_eq!(new.schema_version, 2);
/// assert_eq!(new.payload, br#"{"Deposited":{"amount":5,"cents":null}}"#.to_vec());
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), UpcastFn>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut keys: Vec<_> = self.steps.keys().collect();
        keys.sort();
        f.debug_struct("Upcasters").field("steps", &keys).finish()
    }
}

impl Upcasters {
    /// No upcasters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a step from (`event_type`, `from_version`).
    #[must_use]
    pub fn with(
        mut self,
        event_type: &str,
        from_version: u32,
        step: impl Fn(RawEvent) -> Result<RawEvent, String> + Send + Sync + 'static,
    ) -> Self {
        self.steps
            .insert((event_type.to_owned(), from_version), Arc::new(step));
        self
    }

    /// Registers a JSON step that rewrites the payload and raises the schema
    /// version by one, keeping the name.
    #[must_use]
    pub fn json(
        self,
        event_type: &str,
        from_version: u32,
        rewrite: impl Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.with(event_type, from_version, move |raw| {
            let value: serde_json::Value =
                serde_json::from_slice(&raw.payload).map_err(|e| e.to_string())?;
            let payload = serde_json::to_vec(&rewrite(value)).map_err(|e| e.to_string())?;
            Ok(RawEvent {
                event_type: raw.event_type,
                schema_version: raw.schema_version + 1,
                payload,
            })
        })
    }

    /// Registers a rename: (`from_type`, `from_version`) becomes
    /// (`to_type`, `to_version`) with the payload unchanged.
    #[must_use]
    pub fn rename(
        self,
        from_type: &str,
        from_version: u32,
        to_type: &str,
        to_version: u32,
    ) -> Self {
        let to_type = to_type.to_owned();
        self.with(from_type, from_version, move |raw| {
            Ok(RawEvent {
                event_type: to_type.clone(),
                schema_version: to_version,
                payload: raw.payload,
            })
        })
    }

    /// Applies the one step registered for `raw`'s (type, version), if any.
    pub fn step(&self, raw: RawEvent) -> Result<Option<RawEvent>, CodecError> {
        let Some(step) = self
            .steps
            .get(&(raw.event_type.clone(), raw.schema_version))
        else {
            return Ok(None);
        };
        let (event_type, from) = (raw.event_type.clone(), raw.schema_version);
        let next = step(raw).map_err(|reason| CodecError::Upcast {
            event_type: event_type.clone(),
            from,
            reason,
        })?;
        if next.event_type == event_type && next.schema_version <= from {
            return Err(CodecError::Upcast {
                event_type,
                from,
                reason: format!(
                    "the step returned schema version {}, which does not move forward",
                    next.schema_version
                ),
            });
        }
        Ok(Some(next))
    }

    /// Whether no step is registered.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}
