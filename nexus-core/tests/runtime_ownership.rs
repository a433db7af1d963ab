//! Who may answer for an entity: one registry per aggregate in a system,
//! stream categories that cannot collide, replies that confirm the stream
//! head when nobody owns it, and a lease whose loss ends every answer from
//! the old state.

// The test aggregate below is public only because its generated command enum is.
#![allow(missing_docs)]

mod runtime_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::codec::{EventCodec, Json};
use nexus_core::lease::{Fence, InMemoryLease, LeaseError, LeaseGuard, OwnershipLease, Tenure};
use nexus_core::store::memory::InMemoryEventStore;
use nexus_core::testkit::doc::{Add, Counter, CounterEvent};
use nexus_core::{
    ActorSystem, Aggregate, AppendOutcome, ConfigError, DomainEvent, Effect, Entities,
    EntitiesBuilder, EntityError, EventStore, ExpectedVersion, LogPosition, NewEvent,
    RecordedEvent, StoreError, StreamId, aggregate,
};
use runtime_support::{Balance, Deposit, accounts};
use serde::{Deserialize, Serialize};

/// Stock that reservations take from; a reservation beyond it is rejected
/// with what is available, so a stale state shows as a wrong rejection.
#[derive(Debug, Default)]
pub struct Stock {
    available: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(prefix = "stock")]
pub enum StockEvent {
    Restocked { qty: u64 },
    Reserved { qty: u64 },
}

#[derive(Debug, PartialEq, thiserror::Error)]
#[error("available {available}")]
pub struct Insufficient {
    available: u64,
}

#[derive(Debug)]
pub struct Restock(u64);

#[derive(Debug)]
pub struct Reserve(u64);

#[aggregate(name = "stock", event = StockEvent, error = Insufficient, commands(Restock, Reserve))]
impl Stock {
    #[handle]
    fn restock(&self, command: &Restock) -> Result<Effect<Self, u64>, Insufficient> {
        Ok(Effect::persist(StockEvent::Restocked { qty: command.0 })
            .then_reply(|stock: &Stock| stock.available))
    }

    #[handle]
    fn reserve(&self, command: &Reserve) -> Result<Effect<Self, u64>, Insufficient> {
        if command.0 > self.available {
            return Err(Insufficient {
                available: self.available,
            });
        }
        Ok(Effect::persist(StockEvent::Reserved { qty: command.0 })
            .then_reply(|stock: &Stock| stock.available))
    }

    #[apply]
    fn apply(&mut self, event: &StockEvent) {
        match event {
            StockEvent::Restocked { qty } => self.available += qty,
            StockEvent::Reserved { qty } => self.available -= qty,
        }
    }
}

fn stock(system: &ActorSystem, store: Arc<dyn EventStore>) -> EntitiesBuilder<Stock> {
    Entities::<Stock>::builder(system).event_sourced(store, EventCodec::new(Json))
}

#[tokio::test]
async fn a_second_registry_of_one_aggregate_is_refused() {
    let system = ActorSystem::new();
    let store = Arc::new(InMemoryEventStore::new());
    let first = accounts(&system, store.clone()).build().unwrap();
    let second = accounts(&system, store.clone()).build().unwrap_err();
    assert_eq!(
        second,
        ConfigError::AlreadyServed {
            aggregate: "account"
        }
    );
    assert!(
        second.to_string().contains("clone that `Entities`"),
        "{second}"
    );
    // Clones share the one registry: still one actor per id.
    let clone = first.clone();
    first.of("a").ask(Deposit(1)).await.unwrap();
    assert_eq!(clone.of("a").ask(Deposit(1)).await.unwrap(), 2);
    assert_eq!(first.started(), 1);
    // Once the first registry is gone (no ref, no live actor), the name is
    // free again.
    drop((first, clone));
    system.shutdown(Duration::from_secs(1)).await;
    let system = ActorSystem::new();
    let again = accounts(&system, store).build().unwrap();
    assert_eq!(again.of("a").ask(Balance).await.unwrap(), 2);
    // Another system is another registry: allowed, and arbitrated below.
    accounts(&ActorSystem::new(), Arc::new(InMemoryEventStore::new()))
        .build()
        .unwrap();
}

/// A hand-written aggregate (no macro to catch its name) whose category
/// would share streams with an aggregate named `stock`.
#[derive(Debug, Default)]
struct Dashed(Counter);

impl Aggregate for Dashed {
    const NAME: &'static str = "stock-a";
    type Command = <Counter as Aggregate>::Command;
    type Event = CounterEvent;
    type Error = <Counter as Aggregate>::Error;

    fn handle(&self, command: &Self::Command) -> Result<Effect<Self>, Self::Error> {
        let _ = command;
        Ok(Effect::none())
    }

    fn apply(&mut self, event: &CounterEvent) {
        self.0.apply(event);
    }
}

