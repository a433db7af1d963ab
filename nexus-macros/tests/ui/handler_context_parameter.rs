// Handlers whose third parameter is not `context: &CommandContext`: the
// context by value, by `&mut`, something else, and a fourth parameter.
use nexus_core::{CommandContext, Effect, aggregate};

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit, Withdraw, Refund, Reserve))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit, context: CommandContext) -> Result<Effect<Self>, WalletError> {
        let _ = context;
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[handle]
    fn withdraw(&self, command: &Withdraw, context: &mut CommandContext) -> Result<Effect<Self>, WalletError> {
        let _ = context;
        Ok(Effect::persist(WalletEvent::Deposited(-command.0)))
    }

    #[handle]
    fn refund(&self, command: &Refund, version: u64) -> Result<Effect<Self>, WalletError> {
        let _ = version;
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[handle]
    fn reserve(&self, _: &Reserve, context: &CommandContext, holder: &str) -> Result<Effect<Self>, WalletError> {
        let _ = (context, holder);
        Ok(Effect::none())
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
