//! The aggregate contract: decide with `handle`, evolve with `apply`.

use crate::{DomainEvent, Effect};

/// A consistency boundary whose state is a fold over its events.
///
/// `handle` decides what a command does against the current state (events to
/// persist, or a rejection) and `apply` evolves the state by one event. Both
/// are pure and synchronous: all I/O lives in the runtime, which guarantees
/// that one command at a time sees the state left by the previous one.
///
/// The `#[aggregate]` macro generates the command enum, the [`Handles`] impls
/// and the exhaustive `handle` dispatch from annotated handler methods; the
/// trait can also be implemented by hand:
///
/// ```
/// use nexus_core::{Aggregate, DomainEvent, Effect, Handles};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Debug)]
/// struct Counter { value: u64 }
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
/// enum CounterEvent { Added(u64) }
/// impl DomainEvent for CounterEvent {
///     const EVENT_TYPES: &'static [&'static str] = &["counter.added"];
///     fn event_type(&self) -> &'static str { "counter.added" }
/// }
///
/// struct Add(u64);
/// enum CounterCommand { Add(Add) }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("cannot add zero")]
/// struct AddZero;
///
/// impl Handles<Add> for Counter {
///     type Reply = u64;
///     fn handle_command(&self, cmd: &Add) -> Result<Effect<Self, u64>, AddZero> {
///         if cmd.0 == 0 { return Err(AddZero); }
///         Ok(Effect::persist(CounterEvent::Added(cmd.0)).then_reply(|s: &Counter| s.value))
///     }
/// }
///
/// impl Aggregate for Counter {
///     const NAME: &'static str = "counter";
///     type Command = CounterCommand;
///     type Event = CounterEvent;
///     type Error = AddZero;
///     fn handle(&self, command: &CounterCommand) -> Result<Effect<Self>, AddZero> {
///         match command {
///             CounterCommand::Add(c) => self.handle_command(c).map(Effect::discard_reply),
///         }
///     }
///     fn apply(&mut self, event: &CounterEvent) {
///         match event { CounterEvent::Added(n) => self.value += n }
///     }
/// }
///
/// nexus_core::testkit::given::<Counter>([CounterEvent::Added(2)])
///     .ask(Add(3))
///     .then_expect_events([CounterEvent::Added(3)])
///     .then_expect_reply(5);
/// ```
pub trait Aggregate: Default + Send + 'static {
    /// The aggregate kind's name, the category of its streams. Keep it stable:
    /// it is part of every stored stream id.
    const NAME: &'static str;

    /// Every command this aggregate accepts, as one (sealed) enum.
    type Command: Send + 'static;

    /// The events this aggregate records.
    type Event: DomainEvent;

    /// Why a command is rejected.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Decides what `command` does in the current state. Exhaustive dispatch
    /// over [`Self::Command`]; the reply of the typed handler is discarded.
    fn handle(&self, command: &Self::Command) -> Result<Effect<Self>, Self::Error>;

    /// Evolves the state by one event. Must not fail: an event is a fact.
    fn apply(&mut self, event: &Self::Event);
}

/// The typed handler of command `C` on this aggregate, with its reply type.
///
/// `EntityRef::ask(command)` returns `Handles::<C>::Reply`, so the reply type
/// is checked at compile time and never passes through `dyn Any`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no handler for the command `{C}`",
    label = "`{C}` is not a command of `{Self}`",
    note = "send `{C}` to an entity of the aggregate that declares it, or list `{C}` in `commands(...)` of `{Self}`'s `#[aggregate]` and give it a `#[handle]` method"
)]
pub trait Handles<C>: Aggregate {
    /// What `ask` returns for this command.
    type Reply: Send + 'static;

    /// Decides what `command` does in the current state.
    fn handle_command(&self, command: &C) -> Result<Effect<Self, Self::Reply>, Self::Error>;

    /// Decides what `command` does in the current state, knowing where the
    /// state is (its stream version) and the command's ids. The runtime
    /// calls this one; the default ignores the context and calls
    /// [`handle_command`](Self::handle_command). A `#[handle]` method that
    /// takes a third parameter `context: &CommandContext` gets it here.
    fn handle_in(
        &self,
        command: &C,
        context: &CommandContext,
    ) -> Result<Effect<Self, Self::Reply>, Self::Error> {
        let _ = context;
        self.handle_command(command)
    }
}

/// Where a command is decided: the version of the state it sees (the
/// number of events folded into it, or the durable-state row's version) and
/// the ids the caller attached. A handler can refuse a command meant for
/// another version (an HTTP `If-Match`), and a reply can report the version
/// it leaves the entity at.
///
/// ```
/// use nexus_core::CommandContext;
/// let context = CommandContext::at(3);
/// assert_eq!(context.version(), 3);
/// assert_eq!(context.command_id(), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommandContext {
    version: u64,
    command_id: Option<uuid::Uuid>,
    correlation_id: Option<uuid::Uuid>,
}

impl CommandContext {
    /// A context at `version`, without ids (what a direct call or a test
    /// passes).
    pub fn at(version: u64) -> Self {
        Self {
            version,
            ..Self::default()
        }
    }

    /// The same context with the caller's ids.
    #[must_use]
    pub fn with_ids(
        mut self,
        command_id: Option<uuid::Uuid>,
        correlation_id: Option<uuid::Uuid>,
    ) -> Self {
        self.command_id = command_id;
        self.correlation_id = correlation_id;
        self
    }

    /// The version of the state the command is decided on: the command's
    /// own events, if any, get the versions after it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The caller's command id, if any.
    pub fn command_id(&self) -> Option<uuid::Uuid> {
        self.command_id
    }

    /// The caller's correlation id, if any.
    pub fn correlation_id(&self) -> Option<uuid::Uuid> {
        self.correlation_id
    }
}

/// Applies `events` to `state` in order.
///
/// ```
/// # use nexus_core::{Aggregate, fold};
/// # use nexus_core::testkit::doc::{Counter, CounterEvent};
/// let state: Counter = fold(Counter::default(), &[CounterEvent::Added(2), CounterEvent::Added(3)]);
/// assert_eq!(state.value, 5);
/// ```
pub fn fold<'a, A: Aggregate>(mut state: A, events: impl IntoIterator<Item = &'a A::Event>) -> A {
    for event in events {
        state.apply(event);
    }
    state
}
