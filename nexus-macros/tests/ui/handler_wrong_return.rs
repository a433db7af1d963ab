// A handler that returns the reply itself instead of an effect.
use nexus_core::aggregate;

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<i64, WalletError> {
        Ok(self.balance + command.0)
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
