//! A macro-made aggregate served by the real runtime: `ask` returns exactly
//! the reply type its handler names, `tell` takes any declared command, the
//! store holds the names `#[derive(DomainEvent)]` gave the events, and the
//! same aggregate also runs as durable state. A handler taking a
//! `&CommandContext` sees the version it decides on, and commands sharing a
//! last path segment are two commands.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::store::StateStore;
use nexus_core::store::memory::{InMemoryEventStore, InMemoryStateStore};
use nexus_core::testkit::{given, given_no_events};
use nexus_core::{
    ActorSystem, CommandContext, CommandOptions, DomainEvent, Effect, Entities, EntityError,
    EventStore, StreamId, aggregate,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    count: u32,
    names: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "tally")]
enum TallyEvent {
    Counted {
        name: String,
    },
    #[event(name = "tally.reset", version = 2)]
    Cleared,
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("the name is empty")]
struct EmptyName;

/// Counts a name; replies the new count.
#[derive(Debug)]
pub struct Count(String);
/// Starts over.
#[derive(Debug)]
pub struct Clear;
/// Reads the names counted so far.
#[derive(Debug)]
pub struct Names;

#[aggregate(
    name = "tally",
    event = TallyEvent,
    error = EmptyName,
    commands(Count, Clear, Names)
)]
impl Tally {
    #[handle]
    fn count(&self, Count(name): &Count) -> Result<Effect<Self, u32>, EmptyName> {
        if name.is_empty() {
            return Err(EmptyName);
        }
        Ok(Effect::persist(TallyEvent::Counted { name: name.clone() })
            .then_reply(|t: &Self| t.count))
    }

    #[handle]
    fn clear(&self, _: &Clear) -> Result<Effect<Self>, EmptyName> {
        Ok(Effect::persist(TallyEvent::Cleared))
    }

    #[handle]
    fn names(&self, _: &Names) -> Result<Effect<Self, Vec<String>>, EmptyName> {
        Ok(Effect::none().then_reply(|t: &Self| t.names.clone()))
    }

    #[apply]
    fn apply(&mut self, event: &TallyEvent) {
        match event {
            TallyEvent::Counted { name } => {
                self.count += 1;
                self.names.push(name.clone());
            }
            TallyEvent::Cleared => *self = Self::default(),
        }
    }
}

#[tokio::test]
async fn ask_returns_the_handlers_reply_type_and_the_store_keeps_the_derived_names() {
    let store = Arc::new(InMemoryEventStore::new());
    let system = ActorSystem::new();
    let tallies = Entities::<Tally>::builder(&system)
        .event_sourced(
            Arc::clone(&store) as Arc<dyn EventStore>,
            EventCodec::new(Json),
        )
        .build()
        .unwrap();
    let tally = tallies.of("t1");

    // The annotations are the point: each reply has its handler's type.
    let first: u32 = tally.ask(Count("ada".into())).await.unwrap();
    let second: u32 = tally.ask(Count("bob".into())).await.unwrap();
    let names: Vec<String> = tally.ask(Names).await.unwrap();
    assert_eq!((first, second), (1, 2));
    assert_eq!(names, ["ada", "bob"]);
    assert!(tally.ask(Count(String::new())).await.is_err());

    tally.tell(Clear).await.unwrap();
    let after_clear: Vec<String> = tally.ask(Names).await.unwrap();
    assert!(after_clear.is_empty());

    let stored = store
        .read_stream(&StreamId::for_entity("tally", "t1"), 0)
        .await
        .unwrap();
    let kinds: Vec<(&str, u32)> = stored
        .iter()
        .map(|e| (e.event_type.as_str(), e.schema_version))
        .collect();
    assert_eq!(
        kinds,
        [
            ("tally.counted", 1),
            ("tally.counted", 1),
            ("tally.reset", 2)
        ]
    );
    system.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn the_same_aggregate_serves_as_durable_state_and_survives_a_new_system() {
    let store: Arc<dyn StateStore> = Arc::new(InMemoryStateStore::new());
    for (round, name) in [(1_u32, "ada"), (2, "bob")] {
        let system = ActorSystem::new();
        let tallies = Entities::<Tally>::builder(&system)
            .durable_state(Arc::clone(&store), Json)
            .build()
            .unwrap();
        // The second system starts from the row the first one saved.
        let count: u32 = tallies.of("t2").ask(Count(name.into())).await.unwrap();
        assert_eq!(count, round);
        system.shutdown(Duration::from_secs(1)).await;
    }
    let system = ActorSystem::new();
    let tallies = Entities::<Tally>::builder(&system)
        .durable_state(Arc::clone(&store), Json)
        .build()
        .unwrap();
    let names: Vec<String> = tallies.of("t2").ask(Names).await.unwrap();
    assert_eq!(names, ["ada", "bob"]);
    system.shutdown(Duration::from_secs(1)).await;
}

/// A dock whose handlers take the command's context, and whose two commands
/// share the last path segment `Ship`.
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

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("not enough crates")]
struct NotEnough;

mod inbound {
    /// A ship bringing this many crates.
    #[derive(Debug)]
    pub struct Ship(pub u32);
}

mod outbound {
    /// A ship taking this many crates away.
    #[derive(Debug)]
    pub struct Ship(pub u32);
}

