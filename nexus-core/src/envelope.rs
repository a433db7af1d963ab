//! What is written to and read from an event store.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{LogPosition, StreamId};

/// Data about an event that is not part of the domain payload.
///
/// The event id makes appends idempotent: appending the same ids at the same
/// versions again returns the original result instead of writing twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMetadata {
    /// Unique id of this event.
    pub event_id: Uuid,
    /// When the event was created by its writer. The events an entity
    /// writes in one batch share the time the batch was decided: order
    /// events by version or log position, not by this.
    pub timestamp: SystemTime,
    /// The id shared by every message caused by one original request.
    pub correlation_id: Option<Uuid>,
    /// The id of the message that directly caused this event.
    pub causation_id: Option<Uuid>,
    /// User metadata (a tenant, a user id, a trace context), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl EventMetadata {
    /// Fresh metadata: a new time-ordered event id, the current time, no
    /// correlation. The ids this and the runtime make in one process
    /// increase in the order they are made; they are not ordered against
    /// ids a caller makes with `Uuid::now_v7` in the same millisecond.
    ///
    /// ```
    /// let a = nexus_core::EventMetadata::new();
    /// let b = nexus_core::EventMetadata::new();
    /// assert_ne!(a.event_id, b.event_id);
    /// ```
    pub fn new() -> Self {
        let stamp = crate::stamp::Stamp::now();
        Self {
            event_id: stamp.fresh_id(),
            timestamp: stamp.at(),
            correlation_id: None,
            causation_id: None,
            headers: BTreeMap::new(),
        }
    }

    /// The same metadata with correlation and causation ids set.
    #[must_use]
    pub fn caused_by(mut self, correlation_id: Uuid, causation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self.causation_id = Some(causation_id);
        self
    }
}

impl Default for EventMetadata {
    fn default() -> Self {
        Self::new()
    }
}

/// An encoded event on its way into a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Stable type name of the event (see [`DomainEvent`](crate::DomainEvent)).
    pub event_type: String,
    /// Schema version of the payload, for upcasting.
    pub schema_version: u32,
    /// The encoded payload.
    pub payload: Vec<u8>,
    /// Event id, timestamp, correlation.
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// An event with fresh metadata.
    ///
    /// ```
    /// let event = nexus_core::NewEvent::new("wallet.deposited", 1, b"{}".to_vec());
    /// assert_eq!(event.event_type, "wallet.deposited");
    /// ```
    pub fn new(event_type: impl Into<String>, schema_version: u32, payload: Vec<u8>) -> Self {
        Self {
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: EventMetadata::new(),
        }
    }
}

/// An event as stored: the payload with its place in its stream and in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedEvent {
    /// The stream the event belongs to.
    pub stream_id: StreamId,
    /// Version in the stream: 1 for the first event, gapless.
    pub version: u64,
    /// Place in the global log.
    pub position: LogPosition,
    /// Stable type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// The encoded payload.
    pub payload: Vec<u8>,
    /// Event id, timestamp, correlation.
    pub metadata: EventMetadata,
}

/// What recovery reads of a stored event: its version and what decodes it.
///
/// Recovery needs neither the log position nor the metadata, so a store can
/// fetch less for it (see [`EventStore::read_stream_for_replay`]).
///
/// [`EventStore::read_stream_for_replay`]: crate::EventStore::read_stream_for_replay
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayEvent {
    /// Version in the stream.
    pub version: u64,
    /// Stable type name.
    pub event_type: String,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// The encoded payload.
    pub payload: Vec<u8>,
}

impl From<RecordedEvent> for ReplayEvent {
    fn from(event: RecordedEvent) -> Self {
        Self {
            version: event.version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            payload: event.payload,
        }
    }
}

impl ReplayEvent {
    /// This event as a replay hands it over, borrowed.
    ///
    /// ```
    /// use nexus_core::ReplayEvent;
    /// let owned = ReplayEvent {
    ///     version: 3,
    ///     event_type: "counter.added".to_owned(),
    ///     schema_version: 1,
    ///     payload: b"2".to_vec(),
    /// };
    /// let borrowed = owned.borrowed();
    /// assert_eq!((borrowed.version, borrowed.event_type, borrowed.payload), (3, "counter.added", &b"2"[..]));
    /// ```
    pub fn borrowed(&self) -> ReplayEventRef<'_> {
        ReplayEventRef {
            version: self.version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            payload: &self.payload,
        }
    }
}

/// A stored event as [`EventStore::replay`] hands it to its visitor:
/// borrowed from the store's read buffer, so replaying a stream allocates
/// nothing per event and holds one batch of rows at a time, not the stream.
///
/// ```
/// use nexus_core::ReplayEventRef;
/// use nexus_core::ReplayEvent;
/// let event = ReplayEventRef { version: 1, event_type: "counter.added", schema_version: 1, payload: b"2" };
/// assert_eq!(ReplayEvent::from(event).payload, b"2".to_vec());
/// ```
///
/// [`EventStore::replay`]: crate::EventStore::replay
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplayEventRef<'a> {
    /// Version in the stream.
    pub version: u64,
    /// Stable type name.
    pub event_type: &'a str,
    /// Schema version of the payload.
    pub schema_version: u32,
    /// The encoded payload.
    pub payload: &'a [u8],
}

impl From<ReplayEventRef<'_>> for ReplayEvent {
    /// An owned copy of a replayed event.
    ///
    /// ```
    /// use nexus_core::{ReplayEvent, ReplayEventRef};
    /// let event = ReplayEventRef { version: 2, event_type: "t", schema_version: 1, payload: b"" };
    /// let owned = ReplayEvent::from(event);
    /// assert_eq!(owned.borrowed(), event);
    /// ```
    fn from(event: ReplayEventRef<'_>) -> Self {
        Self {
            version: event.version,
            event_type: event.event_type.to_owned(),
            schema_version: event.schema_version,
            payload: event.payload.to_vec(),
        }
    }
}

/// What a successful append returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The stream's version after the append (its last event's version).
    pub version: u64,
    /// The log position of each appended event, in order.
    pub positions: Vec<LogPosition>,
}
