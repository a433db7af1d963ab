// An aggregate used in a cluster whose command `Close` is not a serde type.
use nexus_core::codec::Json;
use nexus_core::{Effect, aggregate};
use serde::{Deserialize, Serialize};

mod support;
use support::{WalletEvent};

#[derive(Default)]
struct Account;

#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[error("closed")]
struct Closed;

#[derive(Debug, Serialize, Deserialize)]
struct Open;

#[derive(Debug)]
struct Close;

#[aggregate(name = "account", event = WalletEvent, error = Closed, commands(Open, Close))]
impl Account {
    #[handle]
    fn open(&self, _: &Open) -> Result<Effect<Self>, Closed> {
        Ok(Effect::none())
    }

    #[handle]
    fn close(&self, _: &Close) -> Result<Effect<Self>, Closed> {
        Ok(Effect::none())
    }

    #[apply]
    fn apply(&mut self, _: &WalletEvent) {}
}

fn main() {
    // What a cluster's builder requires of the aggregates it serves.
    nexus_core::remote::assert_remote::<Account, Json>();
}
