//! A decoded event of the log with where it came from, and exhaustive dispatch.

use uuid::Uuid;

use crate::{EventMetadata, LogPosition, RecordedEvent, StreamId};

/// Exhaustive dispatch of an event to a visitor, implemented by
/// `#[derive(EventVisitor)]` for every `V` implementing the generated
/// `{Enum}Visitor` trait. The generated `match` has no wildcard arm.
///
/// ```
/// use nexus_core::projection::{EventVisitor, Visit};
///
/// #[derive(EventVisitor)]
/// enum Light { On, Off, Dimmed(u8) }
///
/// struct Level;
/// impl LightVisitor for Level {
///     type Output = u8;
///     fn on(&mut self) -> u8 { 100 }
///     fn off(&mut self) -> u8 { 0 }
///     fn dimmed(&mut self, level: &u8) -> u8 { *level }
/// }
///
/// fn level<E: Visit<Level, Output = u8>>(event: &E) -> u8 { event.visit(&mut Level) }
/// assert_eq!(level(&Light::Dimmed(40)), 40);
/// assert_eq!(Light::On.visit(&mut Level), 100);
/// ```
pub trait Visit<V: ?Sized> {
    /// What the visitor returns.
    type Output;

    /// Calls the visitor's method for this value's variant.
    fn visit(&self, visitor: &mut V) -> Self::Output;
}

/// A decoded event of the global log, with its stream, version, position and
/// metadata.
///
/// ```
/// use nexus_core::projection::Projected;
/// use nexus_core::{EventMetadata, LogPosition, StreamId};
/// let e = Projected {
///     event: 5_u64,
///     stream_id: StreamId::new("tally-a"),
///     version: 1,
///     position: LogPosition::new(1, 1),
///     metadata: EventMetadata::new(),
/// };
/// assert_eq!(e.event_id(), e.metadata.event_id);
/// assert_eq!(e.entity_id(), "a");
/// ```
#[derive(Clone, Debug)]
pub struct Projected<E> {
    /// The decoded event.
    pub event: E,
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its version in that stream.
    pub version: u64,
    /// Its place in the global log.
    pub position: LogPosition,
    /// Its id, time, correlation and headers.
    pub metadata: EventMetadata,
}

impl<E> Projected<E> {
    /// The event's id: stable across redeliveries, so an at-least-once
    /// handler deduplicates by it.
    pub fn event_id(&self) -> Uuid {
        self.metadata.event_id
    }

    /// The stream id after its category (`"alice"` of `"wallet-alice"`), or
    /// the whole id when it has no category.
    pub fn entity_id(&self) -> &str {
        let id = self.stream_id.as_str();
        id.split_once('-').map_or(id, |(_, rest)| rest)
    }

    /// The stream's category (`"wallet"` of `"wallet-alice"`).
    pub fn category(&self) -> &str {
        let id = self.stream_id.as_str();
        id.split_once('-').map_or("", |(category, _)| category)
    }

    pub(crate) fn new(event: E, recorded: RecordedEvent) -> Self {
        Self {
            event,
            stream_id: recorded.stream_id,
            version: recorded.version,
            position: recorded.position,
            metadata: recorded.metadata,
        }
    }
}

/// The selected, decoded events of one page of the log, in position order.
pub type Batch<E> = Vec<Projected<E>>;
