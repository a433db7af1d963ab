//! The wallet HTTP app: `cargo run --release -p nexus-examples --bin wallet-app`.
//!
//! The same money two ways, as in Nexus PHP's wallet tutorial: `/wallet/*` is
//! an event-sourced [`Wallet`](crate::domain::wallet::Wallet) entity per
//! owner, `/wallet/ledger*` a durable-state [`ledger::Ledger`] entity per
//! owner, and `/admin/wallets` ranks the ledgers with plain SQL. Without a
//! database URL it runs on the in-memory stores.
//!
//! Every answer is JSON. Bad input is 400/415/422 and writes nothing; a full
//! mailbox, an exhausted pool, an unreachable database or a shutdown in
//! progress is 503 with `Retry-After: 1`. A 200 is sent only after the write
//! committed, so `kill -9` loses no acknowledged write. A wallet write sent
//! with an `Idempotency-Key` header is applied once however often it is
//! retried, and answered the same ([`idempotency`]).

mod admin;
mod auth;
mod backend;
mod body;
mod config;
mod error;
pub mod idempotency;
pub mod ledger;
mod routes;
mod server;
pub mod telemetry;

pub use admin::Ranked;
pub use auth::Owner;
pub use backend::{Backend, StartError};
pub use config::Config;
pub use error::ApiError;
pub use routes::{AppState, router};
pub use server::{cli_main, serve, termination};
