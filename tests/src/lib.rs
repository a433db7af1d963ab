//! Helpers shared by the cross-crate integration tests.

mod outage;

pub use outage::Outage;