/// What a command saw and left: the version it was decided on, and the
/// version after its events.
#[derive(Debug, PartialEq)]
struct Versions {
    seen: u64,
    after: u64,
}

#[aggregate(
    name = "dock",
    event = DockEvent,
    error = NotEnough,
    commands(inbound::Ship, outbound::Ship)
)]
impl Dock {
    /// One `Unloaded` event per crate; replies the versions around them.
    #[handle]
    fn unload(
        &self,
        inbound::Ship(crates): &inbound::Ship,
        context: &CommandContext,
    ) -> Result<Effect<Self, Versions>, NotEnough> {
        let versions = Versions {
            seen: context.version(),
            after: context.version() + u64::from(*crates),
        };
        let events = (0..*crates).map(|_| DockEvent::Unloaded).collect();
        Ok(Effect::persist_all(events).then_reply(move |_: &Self| versions))
    }

    /// Without a context: replies the crates left.
    #[handle]
    fn load(
        &self,
        outbound::Ship(crates): &outbound::Ship,
    ) -> Result<Effect<Self, u32>, NotEnough> {
        if *crates > self.crates {
            return Err(NotEnough);
        }
        let events = (0..*crates).map(|_| DockEvent::Loaded).collect();
        Ok(Effect::persist_all(events).then_reply(|dock: &Self| dock.crates))
    }

    #[apply]
    fn apply(&mut self, event: &DockEvent) {
        match event {
            DockEvent::Unloaded => self.crates += 1,
            DockEvent::Loaded => self.crates -= 1,
        }
    }
}

#[tokio::test]
async fn a_handler_taking_the_context_sees_the_version_it_decides_on() {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let system = ActorSystem::new();
    let docks = Entities::<Dock>::builder(&system)
        .event_sourced(Arc::clone(&store), EventCodec::new(Json))
        .build()
        .unwrap();
    let dock = docks.of("d1");

    // A new entity is at version 0; its reply reports 0 + its 2 events.
    let first: Versions = dock.ask(inbound::Ship(2)).await.unwrap();
    assert_eq!(first, Versions { seen: 0, after: 2 });
    // A command without a context moves the version too.
    let left: u32 = dock.ask(outbound::Ship(1)).await.unwrap();
    assert_eq!(left, 1);
    // After 3 events the handler sees 3, and what it reports is what the
    // runtime reports for the same command.
    let outcome = dock
        .ask_with(inbound::Ship(3), CommandOptions::new())
        .await
        .unwrap();
    assert_eq!(outcome.reply, Versions { seen: 3, after: 6 });
    assert_eq!(outcome.version, 6);
    system.shutdown(Duration::from_secs(1)).await;

    // A new system recovers the 6 events: the next command is decided on 6.
    let system = ActorSystem::new();
    let docks = Entities::<Dock>::builder(&system)
        .event_sourced(store, EventCodec::new(Json))
        .build()
        .unwrap();
    let recovered: Versions = docks.of("d1").ask(inbound::Ship(1)).await.unwrap();
    assert_eq!(recovered, Versions { seen: 6, after: 7 });
    system.shutdown(Duration::from_secs(1)).await;
}

#[test]
fn the_test_kit_gives_the_handler_the_number_of_given_events_as_its_version() {
    given_no_events::<Dock>()
        .ask(inbound::Ship(1))
        .then_expect_events([DockEvent::Unloaded])
        .then_expect_reply(Versions { seen: 0, after: 1 });
    given::<Dock>([DockEvent::Unloaded, DockEvent::Unloaded, DockEvent::Loaded])
        .ask(inbound::Ship(2))
        .then_expect_reply(Versions { seen: 3, after: 5 });
}

#[tokio::test]
async fn commands_sharing_a_last_segment_get_variants_named_after_their_paths() {
    // Both convert into the enum, each into its own variant.
    assert!(matches!(
        DockCommand::from(inbound::Ship(1)),
        DockCommand::InboundShip(inbound::Ship(1))
    ));
    assert!(matches!(
        DockCommand::from(outbound::Ship(1)),
        DockCommand::OutboundShip(outbound::Ship(1))
    ));
    // The enum dispatch reaches each one's handler.
    given_no_events::<Dock>()
        .when(inbound::Ship(2))
        .then_expect_events([DockEvent::Unloaded, DockEvent::Unloaded]);
    given::<Dock>([DockEvent::Unloaded])
        .when(outbound::Ship(1))
        .then_expect_events([DockEvent::Loaded]);

    // Both are sendable, with their own reply types.
    let system = ActorSystem::new();
    let docks = Entities::<Dock>::builder(&system)
        .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
        .build()
        .unwrap();
    let dock = docks.of("d2");
    let arrived: Versions = dock.ask(inbound::Ship(2)).await.unwrap();
    let left: u32 = dock.ask(outbound::Ship(2)).await.unwrap();
    assert_eq!((arrived.after, left), (2, 0));
    assert!(matches!(
        dock.ask(outbound::Ship(1)).await,
        Err(EntityError::Rejected(NotEnough))
    ));
    dock.tell(inbound::Ship(1)).await.unwrap();
    dock.tell(outbound::Ship(1)).await.unwrap();
    system.shutdown(Duration::from_secs(1)).await;
}
