//! A tiny aggregate for the documentation examples. Not part of the API.
#![allow(missing_docs)]

use serde::{Deserialize, Serialize};

use std::any::Any;

use crate::__private::remote::{self, Served};
use crate::codec::{Codec, PayloadCodec};
use crate::remote::{RemoteCommands, WireCommand, WireEntityError};
use crate::{
    Aggregate, CodecError, CommandOptions, DomainEvent, Effect, EntityError, EntityRef, Handles,
};

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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Add(pub u64);

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
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

// What `#[aggregate]` generates, written out for this hand-made aggregate.
impl<W: Codec> RemoteCommands<W> for Counter
where
    W: PayloadCodec<Add> + PayloadCodec<Get> + PayloadCodec<u64> + PayloadCodec<AddZero>,
{
    fn encode_command(codec: &W, command: &(dyn Any + Send)) -> Result<WireCommand, CodecError> {
        remote::encode::<W, Add>(codec, "Add", command)
            .or_else(|| remote::encode::<W, Get>(codec, "Get", command))
            .unwrap_or_else(|| Err(remote::not_a_command::<Self>(Codec::name(codec))))
    }

    fn serve<'a>(
        codec: &'a W,
        wire: &'a WireCommand,
        entity: &'a EntityRef<Self>,
        options: CommandOptions,
    ) -> Served<'a, Self> {
        match wire.tag.as_str() {
            "Add" => remote::serve::<Self, Add, W>(codec, wire, entity, options),
            "Get" => remote::serve::<Self, Get, W>(codec, wire, entity, options),
            _ => remote::serve_unknown::<Self>(Codec::name(codec), wire, entity),
        }
    }

    fn decode_reply(codec: &W, tag: &str, bytes: &[u8]) -> Result<Box<dyn Any + Send>, CodecError> {
        match tag {
            "Add" => remote::decode_reply::<Self, Add, W>(codec, tag, bytes),
            "Get" => remote::decode_reply::<Self, Get, W>(codec, tag, bytes),
            _ => Err(remote::unknown_tag::<Self>(Codec::name(codec), tag)),
        }
    }

    fn error_to_wire(codec: &W, error: EntityError<AddZero>) -> WireEntityError {
        crate::remote::to_wire(error, codec)
    }

    fn error_from_wire(codec: &W, wire: WireEntityError) -> EntityError<AddZero> {
        crate::remote::from_wire(wire, codec)
    }
}
