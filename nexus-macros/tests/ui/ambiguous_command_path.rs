// Two commands share the last segment `Ship`; a handler names the bare `Ship`
// (imported from one of the two modules), which could be either.
use nexus_core::{Effect, aggregate};

mod support;
use support::*;

mod inbound {
    #[derive(Debug)]
    pub struct Ship(pub i64);
}

mod outbound {
    #[derive(Debug)]
    pub struct Ship(pub i64);
}

use inbound::Ship;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(inbound::Ship, outbound::Ship))]
impl Wallet {
    #[handle]
    fn receive(&self, command: &Ship) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(command.0)))
    }

    #[handle]
    fn send(&self, command: &outbound::Ship) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(WalletEvent::Deposited(-command.0)))
    }

    #[apply]
    fn apply(&mut self, event: &WalletEvent) {
        self.record(event);
    }
}

fn main() {}
