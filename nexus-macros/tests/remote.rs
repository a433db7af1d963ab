//! The `RemoteCommands` impl `#[aggregate]` generates: commands given by
//! path and commands sharing a last path segment cross the wire under their
//! variant names, are served by the entity and answer their own typed
//! replies and rejections, with JSON and with bincode.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{Bincode, Codec, EventCodec, Json, PayloadCodec};
use nexus_core::remote::{RemoteCommands, WireAnswer, assert_remote};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::{
    ActorSystem, CommandOptions, DomainEvent, Effect, Entities, EntityError, EntityRef, Handles,
    aggregate,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default)]
struct Dock {
    crates: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "dock")]
enum DockEvent {
    Unloaded,
    Loaded,
}

#[derive(Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("only {left} crates left")]
struct NotEnough {
    left: u32,
}

mod inbound {
    /// A ship bringing this many crates.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub struct Ship(pub u32);
}

mod outbound {
    /// A ship taking this many crates away.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub struct Ship(pub u32);
}

mod query {
    /// How many crates are in the dock.
    #[derive(Debug, serde::Serialize, serde::Deserialize)]
    pub struct Count;
}

/// What an unload leaves.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unloaded {
    crates: u32,
}

#[aggregate(
    name = "dock",
    event = DockEvent,
    error = NotEnough,
    commands(inbound::Ship, outbound::Ship, query::Count)
)]
impl Dock {
    #[handle]
    fn unload(
        &self,
        inbound::Ship(crates): &inbound::Ship,
    ) -> Result<Effect<Self, Unloaded>, NotEnough> {
        let events = (0..*crates).map(|_| DockEvent::Unloaded).collect();
        Ok(
            Effect::persist_all(events).then_reply(|dock: &Self| Unloaded {
                crates: dock.crates,
            }),
        )
    }

    #[handle]
    fn load(
        &self,
        outbound::Ship(crates): &outbound::Ship,
    ) -> Result<Effect<Self, u32>, NotEnough> {
        if *crates > self.crates {
            return Err(NotEnough { left: self.crates });
        }
        let events = (0..*crates).map(|_| DockEvent::Loaded).collect();
        Ok(Effect::persist_all(events).then_reply(|dock: &Self| dock.crates))
    }

    #[handle]
    fn count(&self, _: &query::Count) -> Result<Effect<Self, u32>, NotEnough> {
        Ok(Effect::none().then_reply(|dock: &Self| dock.crates))
    }

    #[apply]
    fn apply(&mut self, event: &DockEvent) {
        match event {
            DockEvent::Unloaded => self.crates += 1,
            DockEvent::Loaded => self.crates -= 1,
        }
    }
}

/// `command` as a caller on another node sends it: encoded, served by
/// `entity`, the answer through its bytes, the reply decoded and downcast.
async fn remote_ask<C, W>(
    codec: &W,
    entity: &EntityRef<Dock>,
    command: C,
) -> Result<<Dock as Handles<C>>::Reply, EntityError<NotEnough>>
where
    C: Send + 'static,
    Dock: Handles<C> + RemoteCommands<W>,
    W: Codec + PayloadCodec<NotEnough>,
{
    let wire = Dock::encode_command(codec, &command).unwrap();
    let served = Dock::serve(codec, &wire, entity, CommandOptions::new()).await;
    let bytes = WireAnswer::from_result(served, codec).to_bytes().unwrap();
    let outcome = WireAnswer::from_bytes(&bytes).unwrap().into_result(codec)?;
    let reply = Dock::decode_reply(codec, &wire.tag, &outcome.reply).unwrap();
    Ok(*reply.downcast::<<Dock as Handles<C>>::Reply>().unwrap())
}

async fn commands_cross_the_wire_with<W>(codec: W)
where
    W: Codec + PayloadCodec<NotEnough>,
    Dock: RemoteCommands<W>,
{
    assert_remote::<Dock, W>();
    // The tag is the command enum's variant name.
    let tag =
        |command: &(dyn std::any::Any + Send)| Dock::encode_command(&codec, command).unwrap().tag;
    assert_eq!(tag(&inbound::Ship(1)), "InboundShip");
    assert_eq!(tag(&outbound::Ship(1)), "OutboundShip");
    assert_eq!(tag(&query::Count), "Count");
    // A value that is no command of `Dock` does not encode.
    assert!(Dock::encode_command(&codec, &42_u8).is_err());

    let system = ActorSystem::new();
    let docks = Entities::<Dock>::builder(&system)
        .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
        .build()
        .unwrap();
    let dock = docks.of("d1");
    assert_eq!(
        remote_ask(&codec, &dock, inbound::Ship(3)).await.unwrap(),
        Unloaded { crates: 3 }
    );
    assert_eq!(
        remote_ask(&codec, &dock, outbound::Ship(1)).await.unwrap(),
        2
    );
    assert_eq!(remote_ask(&codec, &dock, query::Count).await.unwrap(), 2);
    // The rejection comes back typed, equal to the local one.
    let remote = remote_ask(&codec, &dock, outbound::Ship(5))
        .await
        .unwrap_err();
    let local = dock.ask(outbound::Ship(5)).await.unwrap_err();
    assert_eq!(remote.rejection(), Some(&NotEnough { left: 2 }));
    assert_eq!(remote.rejection(), local.rejection());
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn commands_by_path_and_sharing_a_last_segment_cross_the_wire_with_json() {
    commands_cross_the_wire_with(Json).await;
}

#[tokio::test]
async fn commands_by_path_and_sharing_a_last_segment_cross_the_wire_with_bincode() {
    commands_cross_the_wire_with(Bincode).await;
}

#[tokio::test]
async fn an_unknown_tag_or_undecodable_command_is_an_encode_error_and_reaches_no_entity() {
    let system = ActorSystem::new();
    let docks = Entities::<Dock>::builder(&system)
        .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
        .build()
        .unwrap();
    let dock = docks.of("d2");
    let unknown = nexus_core::remote::WireCommand {
        tag: "Sink".into(),
        bytes: Vec::new(),
    };
    let error = Dock::serve(&Json, &unknown, &dock, CommandOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(error, EntityError::Encode { .. }), "{error}");
    let garbled = nexus_core::remote::WireCommand {
        tag: "InboundShip".into(),
        bytes: b"not json".to_vec(),
    };
    let error = Dock::serve(&Json, &garbled, &dock, CommandOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(error, EntityError::Encode { .. }), "{error}");
    assert!(!docks.is_live("d2"), "no command reached the entity");
    system.shutdown(Duration::from_secs(1)).await;
}
