// A misspelt key, a missing name and a repeated command.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[aggregate(event = WalletEvent, eror = WalletError, commands(Deposit, Deposit))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
