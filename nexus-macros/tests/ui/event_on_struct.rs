// `#[derive(DomainEvent)]` on a struct.
use nexus_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
struct Deposited {
    amount: i64,
}

// The stub impl keeps this use from failing a second time.
fn stored_name(event: &Deposited) -> &'static str {
    event.event_type()
}

fn main() {}
