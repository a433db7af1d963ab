//! # What the macros generate
//!
//! Nexus has two macros, re-exported by this crate (feature `macros`, on by
//! default):
//!
//! * [`#[aggregate]`](crate::aggregate) on the inherent impl block of an
//!   aggregate's state: it declares the commands once, in `commands(...)`,
//!   and turns `#[handle]` methods into typed handlers and the `#[apply]`
//!   method into the fold;
//! * [`#[derive(DomainEvent)]`](macro@crate::DomainEvent) on the enum of its
//!   events: a stable stored name and a schema version per variant.
//!
//! Below is one annotated aggregate, then exactly what the macros turn it
//! into. Both blocks compile as doctests, and a test in `nexus-macros` keeps
//! them equal to what the macros really take and generate.
//!
//! ## The annotated aggregate
//!
//! ```
//! use nexus_core::testkit::given;
//! use nexus_core::{DomainEvent, Effect, aggregate};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! pub struct Wallet {
//!     balance: i64,
//! }
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! pub enum WalletError {
//!     #[error("insufficient funds: the balance is {balance}, {requested} were requested")]
//!     InsufficientFunds { balance: i64, requested: i64 },
//! }
//!
//! /// Add cents; replies the new balance.
//! #[derive(Debug)]
//! pub struct Deposit {
//!     pub amount: i64,
//! }
//!
//! /// Take cents out; replies `()`.
//! #[derive(Debug)]
//! pub struct Withdraw {
//!     pub amount: i64,
//! }
//!
//! /// Read the balance.
//! #[derive(Debug)]
//! pub struct Balance;
//!
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
//! #[event(prefix = "wallet")]
//! pub enum WalletEvent {
//!     Deposited { amount: i64 },
//!     #[event(name = "wallet.withdrew", version = 2)]
//!     Withdrawn { amount: i64 },
//! }
//!
//! #[aggregate(
//!     name = "wallet",
//!     event = WalletEvent,
//!     error = WalletError,
//!     commands(Deposit, Withdraw, Balance)
//! )]
//! impl Wallet {
//!     #[handle]
//!     fn deposit(&self, command: &Deposit) -> Result<Effect<Self, i64>, WalletError> {
//!         Ok(Effect::persist(WalletEvent::Deposited {
//!             amount: command.amount,
//!         })
//!         .then_reply(|wallet: &Self| wallet.balance))
//!     }
//!
//!     #[handle]
//!     fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, WalletError> {
//!         if command.amount > self.balance {
//!             return Err(WalletError::InsufficientFunds {
//!                 balance: self.balance,
//!                 requested: command.amount,
//!             });
//!         }
//!         Ok(Effect::persist(WalletEvent::Withdrawn {
//!             amount: command.amount,
//!         }))
//!     }
//!
//!     /// A read-only query: persists nothing, replies the balance.
//!     #[handle]
//!     fn balance(&self, _: &Balance) -> Result<Effect<Self, i64>, WalletError> {
//!         Ok(Effect::none().then_reply(|wallet: &Self| wallet.balance))
//!     }
//!
//!     #[apply]
//!     fn apply(&mut self, event: &WalletEvent) {
//!         match event {
//!             WalletEvent::Deposited { amount } => self.balance += amount,
//!             WalletEvent::Withdrawn { amount } => self.balance -= amount,
//!         }
//!     }
//! }
//!
//! given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//!     .ask(Withdraw { amount: 700 })
//!     .then_expect_rejection(WalletError::InsufficientFunds { balance: 500, requested: 700 });
//! given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//!     .ask(Deposit { amount: 200 })
//!     .then_expect_events([WalletEvent::Deposited { amount: 200 }])
//!     .then_expect_reply(700);
//! given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//!     .ask(Balance)
//!     .then_expect_no_events()
//!     .then_expect_reply(500);
//! assert_eq!(WalletEvent::Withdrawn { amount: 1 }.event_type(), "wallet.withdrew");
//! ```
//!
//! ## What `#[aggregate]` generates from it
//!
//! Your impl block comes back unchanged but for the helper attributes, and
//! beside it:
//!
//! 1. **The sealed command enum** `WalletCommand`, one variant per declared
//!    command, named after the command type, and `Debug` (a refused `tell`
//!    hands the command back, so commands must be `Debug`). `tell` takes
//!    anything that converts into it, and only the declared commands do.
//! 2. **`From<Command>`** for each command, so `wallet.tell(Deposit { .. })`
//!    needs no wrapping.
//! 3. **`CommandOf<Wallet>`** for each command, sealed through a hidden
//!    supertrait: code outside the macro cannot make another type a command
//!    of `Wallet`.
//! 4. **`Handles<Command>`** for each `#[handle]` method, whose `Reply` is
//!    the one the method's `Effect<Self, Reply>` names: `ask(Deposit { .. })`
//!    returns an `i64`, `ask(Withdraw { .. })` returns `()`.
//! 5. **`Aggregate`**, with the declared name, event and error types, a
//!    `handle` that is a `match` with one arm per command and no wildcard,
//!    and an `apply` that calls your `#[apply]` method.
//! 6. **`RemoteCommands<NexusCodec>`**, how the commands cross the network
//!    in a cluster ([`remote`](crate::remote)): each command's wire tag is
//!    its variant name. It holds for every codec that encodes every command,
//!    reply and the error, so it asks nothing of an aggregate that stays in
//!    one process (these commands are not serde types, and compile); using
//!    the aggregate in a cluster does, and names the type to derive
//!    `Serialize`/`Deserialize` for.
//!
//! Every path is fully qualified (`::core::result::Result`,
//! `::nexus_core::Handles`), every impl is `#[automatically_derived]`, and
//! nothing is added to your namespace except `WalletCommand`. The macro
//! imposes the handler signature, so it also allows the pedantic clippy lints
//! that would ask you to change it (`unnecessary_wraps` on a query that
//! never fails, `unused_self`, `trivially_copy_pass_by_ref`).
//!
//! ```
//! # use nexus_core::testkit::given;
//! # use nexus_core::{DomainEvent, Effect};
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Default, Serialize, Deserialize)]
//! # pub struct Wallet {
//! #     balance: i64,
//! # }
//! #
//! # #[derive(Debug, PartialEq, thiserror::Error)]
//! # pub enum WalletError {
//! #     #[error("insufficient funds: the balance is {balance}, {requested} were requested")]
//! #     InsufficientFunds { balance: i64, requested: i64 },
//! # }
//! #
//! # /// Add cents; replies the new balance.
//! # #[derive(Debug)]
//! # pub struct Deposit {
//! #     pub amount: i64,
//! # }
//! #
//! # /// Take cents out; replies `()`.
//! # #[derive(Debug)]
//! # pub struct Withdraw {
//! #     pub amount: i64,
//! # }
//! #
//! # /// Read the balance.
//! # #[derive(Debug)]
//! # pub struct Balance;
//! # #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
//! # #[event(prefix = "wallet")]
//! # pub enum WalletEvent {
//! #     Deposited { amount: i64 },
//! #     #[event(name = "wallet.withdrew", version = 2)]
//! #     Withdrawn { amount: i64 },
//! # }
//!
//! impl Wallet {
//!     #[allow(
//!         clippy::unnecessary_wraps,
//!         clippy::unused_self,
//!         clippy::trivially_copy_pass_by_ref
//!     )]
//!     fn deposit(&self, command: &Deposit) -> Result<Effect<Self, i64>, WalletError> {
//!         Ok(Effect::persist(WalletEvent::Deposited {
//!             amount: command.amount,
//!         })
//!         .then_reply(|wallet: &Self| wallet.balance))
//!     }
//!
//!     #[allow(
//!         clippy::unnecessary_wraps,
//!         clippy::unused_self,
//!         clippy::trivially_copy_pass_by_ref
//!     )]
//!     fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, WalletError> {
//!         if command.amount > self.balance {
//!             return Err(WalletError::InsufficientFunds {
//!                 balance: self.balance,
//!                 requested: command.amount,
//!             });
//!         }
//!         Ok(Effect::persist(WalletEvent::Withdrawn {
//!             amount: command.amount,
//!         }))
//!     }
//!
//!     /// A read-only query: persists nothing, replies the balance.
//!     #[allow(
//!         clippy::unnecessary_wraps,
//!         clippy::unused_self,
//!         clippy::trivially_copy_pass_by_ref
//!     )]
//!     fn balance(&self, _: &Balance) -> Result<Effect<Self, i64>, WalletError> {
//!         Ok(Effect::none().then_reply(|wallet: &Self| wallet.balance))
//!     }
//!
//!     #[allow(clippy::trivially_copy_pass_by_ref)]
//!     fn apply(&mut self, event: &WalletEvent) {
//!         match event {
//!             WalletEvent::Deposited { amount } => self.balance += amount,
//!             WalletEvent::Withdrawn { amount } => self.balance -= amount,
//!         }
//!     }
//! }
//!
//! /// Every command of `Wallet`, one variant per type in its `#[aggregate(commands(...))]`.
//! ///
//! /// Sealed: it converts from exactly these commands (`From`), and the
//! /// aggregate's `handle` matches every variant, with no wildcard.
//! #[derive(::core::fmt::Debug)]
//! pub enum WalletCommand {
//!     /// A `Deposit` command.
//!     Deposit(Deposit),
//!     /// A `Withdraw` command.
//!     Withdraw(Withdraw),
//!     /// A `Balance` command.
//!     Balance(Balance),
//! }
//!
//! #[automatically_derived]
//! impl ::core::convert::From<Deposit> for WalletCommand {
//!     #[inline]
//!     fn from(command: Deposit) -> Self {
//!         Self::Deposit(command)
//!     }
//! }
//!
//! #[automatically_derived]
//! impl ::nexus_core::__private::Sealed<Wallet> for Deposit {}
//!
//! /// `Deposit` is a command of `Wallet`.
//! #[automatically_derived]
//! impl ::nexus_core::CommandOf<Wallet> for Deposit {}
//!
//! /// `Deposit` is handled by `Wallet::deposit`.
//! #[automatically_derived]
//! impl ::nexus_core::Handles<Deposit> for Wallet {
//!     type Reply = i64;
//!     #[inline]
//!     fn handle_command(
//!         &self,
//!         command: &Deposit,
//!     ) -> ::core::result::Result<
//!         ::nexus_core::Effect<Self, Self::Reply>,
//!         <Self as ::nexus_core::Aggregate>::Error,
//!     > {
//!         Self::deposit(self, command)
//!     }
//! }
//!
//! #[automatically_derived]
//! impl ::core::convert::From<Withdraw> for WalletCommand {
//!     #[inline]
//!     fn from(command: Withdraw) -> Self {
//!         Self::Withdraw(command)
//!     }
//! }
//!
//! #[automatically_derived]
//! impl ::nexus_core::__private::Sealed<Wallet> for Withdraw {}
//!
//! /// `Withdraw` is a command of `Wallet`.
//! #[automatically_derived]
//! impl ::nexus_core::CommandOf<Wallet> for Withdraw {}
//!
//! /// `Withdraw` is handled by `Wallet::withdraw`.
//! #[automatically_derived]
//! impl ::nexus_core::Handles<Withdraw> for Wallet {
//!     type Reply = ();
//!     #[inline]
//!     fn handle_command(
//!         &self,
//!         command: &Withdraw,
//!     ) -> ::core::result::Result<
//!         ::nexus_core::Effect<Self, Self::Reply>,
//!         <Self as ::nexus_core::Aggregate>::Error,
//!     > {
//!         Self::withdraw(self, command)
//!     }
//! }
//!
//! #[automatically_derived]
//! impl ::core::convert::From<Balance> for WalletCommand {
//!     #[inline]
//!     fn from(command: Balance) -> Self {
//!         Self::Balance(command)
//!     }
//! }
//!
//! #[automatically_derived]
//! impl ::nexus_core::__private::Sealed<Wallet> for Balance {}
//!
//! /// `Balance` is a command of `Wallet`.
//! #[automatically_derived]
//! impl ::nexus_core::CommandOf<Wallet> for Balance {}
//!
//! /// `Balance` is handled by `Wallet::balance`.
//! #[automatically_derived]
//! impl ::nexus_core::Handles<Balance> for Wallet {
//!     type Reply = i64;
//!     #[inline]
//!     fn handle_command(
//!         &self,
//!         command: &Balance,
//!     ) -> ::core::result::Result<
//!         ::nexus_core::Effect<Self, Self::Reply>,
//!         <Self as ::nexus_core::Aggregate>::Error,
//!     > {
//!         Self::balance(self, command)
//!     }
//! }
//!
//! /// `Wallet` as an aggregate: its stream category is `wallet`.
//! #[automatically_derived]
//! impl ::nexus_core::Aggregate for Wallet {
//!     const NAME: &'static str = "wallet";
//!     type Command = WalletCommand;
//!     type Event = WalletEvent;
//!     type Error = WalletError;
//!     fn handle(
//!         &self,
//!         command: &Self::Command,
//!     ) -> ::core::result::Result<::nexus_core::Effect<Self>, Self::Error> {
//!         match command {
//!             WalletCommand::Deposit(command) => {
//!                 <Self as ::nexus_core::Handles<Deposit>>::handle_command(self, command)
//!                     .map(::nexus_core::Effect::discard_reply)
//!             }
//!             WalletCommand::Withdraw(command) => {
//!                 <Self as ::nexus_core::Handles<Withdraw>>::handle_command(self, command)
//!                     .map(::nexus_core::Effect::discard_reply)
//!             }
//!             WalletCommand::Balance(command) => {
//!                 <Self as ::nexus_core::Handles<Balance>>::handle_command(self, command)
//!                     .map(::nexus_core::Effect::discard_reply)
//!             }
//!         }
//!     }
//!
//!     #[inline]
//!     fn apply(&mut self, event: &Self::Event) {
//!         Self::apply(self, event)
//!     }
//! }
//!
//! /// `Wallet`'s commands cross the wire with any codec that encodes all of them, their replies and the error: `Json` or `Bincode` when they are serde types.
//! #[automatically_derived]
//! impl<
//!     NexusCodec: ::nexus_core::codec::Codec,
//! > ::nexus_core::remote::RemoteCommands<NexusCodec> for Wallet
//! where
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<Deposit>,
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<
//!         <Wallet as ::nexus_core::Handles<Deposit>>::Reply,
//!     >,
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<Withdraw>,
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<
//!         <Wallet as ::nexus_core::Handles<Withdraw>>::Reply,
//!     >,
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<Balance>,
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<
//!         <Wallet as ::nexus_core::Handles<Balance>>::Reply,
//!     >,
//!     NexusCodec: ::nexus_core::codec::PayloadCodec<
//!         <Wallet as ::nexus_core::Aggregate>::Error,
//!     >,
//! {
//!     fn encode_command(
//!         codec: &NexusCodec,
//!         command: &(dyn ::core::any::Any + ::core::marker::Send),
//!     ) -> ::core::result::Result<
//!         ::nexus_core::remote::WireCommand,
//!         ::nexus_core::CodecError,
//!     > {
//!         ::core::option::Option::None
//!             .or_else(|| ::nexus_core::__private::remote::encode::<
//!                 NexusCodec,
//!                 Deposit,
//!             >(codec, "Deposit", command))
//!             .or_else(|| ::nexus_core::__private::remote::encode::<
//!                 NexusCodec,
//!                 Withdraw,
//!             >(codec, "Withdraw", command))
//!             .or_else(|| ::nexus_core::__private::remote::encode::<
//!                 NexusCodec,
//!                 Balance,
//!             >(codec, "Balance", command))
//!             .unwrap_or_else(|| ::core::result::Result::Err(
//!                 ::nexus_core::__private::remote::not_a_command::<
//!                     Self,
//!                 >(<NexusCodec as ::nexus_core::codec::Codec>::name(codec)),
//!             ))
//!     }
//!     fn serve<'a>(
//!         codec: &'a NexusCodec,
//!         wire: &'a ::nexus_core::remote::WireCommand,
//!         entity: &'a ::nexus_core::EntityRef<Self>,
//!         options: ::nexus_core::CommandOptions,
//!     ) -> ::nexus_core::__private::remote::Served<'a, Self> {
//!         match wire.tag.as_str() {
//!             "Deposit" => {
//!                 ::nexus_core::__private::remote::serve::<
//!                     Self,
//!                     Deposit,
//!                     NexusCodec,
//!                 >(codec, wire, entity, options)
//!             }
//!             "Withdraw" => {
//!                 ::nexus_core::__private::remote::serve::<
//!                     Self,
//!                     Withdraw,
//!                     NexusCodec,
//!                 >(codec, wire, entity, options)
//!             }
//!             "Balance" => {
//!                 ::nexus_core::__private::remote::serve::<
//!                     Self,
//!                     Balance,
//!                     NexusCodec,
//!                 >(codec, wire, entity, options)
//!             }
//!             _ => {
//!                 ::nexus_core::__private::remote::serve_unknown::<
//!                     Self,
//!                 >(<NexusCodec as ::nexus_core::codec::Codec>::name(codec), wire, entity)
//!             }
//!         }
//!     }
//!     fn decode_reply(
//!         codec: &NexusCodec,
//!         tag: &str,
//!         bytes: &[u8],
//!     ) -> ::core::result::Result<
//!         ::std::boxed::Box<dyn ::core::any::Any + ::core::marker::Send>,
//!         ::nexus_core::CodecError,
//!     > {
//!         match tag {
//!             "Deposit" => {
//!                 ::nexus_core::__private::remote::decode_reply::<
//!                     Self,
//!                     Deposit,
//!                     NexusCodec,
//!                 >(codec, tag, bytes)
//!             }
//!             "Withdraw" => {
//!                 ::nexus_core::__private::remote::decode_reply::<
//!                     Self,
//!                     Withdraw,
//!                     NexusCodec,
//!                 >(codec, tag, bytes)
//!             }
//!             "Balance" => {
//!                 ::nexus_core::__private::remote::decode_reply::<
//!                     Self,
//!                     Balance,
//!                     NexusCodec,
//!                 >(codec, tag, bytes)
//!             }
//!             _ => {
//!                 ::core::result::Result::Err(
//!                     ::nexus_core::__private::remote::unknown_tag::<
//!                         Self,
//!                     >(<NexusCodec as ::nexus_core::codec::Codec>::name(codec), tag),
//!                 )
//!             }
//!         }
//!     }
//!     fn error_to_wire(
//!         codec: &NexusCodec,
//!         error: ::nexus_core::EntityError<<Self as ::nexus_core::Aggregate>::Error>,
//!     ) -> ::nexus_core::remote::WireEntityError {
//!         ::nexus_core::remote::to_wire(error, codec)
//!     }
//!     fn error_from_wire(
//!         codec: &NexusCodec,
//!         wire: ::nexus_core::remote::WireEntityError,
//!     ) -> ::nexus_core::EntityError<<Self as ::nexus_core::Aggregate>::Error> {
//!         ::nexus_core::remote::from_wire(wire, codec)
//!     }
//! }
//!
//! # given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//! #     .ask(Withdraw { amount: 700 })
//! #     .then_expect_rejection(WalletError::InsufficientFunds { balance: 500, requested: 700 });
//! # given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//! #     .ask(Deposit { amount: 200 })
//! #     .then_expect_events([WalletEvent::Deposited { amount: 200 }])
//! #     .then_expect_reply(700);
//! # given::<Wallet>([WalletEvent::Deposited { amount: 500 }])
//! #     .ask(Balance)
//! #     .then_expect_no_events()
//! #     .then_expect_reply(500);
//! # assert_eq!(WalletEvent::Withdrawn { amount: 1 }.event_type(), "wallet.withdrew");
//! ```
//!
//! ## What `#[derive(DomainEvent)]` generates
//!
//! For the `WalletEvent` above: the names every stored event carries, the
//! name of each variant and its schema version (1 unless the variant says
//! otherwise). A variant's name is its identifier in snake case after the
//! enum's `prefix`; `#[event(name = "...")]` overrides it, and
//! `#[event(require_names)]` on the enum makes the explicit name mandatory,
//! so renaming a variant can never rename the events already stored.
//!
//! ```
//! # use nexus_core::DomainEvent;
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! # pub enum WalletEvent {
//! #     Deposited { amount: i64 },
//! #     Withdrawn { amount: i64 },
//! # }
//! #
//! /// Stored names and schema versions of `WalletEvent`'s variants.
//! #[automatically_derived]
//! impl ::nexus_core::DomainEvent for WalletEvent {
//!     const EVENT_TYPES: &'static [&'static str] = &["wallet.deposited", "wallet.withdrew"];
//!     fn event_type(&self) -> &'static str {
//!         match *self {
//!             Self::Deposited { .. } => "wallet.deposited",
//!             Self::Withdrawn { .. } => "wallet.withdrew",
//!         }
//!     }
//!
//!     fn schema_version_of(event_type: &str) -> u32 {
//!         match event_type {
//!             "wallet.deposited" => 1,
//!             "wallet.withdrew" => 2,
//!             _ => 1,
//!         }
//!     }
//! }
//! #
//! # assert_eq!(WalletEvent::EVENT_TYPES, ["wallet.deposited", "wallet.withdrew"]);
//! # assert_eq!(WalletEvent::schema_version_of("wallet.withdrew"), 2);
//! ```
//!
//! ## Mistakes are compile errors
//!
//! Each one points at your code and says what to write instead (the
//! `nexus-macros/tests/ui` files hold the exact messages):
//!
//! * asking an entity of `Wallet` with a command of another aggregate:
//!   ``Wallet` has no handler for the command `Reserve` ``;
//! * a declared command without a handler (the message spells out the
//!   method to add), a handler for an undeclared command, two handlers for
//!   one command, a command that is not `Debug`;
//! * a handler that takes `&mut self` or `self`, takes the command by value,
//!   is `async`, takes extra arguments, or does not return
//!   `Result<Effect<Self, Reply>, Error>`; a handler that rejects with
//!   another error type than `error = ...`;
//! * no `#[apply]`, or one that takes `&self` or returns something;
//! * unknown, missing or repeated keys; `#[aggregate]` on a struct, a trait
//!   impl or a generic impl;
//! * an event variant without a name under `require_names`, two variants
//!   with one name, version 0, `#[derive(DomainEvent)]` on a struct.
//!
//! ## Keys
//!
//! `#[aggregate(name = "...", event = Type, error = Type, commands(Type, ...), vis = pub(crate))]`:
//!
//! * `name` is the category of the aggregate's streams and is stored in
//!   every stream id, so it is written out rather than derived from the type
//!   name;
//! * `commands(...)` is the protocol, declared once: each type in it gets a
//!   variant, a `From`, a `CommandOf` and needs exactly one `#[handle]`;
//! * `vis` is the command enum's visibility, `pub` by default; write
//!   `vis = pub(crate)` when the commands are crate-private, or rustc warns
//!   that they are less visible than the enum.
//!
//! Inside the block, `#[handle]` marks
//! `fn(&self, &Command) -> Result<Effect<Self, Reply>, Error>` and `#[apply]`
//! marks `fn(&mut self, &Event)`; other methods are left alone.

#[cfg(feature = "cluster")]
pub mod cluster;
pub mod ownership;
