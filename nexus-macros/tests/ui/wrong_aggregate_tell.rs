// Telling an entity of `Seat` a command of `Wallet`.
use nexus_core::EntityRef;

mod support;
use support::*;

async fn book_with_money(seat: &EntityRef<Seat>) {
    let _ = seat.tell(Deposit(5)).await;
}

fn main() {}
