//! `Entities<A>`: the factory of entity refs for one aggregate type (Nexus
//! PHP's `EntityRefFactory`).

use std::fmt;
use std::sync::Arc;

use super::EntityRef;
use super::builder::EntitiesBuilder;
use super::held_cell::HeldCell;
use super::registry::{EntityKey, Registry};
use crate::{ActorSystem, Aggregate, StreamId};

/// Every entity of aggregate type `A` in one [`ActorSystem`].
///
/// [`of`](Self::of) gives the ref of one identity. Cloning is cheap and
/// shares the entities. What the runtime guarantees per entity:
///
/// - **One writer**: at most one live actor per id. It is registered before
///   it recovers, so concurrent `of()` calls, passivation and restarts
///   never run two actors for one id.
/// - **Recover, then decide**: the state is loaded (snapshot + tail, or the
///   durable-state row) into a fresh `A::default()` before the first
///   command, and again after every failure, never replayed onto a state
///   that was already mutated.
/// - **Durable before acknowledged**: a reply is sent only after the
///   command's write committed. Side effects (`then_run`) run after the
///   commit, once per committed transition, and never on recovery. With
///   [`group_commit`](EntitiesBuilder::group_commit), a batch's side effects
///   see the state after the whole batch.
/// - **Nothing accepted is lost**: every accepted command ends in its reply
///   or an explicit [`EntityError`](crate::EntityError). Commands queued
///   when an entity passivates, stops or restarts go to its next
///   incarnation; only the shutdown deadline and the restart limit answer
///   them with errors.
/// - **Order**: one sender's commands are handled in send order.
///
/// ```
/// use std::sync::Arc;
/// use nexus_core::{ActorSystem, Entities, codec::{EventCodec, Json}};
/// use nexus_core::store::memory::InMemoryEventStore;
/// # use nexus_core::testkit::doc::{Counter, Add, Get};
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let system = ActorSystem::new();
/// let counters = Entities::<Counter>::builder(&system)
///     .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
///     .build()
///     .unwrap();
/// counters.of("c1").ask(Add(40)).await.unwrap();
/// counters.of("c1").ask(Add(2)).await.unwrap();
/// assert_eq!(counters.of("c1").ask(Get).await.unwrap(), 42);
/// assert_eq!(counters.live(), 1);
/// system.shutdown(std::time::Duration::from_secs(1)).await;
/// # });
/// ```
pub struct Entities<A: Aggregate> {
    pub(crate) registry: Arc<Registry<A>>,
}

impl<A: Aggregate> Clone for Entities<A> {
    fn clone(&self) -> Self {
        Self {
            registry: Arc::clone(&self.registry),
        }
    }
}

impl<A: Aggregate> fmt::Debug for Entities<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entities")
            .field("aggregate", &A::NAME)
            .field("live", &self.registry.live())
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate> Entities<A> {
    /// Options for serving aggregate type `A` in `system`.
    pub fn builder(system: &ActorSystem) -> EntitiesBuilder<A> {
        EntitiesBuilder::new(system)
    }

    /// The ref of entity `id`. Its stream is `"{A::NAME}-{id}"`.
    ///
    /// Nothing is spawned until a message is sent: a ref costs no actor, so
    /// ids from untrusted input cannot fill memory. The first send spawns
    /// the actor (within the limit of
    /// [`max_active_entities`](EntitiesBuilder::max_active_entities)), which
    /// needs a tokio runtime: send from within one, or build the system with
    /// [`runtime`](crate::ActorSystemBuilder::runtime).
    pub fn of(&self, id: impl AsRef<str>) -> EntityRef<A> {
        let id = id.as_ref();
        let key = Arc::new(EntityKey {
            id: id.to_owned(),
            stream: StreamId::for_entity(A::NAME, id),
        });
        EntityRef {
            registry: Arc::clone(&self.registry),
            key,
            held: Arc::new(HeldCell::empty()),
        }
    }

    /// How many entities are live (spawned and not passivated or stopped).
    pub fn live(&self) -> usize {
        self.registry.live()
    }

    /// Whether entity `id` is live.
    pub fn is_live(&self, id: impl AsRef<str>) -> bool {
        self.registry.is_live(id.as_ref())
    }

    /// How many entity actors were started so far, counting each start
    /// after a passivation or stop again.
    pub fn started(&self) -> u64 {
        self.registry.spawned()
    }
}
