// An aggregate name with `-` could share stream ids with another aggregate.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[aggregate(name = "stock-a", event = WalletEvent, error = WalletError, commands(Deposit))]
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
