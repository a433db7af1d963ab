//! The programs users run first, and the domain examples they are built on.
//!
//! - [`wallet_app`]: the wallet HTTP app (`--bin wallet-app`): an
//!   event-sourced wallet and a durable-state ledger per owner.
//! - [`bakeoff`]: the seat-reservation bake-off (`--bin seat-bakeoff`):
//!   optimistic version column against one actor per seat.
//! - [`bench`](mod@bench): the JSON-emitting benchmark (`--bin nexus-bench`).
//! - [`plot`]: latency CDFs as SVG, for `--plot` of both programs.
//! - [`domain`]: the wallet, seat and order aggregates, written with the macros.
pub mod bakeoff;
pub mod bench;
pub mod domain;
pub mod plot;
pub mod wallet_app;
