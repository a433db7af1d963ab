// Two events with one stored name: a derived one and an explicit one.
use nexus_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "wallet")]
enum WalletEvent {
    Deposited { amount: i64 },
    #[event(name = "wallet.deposited", version = 2)]
    Refunded { amount: i64 },
}

fn main() {}
