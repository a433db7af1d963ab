//! Helpers shared by the cross-crate integration tests.

pub mod deposits;
pub mod history;
mod outage;
pub mod stock_item;
pub mod throwaway_pg;
pub mod wallet_process;

pub use outage::Outage;
pub use throwaway_pg::ThrowawayPostgres;