#[tokio::test]
async fn a_name_with_a_dash_is_refused() {
    let system = ActorSystem::new();
    let refused = Entities::<Dashed>::builder(&system)
        .event_sourced(Arc::new(InMemoryEventStore::new()), EventCodec::new(Json))
        .build()
        .unwrap_err();
    assert!(matches!(
        refused,
        ConfigError::InvalidName {
            aggregate: "stock-a",
            ..
        }
    ));
    assert!(refused.to_string().contains("use `_` or `.`"), "{refused}");
}

/// Two systems on one store without an owner: a rejection or a read from
/// the second reflects every write the first acknowledged before it. With
/// `sole_writer` (the check skipped) the same sequence answers from stale
/// state, which is what the check prevents.
#[tokio::test]
async fn without_an_owner_replies_confirm_the_stream_head() {
    for sole_writer in [false, true] {
        let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
        let (one, two) = (ActorSystem::new(), ActorSystem::new());
        let build = |system: &ActorSystem| {
            let builder = stock(system, store.clone());
            if sole_writer {
                builder.sole_writer().build().unwrap()
            } else {
                builder.build().unwrap()
            }
        };
        let (first, second) = (build(&one), build(&two));
        first.of("s").ask(Restock(2)).await.unwrap();
        // Both are live, at available 2.
        assert_eq!(
            second
                .of("s")
                .ask(Reserve(3))
                .await
                .unwrap_err()
                .to_string(),
            "rejected: available 2"
        );
        first.of("s").ask(Reserve(2)).await.unwrap();
        assert_eq!(first.of("s").ask(Restock(5)).await.unwrap(), 5);
        let answer = second.of("s").ask(Reserve(3)).await;
        if sole_writer {
            // Stale: decided against available 2, written nothing.
            assert_eq!(answer.unwrap_err().to_string(), "rejected: available 2");
        } else {
            assert_eq!(answer.unwrap(), 2);
            // And the first, now behind, rejects from the current head.
            assert_eq!(
                first.of("s").ask(Reserve(3)).await.unwrap_err().to_string(),
                "rejected: available 2"
            );
        }
        assert_eq!(second.started(), 1, "caught up without a restart");
    }
}

