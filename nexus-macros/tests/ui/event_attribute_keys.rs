// A misspelt key, a key in the wrong place, and version 0.
use nexus_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
#[event(prefx = "wallet")]
enum WalletEvent {
    #[event(prefix = "wallet")]
    Deposited { amount: i64 },
    #[event(version = 0)]
    Withdrawn { amount: i64 },
}

fn main() {}
