// `#[aggregate]` on a generic impl block.
use nexus_core::aggregate;

#[derive(Default)]
struct Wallet<C> {
    balance: C,
}

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
impl<C> Wallet<C> {}

fn main() {}