/// Many tasks on three systems, random interleaving: writers reserve
/// through the first system, checkers on the other two mostly ask for more
/// than there is (rejections, which never append) and sometimes reserve.
/// Every rejection reports at most what the reservations acknowledged
/// before it was sent left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rejections_across_systems_are_never_stale() {
    const STOCK: u64 = 400;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let systems = [ActorSystem::new(), ActorSystem::new(), ActorSystem::new()];
    let all: Vec<_> = systems
        .iter()
        .map(|system| stock(system, store.clone()).build().unwrap())
        .collect();
    all[0].of("s").ask(Restock(STOCK)).await.unwrap();
    let reserved = Arc::new(AtomicU64::new(0));
    let checked = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..24)
        .map(|task| {
            let writer = task < 8;
            let stock = all[if writer { 0 } else { 1 + task % 2 }].clone();
            let (reserved, checked) = (Arc::clone(&reserved), Arc::clone(&checked));
            tokio::spawn(async move {
                for _ in 0..25 {
                    let qty = if writer || fastrand::u8(0..5) == 0 {
                        fastrand::u64(1..=3)
                    } else {
                        STOCK + 1
                    };
                    let before = reserved.load(Ordering::SeqCst);
                    match stock.of("s").ask(Reserve(qty)).await {
                        Ok(_) => {
                            reserved.fetch_add(qty, Ordering::SeqCst);
                        }
                        Err(EntityError::Rejected(Insufficient { available })) => {
                            assert!(
                                available <= STOCK - before,
                                "stale rejection: available {available}, but {before} of {STOCK} were reserved before it was sent"
                            );
                            checked.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(other) => panic!("unexpected {other}"),
                    }
                    for _ in 0..fastrand::usize(0..3) {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(reserved.load(Ordering::SeqCst) <= STOCK);
    assert!(
        checked.load(Ordering::SeqCst) >= 100,
        "the workload must drive rejections to check, got {}",
        checked.load(Ordering::SeqCst)
    );
    let left = all[2].of("s").ask(Reserve(0)).await.unwrap();
    assert_eq!(left, STOCK - reserved.load(Ordering::SeqCst));
}

#[tokio::test]
async fn a_lost_lease_writes_nothing_and_answers_nothing_stale() {
    let store = Arc::new(InMemoryEventStore::new());
    let lease = InMemoryLease::new();
    let (one, two) = (ActorSystem::new(), ActorSystem::new());
    let first = accounts(&one, store.clone())
        .lease(Arc::new(lease.clone()))
        .build()
        .unwrap();
    let second = accounts(&two, store.clone())
        .lease(Arc::new(lease.clone()))
        .build()
        .unwrap();
    let stream = StreamId::for_entity("account", "a");
    assert_eq!(first.of("a").ask(Deposit(5)).await.unwrap(), 5);
    assert!(matches!(
        second.of("a").ask(Balance).await.unwrap_err(),
        EntityError::NotOwner {
            source: LeaseError::Held { .. },
            ..
        }
    ));
    // The lease is taken away: the idle entity frees its state at once.
    assert!(lease.revoke(&stream));
    wait_until(|| !first.is_live("a")).await;
    assert_eq!(second.of("a").ask(Deposit(7)).await.unwrap(), 12);
    // The first process answers neither a read nor a write any more.
    for answer in [
        first.of("a").ask(Balance).await,
        first.of("a").ask(Deposit(1)).await,
    ] {
        assert!(
            matches!(answer, Err(EntityError::NotOwner { .. })),
            "{answer:?}"
        );
    }
    assert_eq!(store.len(), 2);
    assert_eq!(second.of("a").ask(Balance).await.unwrap(), 12);
}

/// A store that fences like a database: it keeps its own epoch per shard,
/// which another process can move on while the writer's clock still says
/// its tenure is current.
#[derive(Default)]
struct DatabaseFence {
    events: InMemoryEventStore,
    epoch: AtomicU64,
}

#[async_trait]
impl EventStore for DatabaseFence {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendOutcome, StoreError> {
        self.events.append(stream, expected, events).await
    }

    async fn append_fenced(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
        fence: &Fence,
    ) -> Result<AppendOutcome, StoreError> {
        if fence.epoch() != self.epoch.load(Ordering::SeqCst) {
            return Err(StoreError::Fenced {
                stream: stream.clone(),
                shard: fence.shard(),
                epoch: fence.epoch(),
            });
        }
        self.events.append(stream, expected, events).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from: u64,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.events.read_stream(stream, from).await
    }

    async fn read_all(
        &self,
        after: LogPosition,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.events.read_all(after, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.events.stream_version(stream).await
    }
}

/// Grants every acquisition with the store's current epoch.
struct EpochLease(Arc<DatabaseFence>);

#[async_trait]
impl OwnershipLease for EpochLease {
    async fn acquire(&self, _: &StreamId) -> Result<LeaseGuard, LeaseError> {
        let epoch = self.0.epoch.load(Ordering::SeqCst);
        Ok(LeaseGuard::new(Tenure::unbounded(0, epoch), ()))
    }
}

#[tokio::test]
async fn a_write_the_store_fences_off_is_not_owner_and_stops_the_entity() {
    let store = Arc::new(DatabaseFence::default());
    let system = ActorSystem::new();
    let counters = Entities::<Counter>::builder(&system)
        .event_sourced(store.clone(), EventCodec::new(Json))
        .lease(Arc::new(EpochLease(store.clone())))
        .build()
        .unwrap();
    assert_eq!(counters.of("c").ask(Add(1)).await.unwrap(), 1);
    // Another process took the shard over at the database.
    store.epoch.fetch_add(1, Ordering::SeqCst);
    let refused = counters.of("c").ask(Add(1)).await.unwrap_err();
    assert!(
        matches!(
            refused,
            EntityError::NotOwner {
                source: LeaseError::Lost { epoch: 0, .. },
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(refused.is_unavailable());
    assert_eq!(store.events.len(), 1, "the fenced write stored nothing");
    wait_until(|| !counters.is_live("c")).await;
    // The next command takes the lease under the new epoch and recovers.
    assert_eq!(counters.of("c").ask(Add(1)).await.unwrap(), 2);
    assert_eq!(counters.started(), 2);
}

/// Leases that end by the holder's clock after one second, unless renewed
/// (they never are here).
struct OneSecondLease {
    epoch: AtomicU64,
}

#[async_trait]
impl OwnershipLease for OneSecondLease {
    async fn acquire(&self, _: &StreamId) -> Result<LeaseGuard, LeaseError> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        Ok(LeaseGuard::new(Tenure::until(0, epoch, deadline), ()))
    }
}

#[tokio::test(start_paused = true)]
async fn a_holder_past_its_deadline_answers_nothing_from_its_old_state() {
    let store = Arc::new(InMemoryEventStore::new());
    let system = ActorSystem::new();
    let lease = Arc::new(OneSecondLease {
        epoch: AtomicU64::new(0),
    });
    let mine = accounts(&system, store.clone())
        .lease(lease)
        .build()
        .unwrap();
    assert_eq!(mine.of("a").ask(Deposit(5)).await.unwrap(), 5);
    // Past the deadline the entity has dropped its state by itself.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    wait_until(|| !mine.is_live("a")).await;
    // Meanwhile another writer (the next owner) wrote.
    let other = ActorSystem::new();
    accounts(&other, store.clone())
        .sole_writer()
        .build()
        .unwrap()
        .of("a")
        .ask(Deposit(7))
        .await
        .unwrap();
    // Taken again under a new epoch, recovered: the answer includes it.
    assert_eq!(mine.of("a").ask(Balance).await.unwrap(), 12);
    assert_eq!(mine.started(), 2);
}

async fn wait_until(condition: impl Fn() -> bool) {
    for _ in 0..1_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the condition did not become true");
}
