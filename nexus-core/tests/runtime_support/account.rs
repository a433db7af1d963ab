//! An account: deposits that reply the new balance, and commands that
//! misbehave on purpose.

use std::sync::{Arc, Mutex};

use nexus_core::{Aggregate, DomainEvent, Effect, Handles};
use serde::{Deserialize, Serialize};

#[derive(Default, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub balance: u64,
    pub deposits: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    Deposited(u64),
    /// `apply` panics on it, so it never reaches a store.
    Cursed,
    /// JSON cannot encode a map with non-string keys.
    Unencodable(std::collections::BTreeMap<(u8, u8), u8>),
}

impl DomainEvent for AccountEvent {
    const EVENT_TYPES: &'static [&'static str] =
        &["account.deposited", "account.cursed", "account.unencodable"];
    fn event_type(&self) -> &'static str {
        match self {
            Self::Deposited(_) => "account.deposited",
            Self::Cursed => "account.cursed",
            Self::Unencodable(_) => "account.unencodable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("cannot deposit zero")]
    Zero,
}

/// Deposits an amount; replies the balance after it.
#[derive(Debug, Clone)]
pub struct Deposit(pub u64);
/// Replies the balance; writes nothing.
#[derive(Debug, Clone)]
pub struct Balance;
/// The handler panics.
#[derive(Debug, Clone)]
pub struct Boom;
/// Persists an event whose `apply` panics.
#[derive(Debug, Clone)]
pub struct Curse;
/// Deposits, then persists an event the codec cannot encode.
#[derive(Debug, Clone)]
pub struct DepositUnencodable(pub u64);
/// Stops the entity after replying the balance.
#[derive(Debug, Clone)]
pub struct Retire;
/// Deposits, and records the balance in `sink` as a side effect.
#[derive(Debug, Clone)]
pub struct DepositAndNotify(pub u64, pub Arc<Mutex<Vec<u64>>>);
/// Deposits; the probe records which thread drops the command.
#[derive(Debug)]
pub struct DepositProbed(pub u64, pub DropProbe);

/// Records the thread that drops it.
#[derive(Debug, Default)]
pub struct DropProbe(pub Arc<Mutex<Option<std::thread::ThreadId>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        *self.0.lock().unwrap() = Some(std::thread::current().id());
    }
}

#[derive(Debug)]
pub enum AccountCommand {
    Deposit(Deposit),
    Balance(Balance),
    Boom(Boom),
    Curse(Curse),
    Retire(Retire),
    DepositAndNotify(DepositAndNotify),
    DepositUnencodable(DepositUnencodable),
    DepositProbed(DepositProbed),
}

macro_rules! commands {
    ($($name:ident),*) => {$(
        impl From<$name> for AccountCommand {
            fn from(command: $name) -> Self {
                Self::$name(command)
            }
        }
    )*};
}
commands!(
    Deposit,
    Balance,
    Boom,
    Curse,
    Retire,
    DepositAndNotify,
    DepositUnencodable,
    DepositProbed
);

fn balance(state: &Account) -> u64 {
    state.balance
}

impl Handles<Deposit> for Account {
    type Reply = u64;
    fn handle_command(&self, command: &Deposit) -> Result<Effect<Self, u64>, AccountError> {
        if command.0 == 0 {
            return Err(AccountError::Zero);
        }
        Ok(Effect::persist(AccountEvent::Deposited(command.0)).then_reply(balance))
    }
}

impl Handles<Balance> for Account {
    type Reply = u64;
    fn handle_command(&self, _: &Balance) -> Result<Effect<Self, u64>, AccountError> {
        Ok(Effect::none().then_reply(balance))
    }
}

impl Handles<Boom> for Account {
    type Reply = ();
    fn handle_command(&self, _: &Boom) -> Result<Effect<Self, ()>, AccountError> {
        panic!("boom at balance {}", self.balance)
    }
}

impl Handles<Curse> for Account {
    type Reply = ();
    fn handle_command(&self, _: &Curse) -> Result<Effect<Self, ()>, AccountError> {
        Ok(Effect::persist(AccountEvent::Cursed))
    }
}

impl Handles<Retire> for Account {
    type Reply = u64;
    fn handle_command(&self, _: &Retire) -> Result<Effect<Self, u64>, AccountError> {
        Ok(Effect::stop().then_reply(balance))
    }
}

impl Handles<DepositAndNotify> for Account {
    type Reply = u64;
    fn handle_command(
        &self,
        command: &DepositAndNotify,
    ) -> Result<Effect<Self, u64>, AccountError> {
        let sink = Arc::clone(&command.1);
        Ok(Effect::persist(AccountEvent::Deposited(command.0))
            .then_run(move |state: &Account| sink.lock().unwrap().push(state.balance))
            .then_reply(balance))
    }
}

impl Handles<DepositProbed> for Account {
    type Reply = u64;
    fn handle_command(&self, command: &DepositProbed) -> Result<Effect<Self, u64>, AccountError> {
        self.handle_command(&Deposit(command.0))
    }
}

impl Handles<DepositUnencodable> for Account {
    type Reply = u64;
    fn handle_command(
        &self,
        command: &DepositUnencodable,
    ) -> Result<Effect<Self, u64>, AccountError> {
        let odd = std::collections::BTreeMap::from([((1, 2), 3)]);
        Ok(Effect::persist_all(vec![
            AccountEvent::Deposited(command.0),
            AccountEvent::Unencodable(odd),
        ])
        .then_reply(balance))
    }
}

impl Aggregate for Account {
    const NAME: &'static str = "account";
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn handle(&self, command: &AccountCommand) -> Result<Effect<Self>, AccountError> {
        match command {
            AccountCommand::Deposit(c) => self.handle_command(c).map(Effect::discard_reply),
            AccountCommand::Balance(c) => self.handle_command(c).map(Effect::discard_reply),
            AccountCommand::Boom(c) => self.handle_command(c).map(Effect::discard_reply),
            AccountCommand::Curse(c) => self.handle_command(c).map(Effect::discard_reply),
            AccountCommand::Retire(c) => self.handle_command(c).map(Effect::discard_reply),
            AccountCommand::DepositAndNotify(c) => {
                self.handle_command(c).map(Effect::discard_reply)
            }
            AccountCommand::DepositUnencodable(c) => {
                self.handle_command(c).map(Effect::discard_reply)
            }
            AccountCommand::DepositProbed(c) => self.handle_command(c).map(Effect::discard_reply),
        }
    }

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited(amount) => {
                self.balance += amount;
                self.deposits += 1;
            }
            AccountEvent::Cursed => panic!("cursed event applied"),
            AccountEvent::Unencodable(_) => {}
        }
    }
}
