//! What a command handler returns: events to persist, then hooks.

use std::fmt;

use crate::Aggregate;

type ReplyFn<A, R> = Box<dyn FnOnce(&A) -> R + Send>;
type SideEffectFn<A> = Box<dyn FnOnce(&A) + Send>;

/// The outcome of a handler: persist events (or none), maybe stop, then reply
/// and run side effects.
///
/// An `Effect<A, R>` always carries its reply: the only way to get an effect
/// with a non-unit reply is [`then_reply`](Effect::then_reply), and the
/// runtime calls it on every path, after `none()` too. The reply and the side
/// effects see the state *after* the events were applied, and they run only
/// after the append committed. Side effects run at most once per state
/// transition: they are not run again when the entity recovers by replay.
///
/// ```
/// use nexus_core::Effect;
/// # use nexus_core::testkit::doc::{Counter, CounterEvent};
/// let effect: Effect<Counter, u64> = Effect::persist(CounterEvent::Added(1))
///     .then_run(|state: &Counter| println!("now {}", state.value))
///     .then_reply(|state: &Counter| state.value);
/// assert_eq!(effect.events(), &[CounterEvent::Added(1)]);
/// ```
#[must_use = "an effect does nothing until the handler returns it"]
pub struct Effect<A: Aggregate, R = ()> {
    pub(crate) events: Events<A::Event>,
    pub(crate) stop: bool,
    pub(crate) side_effects: Vec<SideEffectFn<A>>,
    pub(crate) reply: ReplyFn<A, R>,
}

impl<A: Aggregate> Effect<A, ()> {
    /// Persist one event.
    pub fn persist(event: A::Event) -> Self {
        Self::persisting(Events::One(event))
    }

    /// Persist several events atomically: all are stored or none.
    pub fn persist_all(events: Vec<A::Event>) -> Self {
        Self::persisting(Events::Many(events))
    }

    fn persisting(events: Events<A::Event>) -> Self {
        Self {
            events,
            stop: false,
            side_effects: Vec::new(),
            reply: Box::new(|_| ()),
        }
    }

    /// Persist nothing (a query, or a command with nothing to do).
    pub fn none() -> Self {
        Self::persist_all(Vec::new())
    }

    /// Persist nothing and stop the entity after replying. The next message
    /// for this id starts a fresh incarnation that recovers from the store.
    pub fn stop() -> Self {
        Self::none().then_stop()
    }

    /// Reply with a value computed from the state after the events were
    /// applied. Called on every path once the effect is carried out.
    pub fn then_reply<R>(self, reply: impl FnOnce(&A) -> R + Send + 'static) -> Effect<A, R> {
        Effect {
            events: self.events,
            stop: self.stop,
            side_effects: self.side_effects,
            reply: Box::new(reply),
        }
    }
}

impl<A: Aggregate, R> Effect<A, R> {
    /// Run `side_effect` with the new state after the append committed.
    pub fn then_run(mut self, side_effect: impl FnOnce(&A) + Send + 'static) -> Self {
        self.side_effects.push(Box::new(side_effect));
        self
    }

    /// Stop the entity after this effect was carried out and replied.
    pub fn then_stop(mut self) -> Self {
        self.stop = true;
        self
    }

    /// The same effect with the reply dropped (the enum-level dispatch of
    /// [`Aggregate::handle`] uses this).
    pub fn discard_reply(self) -> Effect<A, ()> {
        Effect {
            events: self.events,
            stop: self.stop,
            side_effects: self.side_effects,
            reply: Box::new(|_| ()),
        }
    }

    /// The events this effect persists.
    pub fn events(&self) -> &[A::Event] {
        self.events.as_slice()
    }

    /// Whether the entity stops after this effect.
    pub fn stops(&self) -> bool {
        self.stop
    }

    /// Splits the effect for the runtime that carries it out.
    pub(crate) fn into_parts(self) -> EffectParts<A, R> {
        EffectParts {
            events: self.events,
            stop: self.stop,
            side_effects: self.side_effects,
            reply: self.reply,
        }
    }
}

impl<A: Aggregate, R> fmt::Debug for Effect<A, R>
where
    A::Event: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Effect")
            .field("events", &self.events.as_slice())
            .field("stop", &self.stop)
            .field("side_effects", &self.side_effects.len())
            .finish_non_exhaustive()
    }
}

/// An effect taken apart: what the runtime persists, then the hooks it calls.
pub(crate) struct EffectParts<A: Aggregate, R> {
    pub(crate) events: Events<A::Event>,
    pub(crate) stop: bool,
    pub(crate) side_effects: Vec<SideEffectFn<A>>,
    pub(crate) reply: ReplyFn<A, R>,
}

impl<A: Aggregate, R> EffectParts<A, R> {
    /// Replies and runs the side effects against the committed state.
    pub(crate) fn complete(self, state: &A) -> R {
        for side_effect in self.side_effects {
            side_effect(state);
        }
        (self.reply)(state)
    }
}

/// The events an effect persists: one, kept inline so that
/// [`Effect::persist`] allocates nothing, or any number.
pub(crate) enum Events<E> {
    One(E),
    Many(Vec<E>),
}

impl<E> Events<E> {
    pub(crate) fn as_slice(&self) -> &[E] {
        match self {
            Self::One(event) => std::slice::from_ref(event),
            Self::Many(events) => events,
        }
    }
}

impl<E> IntoIterator for Events<E> {
    type Item = E;
    type IntoIter = std::iter::Chain<std::option::IntoIter<E>, std::vec::IntoIter<E>>;

    fn into_iter(self) -> Self::IntoIter {
        let (one, many) = match self {
            Self::One(event) => (Some(event), Vec::new()),
            Self::Many(events) => (None, events),
        };
        one.into_iter().chain(many)
    }
}
