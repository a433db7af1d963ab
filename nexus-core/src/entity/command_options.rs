//! What a caller attaches to one command, and what it learns back.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::stamp::Stamp;
use crate::{EventMetadata, LogPosition};

/// What a caller attaches to one command: an id that makes a retry
/// idempotent, and the metadata its events carry.
///
/// - **Command id**: the ids of the command's events are derived from it
///   (the `n`-th event of command `c` always gets the same id), so a retry
///   of a command that already committed writes nothing and answers the
///   original reply, recomputed from the recorded events. The window is the
///   stream's whole history: the store keeps every event id. A command id
///   must name one command of one entity; the same id sent to another
///   entity is refused as a reused event id.
/// - **Correlation and causation ids**: copied onto every event the command
///   writes. The causation id defaults to the command id.
/// - **Headers**: user metadata, copied onto every event.
///
/// ```
/// use nexus_core::CommandOptions;
/// let id = uuid::Uuid::now_v7();
/// let options = CommandOptions::new()
///     .command_id(id)
///     .correlation_id(id)
///     .header("tenant", "acme");
/// assert_eq!(options.id(), Some(id));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommandOptions {
    command_id: Option<Uuid>,
    correlation_id: Option<Uuid>,
    causation_id: Option<Uuid>,
    headers: BTreeMap<String, String>,
}

impl CommandOptions {
    /// No id, no metadata: what `ask` and `tell` send.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the command idempotent under `id`.
    #[must_use]
    pub fn command_id(mut self, id: Uuid) -> Self {
        self.command_id = Some(id);
        self
    }

    /// The correlation id of the command's events.
    #[must_use]
    pub fn correlation_id(mut self, id: Uuid) -> Self {
        self.correlation_id = Some(id);
        self
    }

    /// The causation id of the command's events (default: the command id).
    #[must_use]
    pub fn causation_id(mut self, id: Uuid) -> Self {
        self.causation_id = Some(id);
        self
    }

    /// Adds a header to the command's events.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The command id, if any.
    pub fn id(&self) -> Option<Uuid> {
        self.command_id
    }

    /// The correlation id, if any.
    pub fn correlation(&self) -> Option<Uuid> {
        self.correlation_id
    }

    /// The causation id as set, if any (without the default to the command
    /// id, so that the options can be rebuilt as they were, on another node).
    pub fn causation(&self) -> Option<Uuid> {
        self.causation_id
    }

    /// The headers, by name.
    ///
    /// ```
    /// use nexus_core::CommandOptions;
    /// let options = CommandOptions::new().header("tenant", "acme");
    /// assert_eq!(options.headers().get("tenant").map(String::as_str), Some("acme"));
    /// ```
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }

    /// The metadata of the command's `index`-th event (from 0), made at
    /// `stamp`, its batch's time.
    pub(crate) fn event_metadata(&self, index: usize, stamp: &Stamp) -> EventMetadata {
        EventMetadata {
            event_id: self.command_id.map_or_else(
                || stamp.fresh_id(),
                |command| derived_event_id(command, index),
            ),
            timestamp: stamp.at(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id.or(self.command_id),
            headers: self.headers.clone(),
        }
    }

    /// Whether `event_id` is one of this command's derived event ids
    /// (checked against its first `count` events).
    pub(crate) fn owns_event(&self, event_id: Uuid, count: usize) -> bool {
        self.command_id
            .is_some_and(|command| (0..count).any(|i| derived_event_id(command, i) == event_id))
    }
}

/// The id of the `index`-th event of `command`: a name-based UUID, so every
/// attempt of the command gives its events the same ids.
pub(crate) fn derived_event_id(command: Uuid, index: usize) -> Uuid {
    Uuid::new_v5(&command, &(index as u64).to_be_bytes())
}

/// A reply with where the command left the entity.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::{ActorSystem, CommandOptions, Entities, codec::{EventCodec, Json}};
/// use nexus_core::store::memory::InMemoryEventStore;
/// # use nexus_core::testkit::doc::{Counter, Add};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let system = ActorSystem::new();
/// let counters = Entities::<Counter>::builder(&system)
///     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
///     .build()
///     .unwrap();
/// let id = uuid::Uuid::now_v7();
/// let first = counters.of("c").ask_with(Add(2), CommandOptions::new().command_id(id)).await.unwrap();
/// assert_eq!((first.reply, first.version), (2, 1));
/// assert!(first.position.is_some());
/// // A retry of the same command writes nothing and answers the same.
/// let again = counters.of("c").ask_with(Add(2), CommandOptions::new().command_id(id)).await.unwrap();
/// assert_eq!((again.reply, again.version, again.position), (2, 1, first.position));
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome<R> {
    /// The handler's reply.
    pub reply: R,
    /// The stream's (row's) version the reply was computed at: right after
    /// the command's own events.
    pub version: u64,
    /// Where the command's last event is in the global log, when it wrote
    /// events: a reader of the log (a projection) that has passed it has
    /// seen the command. `None` when it wrote nothing, or for durable state.
    pub position: Option<LogPosition>,
}

impl<R> Outcome<R> {
    /// An outcome with `reply` at `version` and `position` (what a node
    /// rebuilds from an answer that crossed the wire).
    ///
    /// ```
    /// use nexus_core::Outcome;
    /// let outcome = Outcome::new("ok", 3, None);
    /// assert_eq!((outcome.reply, outcome.version), ("ok", 3));
    /// ```
    pub fn new(reply: R, version: u64, position: Option<LogPosition>) -> Self {
        Self {
            reply,
            version,
            position,
        }
    }

    /// The same outcome with its reply mapped.
    ///
    /// ```
    /// use nexus_core::Outcome;
    /// assert_eq!(Outcome::new(2, 1, None).map(|n| n * 10).reply, 20);
    /// ```
    pub fn map<S>(self, f: impl FnOnce(R) -> S) -> Outcome<S> {
        Outcome::new(f(self.reply), self.version, self.position)
    }

    /// The same outcome with its reply mapped by a fallible `f` (encoding
    /// or decoding it for the wire).
    ///
    /// ```
    /// use nexus_core::Outcome;
    /// let parsed: Result<Outcome<u8>, _> = Outcome::new("7", 1, None).try_map(str::parse);
    /// assert_eq!(parsed.unwrap().reply, 7);
    /// ```
    pub fn try_map<S, E>(self, f: impl FnOnce(R) -> Result<S, E>) -> Result<Outcome<S>, E> {
        Ok(Outcome::new(f(self.reply)?, self.version, self.position))
    }
}
