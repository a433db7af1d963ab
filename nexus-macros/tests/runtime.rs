//! A macro-made aggregate served by the real runtime: `ask` returns exactly
//! the reply type its handler names, `tell` takes any declared command, the
//! store holds the names `#[derive(DomainEvent)]` gave the events, and the
//! same aggregate also runs as durable state.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::codec::{EventCodec, Json};
use nexus_core::store::StateStore;
use nexus_core::store::memory::{InMemoryEventStore, InMemoryStateStore};
use nexus_core::{ActorSystem, DomainEvent, Effect, Entities, EventStore, StreamId, aggregate};
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
