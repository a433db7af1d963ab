// An `#[apply]` that cannot change the state, and one that can fail.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[apply]
    fn apply(&self, event: &WalletEvent) -> Result<(), WalletError> {
        let WalletEvent::Deposited(_) = event;
        Ok(())
    }
}

fn main() {}
