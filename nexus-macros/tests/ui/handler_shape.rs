// Handlers that take the command by value, are async, or take extra arguments.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[derive(Debug)]
struct Audit;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit, Withdraw, Audit))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: Deposit) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[handle]
    async fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(-command.0)))
    }

    #[handle]
    fn audit(&self, _: &Audit, verbose: bool) -> Result<Effect<Self, bool>, WalletError> {
        Ok(Effect::none().then_reply(move |_: &Self| verbose))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
