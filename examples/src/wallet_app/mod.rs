//! The wallet HTTP app: `cargo run --release -p nexus-examples --bin wallet-app`.
//!
//! The same money two ways, as in Nexus PHP's wallet tutorial: `/wallet/*` is
//! an event-sourced [`Wallet`](crate::domain::wallet::Wallet) entity per
//! owner, `/wallet/ledger*` a durable-state [`ledger::Ledger`] entity per
//! owner, `/admin/wallets` ranks the ledgers with plain SQL, and
//! `/admin/balances` ranks the wallets from a projection of their events
//! ([`Balances`]). Without a database URL it runs on the in-memory stores.
//!
//! The read side: every wallet write answers with its `"position"` in the
//! global log (an opaque [`PositionToken`](nexus_core::projection::PositionToken)),
//! and `GET /admin/balances?after=POSITION` waits, bounded, until the
//! projection has passed it (else 503 with `Retry-After`), so a client reads
//! its own write. With `--redis-url` the ledgers are written through to a
//! shared Redis after each commit and `GET /wallet/ledger` reads from it
//! (`x-read-from: cache|store`), never older than the store, falling back
//! to the store when Redis is unreachable. With `--admin-token` the
//! `/admin/*` endpoints require `Authorization: Bearer TOKEN`.
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
mod balances;
mod body;
mod config;
mod error;
pub mod idempotency;
pub mod ledger;
mod routes;
mod server;
pub mod telemetry;

pub use admin::Ranked;
pub use auth::{Owner, admin_authorized};
pub use backend::{Backend, LedgerReads, SharedStates, StartError, Wired};
pub use balances::{Balance, Balances};
pub use config::Config;
pub use error::ApiError;
pub use routes::{AppState, router};
pub use server::{cli_main, serve, termination};
