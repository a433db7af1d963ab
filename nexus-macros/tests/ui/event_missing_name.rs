// An event without a stored name where the enum requires one.
use nexus_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
#[event(require_names)]
enum WalletEvent {
    #[event(name = "wallet.deposited")]
    Deposited { amount: i64 },
    Withdrawn { amount: i64 },
}

fn main() {}
