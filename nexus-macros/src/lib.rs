//! Procedural macros for Nexus. Use them through `nexus_core`, which re-exports
//! them; its `guide` module shows an annotated aggregate beside its expansion.
//!
//! Each macro is parse → model → generate: `attr`/`model` turn `syn` input
//! into a validated model of the user's intent (collecting every mistake),
//! `expand` turns the model into tokens.

mod aggregate;
mod case;
mod domain_event;
mod errors;
mod projection;
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Turns the inherent impl block of an aggregate's state into a Nexus
/// aggregate: the sealed command enum `{State}Command` with `From` conversions,
/// `CommandOf<State>` for each command, one `Handles<Command>` impl per
/// `#[handle]` method and the `Aggregate` impl whose `handle` is an exhaustive
/// `match` over the command enum.
///
/// ```
/// use nexus_core::testkit::given;
/// use nexus_core::{DomainEvent, Effect, aggregate};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default)]
/// struct Wallet {
///     balance: i64,
/// }
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
/// #[event(prefix = "wallet")]
/// enum WalletEvent {
///     Deposited { amount: i64 },
/// }
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// #[error("the amount must be positive, got {0}")]
/// struct NotPositive(i64);
///
/// #[derive(Debug)]
/// struct Deposit(i64);
/// #[derive(Debug)]
/// struct Balance;
///
/// #[aggregate(name = "wallet", event = WalletEvent, error = NotPositive, commands(Deposit, Balance))]
/// impl Wallet {
///     #[handle]
///     fn deposit(&self, Deposit(amount): &Deposit) -> Result<Effect<Self, i64>, NotPositive> {
///         if *amount <= 0 {
///             return Err(NotPositive(*amount));
///         }
///         Ok(Effect::persist(WalletEvent::Deposited { amount: *amount })
///             .then_reply(|wallet: &Self| wallet.balance))
///     }
///
///     #[handle]
///     fn balance(&self, _: &Balance) -> Result<Effect<Self, i64>, NotPositive> {
///         Ok(Effect::none().then_reply(|wallet: &Self| wallet.balance))
///     }
///
///     #[apply]
///     fn apply(&mut self, WalletEvent::Deposited { amount }: &WalletEvent) {
///         self.balance += amount;
///     }
/// }
///
/// given::<Wallet>([WalletEvent::Deposited { amount: 5 }])
///     .ask(Deposit(2))
///     .then_expect_reply(7);
/// given::<Wallet>([]).ask(Deposit(0)).then_expect_rejection(NotPositive(0));
/// assert!(matches!(WalletCommand::from(Balance), WalletCommand::Balance(_)));
/// ```
///
/// Keys: `name = "..."` (the stream category, stored in every stream id, so
/// it is never derived from the type name), `event = Type`, `error = Type`,
/// `commands(Type, ...)` (the command protocol, declared once) and optionally
/// `vis = pub(crate)` (the command enum's visibility, `pub` by default).
#[proc_macro_attribute]
pub fn aggregate(args: TokenStream, item: TokenStream) -> TokenStream {
    aggregate::expand(args.into(), &item.into()).into()
}

/// Derives `DomainEvent` for an enum of events: a stable stored name and a
/// schema version per variant.
///
/// A variant's name defaults to its identifier in snake case, after the
/// enum's `prefix` (`Deposited` with `#[event(prefix = "wallet")]` is
/// `"wallet.deposited"`); `#[event(name = "...")]` on a variant overrides it
/// and `#[event(version = 2)]` sets its schema version (1 by default). With
/// `#[event(require_names)]` on the enum every variant must name itself, so
/// renaming a variant can never rename stored events.
///
/// ```
/// use nexus_core::DomainEvent;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize, DomainEvent)]
/// #[event(prefix = "wallet")]
/// enum WalletEvent {
///     Deposited { amount: i64 },
///     #[event(name = "wallet.withdrawn", version = 2)]
///     Withdrew { amount: i64 },
/// }
///
/// assert_eq!(WalletEvent::EVENT_TYPES, ["wallet.deposited", "wallet.withdrawn"]);
/// assert_eq!(WalletEvent::Withdrew { amount: 1 }.schema_version(), 2);
/// ```
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    domain_event::expand(input.into()).into()
}

/// Derives exhaustive dispatch over an event enum for projections: a trait
/// `{Enum}Visitor` with one required method per variant (snake case, fields
/// by reference) and `{Enum}::visit`, a `match` without a wildcard. Adding a
/// variant fails the build of every projection that forgot it; a projection
/// that wants to ignore an event says so in that event's method.
///
/// ```
/// use nexus_core::{DomainEvent, projection::EventVisitor};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Serialize, Deserialize, DomainEvent, EventVisitor)]
/// #[event(prefix = "wallet")]
/// enum WalletEvent {
///     Deposited { amount: i64 },
///     Withdrawn { amount: i64 },
/// }
///
/// struct Delta(i64);
/// impl WalletEventVisitor for Delta {
///     type Output = ();
///     fn deposited(&mut self, amount: &i64) { self.0 += amount; }
///     fn withdrawn(&mut self, amount: &i64) { self.0 -= amount; }
/// }
///
/// let mut delta = Delta(0);
/// WalletEvent::Deposited { amount: 5 }.visit(&mut delta);
/// WalletEvent::Withdrawn { amount: 2 }.visit(&mut delta);
/// assert_eq!(delta.0, 3);
/// ```
///
/// A visitor that forgot a variant does not compile (here `withdrawn`):
///
/// ```compile_fail,E0046
/// use nexus_core::projection::EventVisitor;
///
/// #[derive(EventVisitor)]
/// enum WalletEvent {
///     Deposited { amount: i64 },
///     Withdrawn { amount: i64 },
/// }
///
/// struct Delta(i64);
/// impl WalletEventVisitor for Delta {
///     type Output = ();
///     fn deposited(&mut self, amount: &i64) { self.0 += amount; }
/// }
/// ```
#[proc_macro_derive(EventVisitor)]
pub fn derive_event_visitor(input: TokenStream) -> TokenStream {
    projection::expand(input.into()).into()
}
