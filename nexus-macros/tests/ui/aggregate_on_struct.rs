// `#[aggregate]` on the state struct instead of its impl block.
use nexus_core::aggregate;

#[aggregate(name = "wallet", event = WalletEvent, error = WalletError, commands(Deposit))]
#[derive(Default)]
struct Wallet {
    balance: i64,
}

// The struct is still there: this use does not fail a second time.
fn balance() -> i64 {
    Wallet::default().balance
}

fn main() {}
