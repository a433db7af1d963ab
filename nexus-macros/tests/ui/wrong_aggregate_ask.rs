// Sending a command of one aggregate (`Reserve`, of `Seat`) to another (`Wallet`),
// through the runtime and through the test kit.
use nexus_core::testkit::given;
use nexus_core::{Effect, EntityRef, aggregate};

mod support;
use support::*;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit, Withdraw))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[handle]
    fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(-command.0)))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

async fn pay_for_a_seat(wallet: &EntityRef<Wallet>) {
    let _ = wallet.ask(Reserve("alice".into())).await;
}

fn in_a_domain_test() {
    given::<Wallet>([]).ask(Reserve("alice".into()));
}

fn main() {}
