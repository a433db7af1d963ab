// A declared command that does not implement `Debug`.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

struct Close;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit, Close))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[handle]
    fn close(&self, _: &Close) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::stop())
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
