// A handler that rejects with another error type than the aggregate declares.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, String> {
        if command.0 <= 0 {
            return Err(format!("cannot deposit {}", command.0));
        }
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
