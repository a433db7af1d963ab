//! Three small domains written with the macros, each with its domain tests:
//! a [`wallet`] in integer cents, a [`seat`] that one buyer holds at a time,
//! and an [`order`] that moves through a small state machine.
//! [`wallet_format`] is how wallet events are stored, old shapes included.
//!
//! States and events derive `Serialize`/`Deserialize`, so the same types serve
//! event sourcing, snapshots and durable state.

pub mod order;
pub mod seat;
pub mod wallet;
pub mod wallet_format;
