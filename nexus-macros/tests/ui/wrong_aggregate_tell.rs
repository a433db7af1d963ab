// Telling an entity of `Wallet` a command of `Seat` (`Reserve`): the message
// speaks of the command, as for `ask`, and is printed once. Self-contained
// (no `support`) so the message names the types as a user's crate would. (To
// an aggregate with a single command, rustc infers that command instead: see
// `wrong_aggregate_ask_single_command.rs`.)
use nexus_core::{DomainEvent, Effect, EntityRef, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
enum Event {
    Moved(i64),
}

#[derive(Debug, thiserror::Error)]
#[error("rejected")]
struct Rejected;

#[derive(Debug)]
struct Deposit(i64);
#[derive(Debug)]
struct Withdraw(i64);
#[derive(Debug)]
struct Reserve(i64);

#[derive(Default)]
struct Wallet;

#[aggregate(name = "wallet", event = Event, error = Rejected, commands(Deposit, Withdraw))]
impl Wallet {
    #[handle]
    fn deposit(&self, command: &Deposit) -> Result<Effect<Self>, Rejected> {
        Ok(Effect::persist(Event::Moved(command.0)))
    }

    #[handle]
    fn withdraw(&self, command: &Withdraw) -> Result<Effect<Self>, Rejected> {
        Ok(Effect::persist(Event::Moved(-command.0)))
    }

    #[apply]
    fn apply(&mut self, _: &Event) {}
}

#[derive(Default)]
struct Seat;

#[aggregate(name = "seat", event = Event, error = Rejected, commands(Reserve))]
impl Seat {
    #[handle]
    fn reserve(&self, command: &Reserve) -> Result<Effect<Self>, Rejected> {
        Ok(Effect::persist(Event::Moved(command.0)))
    }

    #[apply]
    fn apply(&mut self, _: &Event) {}
}

async fn pay_for_a_seat_later(wallet: &EntityRef<Wallet>) {
    let _ = wallet.tell(Reserve(7)).await;
}

fn main() {}
