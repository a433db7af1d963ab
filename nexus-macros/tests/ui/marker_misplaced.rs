// `#[handle]` on a constant, and `#[handle]` with arguments.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl Wallet {
    #[handle]
    const LIMIT: i64 = 1_000;

    #[handle(Deposit)]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0.min(Self::LIMIT))))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
