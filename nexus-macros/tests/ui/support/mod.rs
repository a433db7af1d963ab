//! The domain the UI tests misuse the macros on: a wallet's state, events,
//! error and commands, and a correct seat aggregate to send commands of.
#![allow(dead_code)]

use nexus_core::{DomainEvent, Effect, aggregate};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
pub enum WalletEvent {
    Deposited(i64),
}

#[derive(Debug, thiserror::Error)]
#[error("rejected")]
pub struct WalletError;

#[derive(Default)]
pub struct Wallet {
    pub balance: i64,
}

impl Wallet {
    /// What every test's `#[apply]` does.
    pub fn record(&mut self, event: &WalletEvent) {
        let WalletEvent::Deposited(amount) = event;
        self.balance += amount;
    }
}

#[derive(Debug)]
pub struct Deposit(pub i64);
#[derive(Debug)]
pub struct Withdraw(pub i64);
#[derive(Debug)]
pub struct Refund(pub i64);

#[derive(Clone, Serialize, Deserialize, DomainEvent)]
pub enum SeatEvent {
    Reserved(String),
}

#[derive(Default)]
pub struct Seat {
    holder: Option<String>,
}

#[derive(Debug)]
pub struct Reserve(pub String);

#[aggregate(name = "seat", event = SeatEvent, error = WalletError, commands(Reserve))]
impl Seat {
    #[handle]
    fn reserve(&self, command: &Reserve) -> Result<Effect<Self>, WalletError> {
        Ok(Effect::persist(SeatEvent::Reserved(command.0.clone())))
    }

    #[apply]
    fn apply(&mut self, event: &SeatEvent) {
        let SeatEvent::Reserved(buyer) = event;
        self.holder = Some(buyer.clone());
    }
}
