// `#[aggregate]` on an impl of a trait.
use nexus_core::aggregate;

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl Clone for Wallet {
    fn clone(&self) -> Self {
        Self { balance: self.balance }
    }
}

fn main() {}
