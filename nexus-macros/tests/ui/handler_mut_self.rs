// A handler that tries to change the state instead of returning events.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl Wallet {
    #[handle]
    fn deposit(&mut self, command: &Deposit) -> Result<Effect<Self>, WalletError> {
        self.balance += command.0;
        Ok(Effect::none())
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

// The stub handler keeps this use from failing a second time.
fn deposit(wallet: &Wallet) {
    let _ = nexus_core::Handles::<Deposit>::handle_command(wallet, &Deposit(1));
}

fn main() {}
