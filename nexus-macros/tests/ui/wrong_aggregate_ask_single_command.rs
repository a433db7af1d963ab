// A wrong-aggregate send to an aggregate with a single command (`Seat`):
// rustc infers that command and reports the mismatch of the two command types,
// for `ask` and `tell` alike.
use nexus_core::EntityRef;

mod support;
use support::*;

async fn book_with_money(seat: &EntityRef<Seat>) {
    let _ = seat.ask(Deposit(5)).await;
    let _ = seat.tell(Deposit(6)).await;
}

fn main() {}
