//! A tiny aggregate for the documentation examples. Not part of the API.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};

use crate::{Aggregate, DomainEvent, Effect, Handles};

#[derive(Default, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub value: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum CounterEvent {
    Added(u64),
}

impl DomainEvent for CounterEvent {
    const EVENT_TYPES: &'static [&'static str] = &["counter.added"];
    fn event_type(&self) -> &'static str {
        "counter.added"
    }
}

#[derive(Debug, Clone)]
pub struct Add(pub u64);

#[derive(Debug, Clone)]
pub struct Get;

#[derive(Debug, Clone)]
pub enum CounterCommand {
    Add(Add),
    Get(Get),
}

impl From<Add> for CounterCommand {
    fn from(c: Add) -> Self {
        Self::Add(c)
    }
}

impl From<Get> for CounterCommand {
    fn from(c: Get) -> Self {
        Self::Get(c)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot add zero")]
pub struct AddZero;

impl Handles<Add> for Counter {
    type Reply = u64;
    fn handle_command(&self, command: &Add) -> Result<Effect<Self, u64>, AddZero> {
        if command.0 == 0 {
            return Err(AddZero);
        }
        Ok(Effect::persist(CounterEvent::Added(command.0)).then_reply(|s: &Counter| s.value))
    }
}

impl Handles<Get> for Counter {
    type Reply = u64;
    fn handle_command(&self, _: &Get) -> Result<Effect<Self, u64>, AddZero> {
        Ok(Effect::none().then_reply(|s: &Counter| s.value))
    }
}

impl Aggregate for Counter {
    const NAME: &'static str = "counter";
    type Command = CounterCommand;
    type Event = CounterEvent;
    type Error = AddZero;

    fn handle(&self, command: &CounterCommand) -> Result<Effect<Self>, AddZero> {
        match command {
            CounterCommand::Add(c) => self.handle_command(c).map(Effect::discard_reply),
            CounterCommand::Get(c) => self.handle_command(c).map(Effect::discard_reply),
        }
    }

    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added(n) => self.value += n,
        }
    }
}
