//! The sealed link between a command type and the one aggregate it belongs to.

use crate::Aggregate;

/// Marks `Self` as a command of the aggregate `A`.
///
/// Implemented only by `#[aggregate]`, once for every type listed in its
/// `commands(...)`: the supertrait lives in a hidden module, so a command
/// cannot be added to an aggregate behind its back, and every implementor
/// converts into the aggregate's command enum and has a handler there.
/// Runtime APIs can bound on it to accept exactly the commands of one
/// aggregate.
///
/// ```
/// use nexus_core::{Aggregate, CommandOf};
/// # use nexus_core::{Effect, DomainEvent, aggregate};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Clone, Debug, Serialize, Deserialize, DomainEvent)]
/// # enum LampEvent { SwitchedOn }
/// # #[derive(Debug, thiserror::Error)]
/// # #[error("already on")]
/// # struct AlreadyOn;
/// # #[derive(Default)]
/// # struct Lamp { on: bool }
/// #[derive(Debug)]
/// struct SwitchOn;
///
/// #[aggregate(name = "lamp", event = LampEvent, error = AlreadyOn, commands(SwitchOn))]
/// impl Lamp {
///     #[handle]
///     fn switch_on(&self, _: &SwitchOn) -> Result<Effect<Self>, AlreadyOn> {
///         if self.on { Err(AlreadyOn) } else { Ok(Effect::persist(LampEvent::SwitchedOn)) }
///     }
///     #[apply]
///     fn apply(&mut self, _: &LampEvent) { self.on = true; }
/// }
///
/// // Accepts exactly the commands of `A`, as its command enum.
/// fn enqueue<A: Aggregate, C: CommandOf<A>>(queue: &mut Vec<A::Command>, command: C) {
///     queue.push(command.into());
/// }
/// let mut queue = Vec::new();
/// enqueue::<Lamp, _>(&mut queue, SwitchOn);
/// assert!(matches!(queue[..], [LampCommand::SwitchOn(SwitchOn)]));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a command of `{A}`",
    label = "not declared in `{A}`'s `commands(...)`",
    note = "list `{Self}` in `#[aggregate(commands(...))]` on `{A}`'s impl block and give it a `#[handle]` method, or send it to the aggregate that declares it"
)]
pub trait CommandOf<A: Aggregate>: Into<A::Command> + crate::__private::Sealed<A> {}
