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
#[cfg(test)]
mod tests;

use proc_macro::TokenStream;

/// Turns the inherent impl block of an aggregate's state into a Nexus
/// aggregate: the sealed command enum `{State}Command` with `From` conversions,
/// `CommandOf<State>` for each command, one `Handles<Command>` impl per
/// `#[handle]` method and the `Aggregate` impl whose `handle` is an exhaustive
/// `match` over the command enum.
///
/// ```ignore
/// #[aggregate(name = "wallet", event = WalletEvent, error = WalletError,
///             commands(Deposit, Withdraw, Balance))]
/// impl Wallet {
///     #[handle]
///     fn deposit(&self, command: &Deposit) -> Result<Effect<Self, i64>, WalletError> { .. }
///     #[handle]
///     fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self, i64>, WalletError> { .. }
///     #[handle]
///     fn balance(&self, _: &Balance) -> Result<Effect<Self, i64>, WalletError> { .. }
///     #[apply]
///     fn apply(&mut self, event: &WalletEvent) { .. }
/// }
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
/// ```ignore
/// #[derive(Clone, Serialize, Deserialize, DomainEvent)]
/// #[event(prefix = "wallet")]
/// enum WalletEvent {
///     Deposited { amount: i64 },
///     #[event(name = "wallet.withdrawn", version = 2)]
///     Withdrew { amount: i64 },
/// }
/// ```
#[proc_macro_derive(DomainEvent, attributes(event))]
pub fn derive_domain_event(input: TokenStream) -> TokenStream {
    domain_event::expand(input.into()).into()
}
